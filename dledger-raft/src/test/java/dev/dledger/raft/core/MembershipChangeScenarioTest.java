package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Single-server membership changes (thesis section 4.1): a CONFIG entry takes effect once appended, on the leader and
 * on followers, is reverted when truncated, and only one may be uncommitted at a time.
 */
class MembershipChangeScenarioTest {

    private static final int E = TestCluster.ELECTION_TICKS;
    private static final int HB = TestCluster.HEARTBEAT_TICKS;
    private static final Membership ABC = Membership.of("a", "b", "c");
    private static final Membership ABCD = Membership.of("a", "b", "c", "d");

    /** a leads a, b, c and its NOOP is committed everywhere. */
    private static TestCluster settled(String... ids) {
        TestCluster c = TestCluster.of(ids);
        c.elect("a");
        c.run(HB);
        assertEquals(0, c.raft("a").commitIndex());
        return c;
    }

    @Test
    void addedVoterCountsTowardTheQuorumAsSoonAsTheChangeIsAppended() {
        TestCluster c = settled("a", "b", "c");
        c.add("d", Membership.EMPTY, new InMemoryLogView(), HardState.INITIAL);
        c.net().cut("a", "c");
        c.net().cut("a", "d");

        ProposeResult r = c.on("a", n -> n.addVoter("d"));

        assertEquals(ProposeResult.Status.ACCEPTED, r.status());
        assertEquals(1, r.index());
        assertEquals(ABCD, c.raft("a").membership(), "in force once appended, before it commits");
        Entry config = c.node("a").log.entry(1);
        assertEquals(EntryType.CONFIG, config.type());
        assertArrayEquals(ABCD.encode(), config.data());
        c.deliverAll();
        assertEquals(ABCD, c.raft("b").membership(), "a follower uses it once appended too");
        assertEquals(0, c.raft("a").commitIndex(), "a and b are a quorum of three, not of four");

        c.net().heal();
        c.run(2 * HB + c.node("a").config.replicationTimeoutTicks());

        assertEquals(1, c.raft("a").commitIndex());
        assertEquals(c.node("a").log.entries(), c.node("d").log.entries(), "d caught up from an empty log");
        assertEquals(ABCD, c.raft("d").membership(), "d learned the group from the log");
    }

    @Test
    void addedVoterCanLeadOnceItHoldsTheLog() {
        TestCluster c = settled("a", "b", "c");
        c.add("d", Membership.EMPTY, new InMemoryLogView(), HardState.INITIAL);
        c.on("a", n -> n.addVoter("d"));
        c.run(2 * HB);
        c.propose("a", "x");
        c.run(2 * HB);
        c.crash("a");
        for (int i = 0; i < E; i++) {
            for (String id : List.of("b", "c", "d")) {
                c.tick(id);
            }
        }

        c.elect("d");
        c.run(2 * HB);

        assertEquals(List.of("d"), c.leaders());
        assertEquals(List.of("x"), c.node("d").appliedPayloads());
    }

