package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Pre-vote (Raft thesis section 9.6): a node that cannot win an election does not raise anyone's term. */
class PreVoteScenarioTest {

    private static final int E = TestCluster.ELECTION_TICKS;

    @Test
    void isolatedNodeKeepsItsTermAndRejoinsWithoutDisturbingTheLeader() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.net().isolate("c");

        c.run(10 * E);

        assertEquals(1, c.raft("c").term(), "pre-campaigning changes no term");
        List<VoteRequest> fromC = voteRequestsFrom(c, "c");
        assertFalse(fromC.isEmpty(), "c did pre-campaign");
        for (VoteRequest vr : fromC) {
            assertTrue(vr.preVote(), vr.toString());
            assertEquals(2, vr.term(), "a pre-vote asks about currentTerm + 1");
        }

        c.net().heal();
        c.run(2 * E);

        assertEquals(List.of("a"), c.leaders());
        for (String id : List.of("a", "b", "c")) {
            assertEquals(1, c.raft(id).term(), id);
            assertEquals("a", c.raft(id).leaderId(), id);
        }
    }

    @Test
    void withoutPreVoteAnIsolatedNodeRaisesItsTerm() {
        TestCluster c = TestCluster.of(cfg -> cfg.withElectionSafety(false, true), "a", "b", "c");
        c.elect("a");
        c.net().isolate("c");

        c.run(10 * E);

        assertTrue(c.raft("c").term() > 2, "each timeout starts a real election: term " + c.raft("c").term());
    }

    @Test
    void preVoteRequestChangesNoStateOnTheReceiver() {
        TestCluster c = TestCluster.of("a", "b", "c");
        int readiesBefore = c.node("b").readies.size();

        c.deliver(new VoteRequest("c", "b", 1, -1, 0, true, false));

        assertEquals(0, c.raft("b").term());
        assertNull(c.raft("b").votedFor());
        List<Ready> readies = c.node("b").readies.subList(readiesBefore, c.node("b").readies.size());
        for (Ready rd : readies) {
            assertNull(rd.hardState(), "nothing to persist for a pre-vote");
        }
        assertEquals(List.of(new VoteResponse("b", "c", 1, true, true)), c.net().pending(VoteResponse.class));
    }

    @Test
    void preCandidateStartsTheRealElectionOnlyAfterAQuorumOfPreVotes() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.tick("a", E);
        assertEquals(Role.PRE_CANDIDATE, c.raft("a").role());
        assertEquals(0, c.raft("a").term());
        assertNull(c.raft("a").votedFor());

        c.deliverWhere(m -> isPreVoteTraffic(m) && (m.from().equals("b") || m.to().equals("b")));

        assertEquals(Role.CANDIDATE, c.raft("a").role());
        assertEquals(1, c.raft("a").term());
        assertEquals("a", c.raft("a").votedFor());
        List<VoteRequest> real = c.net().pending(VoteRequest.class).stream().filter(v -> !v.preVote()).toList();
        assertEquals(List.of(new VoteRequest("a", "b", 1, -1, 0, false, false),
            new VoteRequest("a", "c", 1, -1, 0, false, false)), real);
    }

    @Test
    void preCandidateRejectedByAMajorityFallsBackWithoutRaisingAnyTerm() {
        TestCluster c = TestCluster.empty(cfg -> cfg);
        Membership voters = Membership.of("a", "b", "c");
        c.add("a", voters, new InMemoryLogView(), new HardState(1, null));
        c.add("b", voters, new InMemoryLogView().preload(1, 1), new HardState(1, null));
        c.add("c", voters, new InMemoryLogView().preload(1, 1), new HardState(1, null));

        c.tick("a", E);
        c.deliverAll();

        assertEquals(Role.FOLLOWER, c.raft("a").role());
        for (String id : List.of("a", "b", "c")) {
            assertEquals(1, c.raft(id).term(), id);
            assertNull(c.raft(id).votedFor(), id);
        }
    }

    /**
     * A pre-vote grant is for one pre-campaign: the term it names. A grant from an earlier round that arrives late
     * (here: b's grant for term 1, delivered once c is at term 1 and pre-campaigns for term 2) must not count, or a
     * partitioned node raises its term after all and deposes the leader when it returns.
     */
    @Test
    void lateGrantOfAnEarlierPreVoteRoundDoesNotStartAnElection() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.tick("c", E + 4);
        assertEquals(Role.PRE_CANDIDATE, c.raft("c").role());
        c.deliverWhere(Net.between("c", "b"));
        List<Message> lateGrant = c.net().take(Net.between("b", "c"));
        assertEquals(List.of(new VoteResponse("b", "c", 1, true, true)), lateGrant);
        c.net().dropPending(m -> true);
        c.elect("a");
        c.run(TestCluster.HEARTBEAT_TICKS);
        assertEquals(1, c.raft("c").term());
        c.net().isolate("c");
        for (int i = 0; i < 3 * E && c.raft("c").role() == Role.FOLLOWER; i++) {
            c.tick("c");
        }
        assertEquals(Role.PRE_CANDIDATE, c.raft("c").role(), "c pre-campaigns for term 2 now");
        c.net().dropPending(Net.from("c"));
        c.net().heal();

        c.deliver(lateGrant.get(0));

        assertEquals(1, c.raft("c").term(), "a grant for term 1 says nothing about term 2");
        c.run(2 * E);
        assertEquals(List.of("a"), c.leaders());
        assertEquals(1, c.raft("a").term(), "the leader was not disturbed");
    }

    private static boolean isPreVoteTraffic(Message m) {
        return (m instanceof VoteRequest req && req.preVote()) || (m instanceof VoteResponse resp && resp.preVote());
    }

    private static List<VoteRequest> voteRequestsFrom(TestCluster c, String id) {
        return c.net().sent().stream().filter(m -> m instanceof VoteRequest && m.from().equals(id))
            .map(m -> (VoteRequest) m).toList();
    }
}
