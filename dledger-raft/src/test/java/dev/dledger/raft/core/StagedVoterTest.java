package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Replacing a dead member: the new one is caught up before it becomes a voter, so the group never waits for it, and
 * its address travels in the configuration entry.
 */
class StagedVoterTest {

    private static void addEmptyNode(CoreCluster c, String id) {
        c.logs.put(id, new MemoryLog());
        c.hardStates.put(id, HardState.INITIAL);
        c.start(id, InitialState.bootstrap(Membership.EMPTY));
    }

    /** A leader whose log holds {@code n} committed entries, with one follower dead ({@code dead}). */
    private static RaftNode leaderWithHistory(CoreCluster c, int n) {
        RaftNode leader = c.electLeader();
        for (int i = 0; i < n; i++) {
            c.propose(leader, "m" + i);
        }
        return leader;
    }

    @Test
    void stagedPeerCountsForNothingUntilCaughtUpThenBecomesAVoterWithItsAddress() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = leaderWithHistory(c, 20);
        String dead = c.followersOf(leader).get(0).id();
        c.isolated.add(dead);
        addEmptyNode(c, "d");
        // The new node hears nothing yet: the change must not be in force, and commits go on with the two live voters.
        c.isolated.add("d");
        ProposeResult r = leader.stageVoter("d", "10.0.0.4:40911");
        assertEquals(ProposeResult.Status.CATCHING_UP, r.status());
        assertEquals(List.of("a", "b", "c"), leader.membership().voters(), "not a voter while catching up");
        ProposeResult p = c.propose(leader, "while d is silent");
        assertTrue(leader.commitIndex() >= p.index(), "a silent staged peer holds up no commit");
        // Asking again reports the same, and another peer cannot be staged meanwhile.
        assertEquals(ProposeResult.Status.CATCHING_UP, leader.stageVoter("d", "10.0.0.4:40911").status());
        assertEquals(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, leader.stageVoter("e", null).status());
        c.isolated.remove("d");
        c.tickUntil(() -> leader.membership().contains("d") && leader.commitIndex() >= leader.lastIndex(), 100);
        assertEquals("10.0.0.4:40911", leader.membership().address("d"));
        assertEquals(leader.lastIndex(), c.node("d").lastIndex(), "caught up");
        assertEquals(Membership.of("a", "b", "c", "d").with("x").without("x").voters(), c.node("d").membership().voters());
        assertEquals("10.0.0.4:40911", c.node("d").membership().address("d"), "the address reached the new node");
        assertNull(leader.stagedPeer());
        // Now the dead one goes: three voters left, all reachable.
        assertTrue(leader.removeVoterKeepingQuorum(dead).accepted());
        c.tickUntil(() -> leader.commitIndex() >= leader.lastIndex() && !leader.membership().contains(dead), 50);
        ProposeResult after = c.propose(leader, "after the replace");
        assertTrue(leader.commitIndex() >= after.index());
    }

    @Test
    void addingAnEmptyVoterAtOnceWouldStallCommitsWhileOneIsDead() {
        // Why staging: with one of three dead, a fourth voter that is not caught up makes the quorum 3 of 4, and the
        // group commits nothing while it catches up (here: never, as it cannot be reached).
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = leaderWithHistory(c, 5);
        c.isolated.add(c.followersOf(leader).get(0).id());
        addEmptyNode(c, "d");
        c.isolated.add("d");
        assertTrue(leader.addVoter("d").accepted());
        ProposeResult p = c.propose(leader, "x");
        c.tick(5);
        assertTrue(leader.commitIndex() < p.index(), "the immediate add stalls the group");
    }

    @Test
    void removalThatLeavesNoReachableQuorumIsRefused() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = leaderWithHistory(c, 3);
        List<RaftNode> followers = c.followersOf(leader);
        c.isolated.add(followers.get(0).id());
        c.tick(12);
        // Left: the leader and the dead follower; one of two reachable is no quorum of two.
        assertEquals(ProposeResult.Status.NO_QUORUM_AFTER_CHANGE,
            leader.removeVoterKeepingQuorum(followers.get(1).id()).status());
        assertEquals(List.of("a", "b", "c"), leader.membership().voters(), "nothing changed");
        // Removing the dead one is fine.
        assertTrue(leader.removeVoterKeepingQuorum(followers.get(0).id()).accepted());
    }

    @Test
    void existingVoterCannotBeStaged() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, leader.stageVoter("b", "h:1").status());
        assertEquals(ProposeResult.Status.NOT_LEADER, c.followersOf(leader).get(0).stageVoter("d", null).status());
        assertThrows(IllegalArgumentException.class, () -> leader.stageVoter("d", "h:1,e=h:2"));
    }

    @Test
    void newLeaderForgetsTheStagedPeer() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        addEmptyNode(c, "d");
        c.isolated.add("d");
        assertEquals(ProposeResult.Status.CATCHING_UP, leader.stageVoter("d", null).status());
        c.isolated.add(leader.id());
        c.tickUntil(() -> c.leader() != null && c.leader() != leader, 100);
        assertFalse(c.leader().membership().contains("d"));
        assertNull(c.leader().stagedPeer());
    }

    @Test
    void addressesSurviveEncodingAndOldBodiesStillDecode() {
        Membership m = Membership.of("n0", "n1").with("n3", "127.0.0.2:40911");
        assertEquals(m, Membership.decode(m.encode()));
        assertEquals(Map.of("n3", "127.0.0.2:40911"), Membership.decode("n0,n1,n3=127.0.0.2:40911".getBytes()).addresses());
        assertEquals(Membership.of("n0", "n1", "n2"), Membership.decode("n0,n1,n2".getBytes()));
        assertEquals(Map.of(), m.without("n3").addresses());
        assertThrows(IllegalArgumentException.class, () -> Membership.of("a=b"));
    }
}