    @Test
    void onlyOneChangeMayBeUncommitted() {
        TestCluster c = settled("a", "b", "c");
        c.net().isolate("a");
        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.addVoter("d")).status());

        assertEquals(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, c.on("a", n -> n.addVoter("e")).status());
        assertEquals(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, c.on("a", n -> n.removeVoter("c")).status());
        assertEquals(1, c.raft("a").lastIndex(), "nothing was appended for the refused changes");

        c.net().heal();
        c.net().isolate("d");
        c.add("d", Membership.EMPTY, new InMemoryLogView(), HardState.INITIAL);
        c.run(2 * HB + c.node("a").config.replicationTimeoutTicks());
        assertEquals(1, c.raft("a").commitIndex());

        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.removeVoter("c")).status());
    }

    @Test
    void newLeaderRefusesChangesUntilItsNoopCommits() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.net().dropIf(m -> m instanceof AppendEntriesResponse);
        c.elect("a");

        assertEquals(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, c.on("a", n -> n.addVoter("d")).status());

        c.net().heal();
        c.run(2 * HB);
        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.addVoter("d")).status());
    }

    @Test
    void invalidChangesAreRefused() {
        TestCluster c = settled("a", "b", "c");

        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, c.on("a", n -> n.addVoter("b")).status());
        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, c.on("a", n -> n.removeVoter("z")).status());
        ProposeResult atFollower = c.on("b", n -> n.addVoter("d"));
        assertEquals(ProposeResult.Status.NOT_LEADER, atFollower.status());
        assertEquals("a", atFollower.leaderHint());
        assertEquals(0, c.raft("a").lastIndex());
    }

    @Test
    void removedFollowerNoLongerCountsAndNeverCampaigns() {
        TestCluster c = settled("a", "b", "c");

        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.removeVoter("c")).status());
        assertEquals(Membership.of("a", "b"), c.raft("a").membership());
        c.run(2 * HB);
        assertEquals(1, c.raft("a").commitIndex());
        assertEquals(Membership.of("a", "b"), c.raft("c").membership(), "c received its own removal");
        assertTrue(c.raft("a").progress().stream().noneMatch(p -> p.id().equals("c")));
        int sentBefore = c.net().sent().size();

        c.net().isolate("c");
        c.run(10 * E);

        assertTrue(c.net().sent().subList(sentBefore, c.net().sent().size()).stream()
            .noneMatch(m -> m instanceof VoteRequest), "c is no voter: it never campaigns");
        assertEquals(Role.FOLLOWER, c.raft("c").role());
        assertEquals(List.of("a"), c.leaders(), "a and b are the whole quorum now");
        c.propose("a", "x");
        c.run(HB);
        assertEquals(List.of("x"), c.node("a").appliedPayloads());
    }

    @Test
    void leaderThatRemovesItselfLeadsUntilTheChangeCommitsThenStepsDown() {
        TestCluster c = settled("a", "b", "c");
        c.net().cut("a", "c");

        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.removeVoter("a")).status());
        c.deliverAll();
        assertEquals(Role.LEADER, c.raft("a").role(), "the change needs b and c, c has not got it");
        assertEquals(0, c.raft("a").commitIndex());

        c.net().heal();
        c.run(2 * HB + c.node("a").config.replicationTimeoutTicks());
        assertEquals(Role.FOLLOWER, c.raft("a").role());
        int sentBefore = c.net().sent().size();
        c.run(3 * E);

        List<String> leaders = c.leaders();
        assertEquals(1, leaders.size());
        assertTrue(List.of("b", "c").contains(leaders.get(0)), leaders.toString());
        assertTrue(c.net().sent().subList(sentBefore, c.net().sent().size()).stream()
            .noneMatch(m -> m instanceof VoteRequest && m.from().equals("a")), "a never campaigns again");
        assertEquals(ProposeResult.Status.NOT_LEADER, c.propose("a", "x").status());
        c.propose(leaders.get(0), "y");
        c.run(HB);
        assertEquals(List.of("y"), c.node(leaders.get(0)).appliedPayloads());
    }

    @Test
    void truncatedChangeIsRevertedOnTheOldLeader() {
        TestCluster c = settled("a", "b", "c");
        c.net().isolate("a");
        c.on("a", n -> n.addVoter("d"));
        assertEquals(ABCD, c.raft("a").membership());
        for (int i = 0; i < E; i++) {
            c.tick("b");
            c.tick("c");
        }
        c.elect("b");

        c.net().heal();
        c.run(2 * HB);

        assertEquals(Role.FOLLOWER, c.raft("a").role());
        assertEquals(2, c.node("a").log.term(1), "b's NOOP replaced the CONFIG entry");
        assertEquals(ABC, c.raft("a").membership(), "the truncated change no longer counts");
        assertEquals(ABC, c.raft("a").membershipAt(1));
    }

    @Test
    void truncatedChangeIsRevertedOnAFollower() {
        Membership five = Membership.of("a", "b", "c", "d", "e");
        TestCluster c = settled("a", "b", "c", "d", "e");
        c.net().cut("a", "c");
        c.net().cut("a", "d");
        c.net().cut("a", "e");
        c.on("a", n -> n.addVoter("f"));
        c.deliverAll();
        assertEquals(five.with("f"), c.raft("b").membership(), "b appended the change");
        for (int i = 0; i < E; i++) {
            for (String id : List.of("c", "d", "e")) {
                c.tick(id);
            }
        }

        c.elect("c");
        c.run(HB);

        assertEquals(2, c.node("b").log.term(1), "c's NOOP replaced the CONFIG entry on b");
        assertEquals(five, c.raft("b").membership());
        c.net().heal();
        c.run(2 * HB);
        assertEquals(five, c.raft("a").membership());
        assertEquals(List.of("c"), c.leaders());
    }

    @Test
    void nodeThatKnowsNoMembershipNeverCampaigns() {
        TestCluster c = TestCluster.empty(cfg -> cfg);
        c.add("d", Membership.EMPTY, new InMemoryLogView(), HardState.INITIAL);

        c.tick("d", 10 * E);

        assertEquals(Role.FOLLOWER, c.raft("d").role());
        assertEquals(0, c.raft("d").term());
        assertTrue(c.net().sent().isEmpty());
    }
}
