package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class MembershipChangeTest {

    private static void addNode(CoreCluster c, String id) {
        c.logs.put(id, new MemoryLog());
        c.hardStates.put(id, HardState.INITIAL);
        c.start(id, InitialState.bootstrap(Membership.EMPTY));
    }

    @Test
    void addedVoterCatchesUpAndCountsFromTheMomentTheChangeIsAppended() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        addNode(c, "d");
        ProposeResult r = leader.addVoter("d");
        assertTrue(r.accepted());
        assertEquals(List.of("a", "b", "c", "d"), leader.membership().voters(), "in force once appended");
        c.deliverAll();
        c.tickUntil(() -> c.node("d").lastIndex() == leader.lastIndex(), 50);
        assertEquals(Membership.of("a", "b", "c", "d"), c.node("d").membership());
        assertTrue(leader.commitIndex() >= r.index());
        // Four voters need three acknowledgements: with two followers cut off nothing commits.
        c.isolated.add("c");
        c.isolated.add("d");
        ProposeResult p = c.propose(leader, "x");
        assertTrue(leader.commitIndex() < p.index());
    }

    @Test
    void removedVoterNoLongerCountsAndNeverCampaigns() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        String gone = c.followersOf(leader).get(0).id();
        assertTrue(leader.removeVoter(gone).accepted());
        c.deliverAll();
        c.tick(3);
        c.isolated.add(gone);
        ProposeResult p = c.propose(leader, "x");
        assertTrue(leader.commitIndex() >= p.index(), "two voters left, both up");
        c.tick(100);
        assertTrue(c.node(gone).role() == Role.FOLLOWER, "a removed node does not campaign");
    }

    @Test
    void onlyOneChangeAtATime() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        for (RaftNode f : c.followersOf(leader)) {
            c.isolated.add(f.id());
        }
        assertTrue(leader.addVoter("d").accepted());
        assertEquals(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, leader.addVoter("e").status());
        assertEquals(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, leader.removeVoter("b").status());
    }

    @Test
    void invalidChangesAreRefused() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, leader.addVoter("a").status());
        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, leader.removeVoter("zz").status());
        assertEquals(ProposeResult.Status.NOT_LEADER, c.followersOf(leader).get(0).addVoter("d").status());
    }

    @Test
    void leaderThatRemovesItselfStepsDownOnceTheChangeCommits() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        assertTrue(leader.removeVoter(leader.id()).accepted());
        c.deliverAll();
        c.tick(3);
        assertEquals(Role.FOLLOWER, leader.role());
        c.tickUntil(() -> c.nodes.values().stream().anyMatch(n -> n != leader && n.role() == Role.LEADER), 50);
        c.tick(50);
        assertEquals(Role.FOLLOWER, leader.role(), "not a voter: it never campaigns again");
    }

    @Test
    void truncatedConfigurationEntryIsRevertedOnTheFollower() {
        MemoryLog log = MemoryLog.ofTerms(1);
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), log,
            new InitialState(new HardState(2, null), Membership.of("a", "b", "c"), List.of(), -1, -1), bound -> 0,
            CoreLog.NONE);
        Entry config = new Entry(1, 2, EntryType.CONFIG, Membership.of("a", "b", "c", "d").encode());
        f.step(new AppendEntriesRequest("a", "b", 2, 0, 1, List.of(config), 0, 1));
        assertEquals(Membership.of("a", "b", "c", "d"), f.membership());
        persist(f, log);
        // A new leader of term 3 never had that entry: its own entry at index 1 replaces it.
        f.step(new AppendEntriesRequest("c", "b", 3, 0, 1, List.of(new Entry(1, 3, EntryType.NOOP, null)), 0, 1));
        assertEquals(Membership.of("a", "b", "c"), f.membership(), "back to the previous configuration");
        persist(f, log);
        assertEquals(EntryType.NOOP, log.entries.get(1).type());
    }

    private static void persist(RaftNode n, MemoryLog log) {
        Ready rd = n.ready();
        if (rd.truncateFrom() >= 0) {
            log.truncateFrom(rd.truncateFrom());
        }
        log.append(rd.entries());
        n.advance(rd);
    }
}
