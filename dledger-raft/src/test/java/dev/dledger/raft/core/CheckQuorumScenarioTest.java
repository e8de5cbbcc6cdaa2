package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Check-quorum (thesis section 6.2): a leader that hears from no quorum steps down; followers that hear from a
 * leader ignore vote requests (leader stickiness, thesis section 4.2.3) unless a leadership transfer asked for them.
 */
class CheckQuorumScenarioTest {

    private static final int E = TestCluster.ELECTION_TICKS;

    @Test
    void leaderCutOffFromTheMajorityStepsDownWithinAnElectionTimeout() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.net().isolate("a");

        c.tick("a", E - 1);
        assertEquals(Role.LEADER, c.raft("a").role(), "it heard from a quorum less than an election timeout ago");
        c.tick("a", 2);

        assertEquals(Role.FOLLOWER, c.raft("a").role());
        assertEquals(1, c.raft("a").term(), "stepping down does not change the term");
        assertNull(c.raft("a").leaderId());
    }

    @Test
    void leaderThatHearsFromOneOfTwoFollowersKeepsLeading() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.net().isolate("c");

        c.run(10 * E);

        assertEquals(List.of("a"), c.leaders());
        assertEquals(1, c.raft("a").term());
    }

    @Test
    void withoutCheckQuorumAnIsolatedLeaderKeepsLeading() {
        TestCluster c = TestCluster.of(cfg -> cfg.withElectionSafety(true, false), "a", "b", "c");
        c.elect("a");
        c.net().isolate("a");

        c.tick("a", 10 * E);

        assertEquals(Role.LEADER, c.raft("a").role());
    }

    @Test
    void followerThatHearsFromItsLeaderIgnoresVoteRequests() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");

        c.deliver(new VoteRequest("c", "b", 2, 100, 1, false, false));
        c.deliver(new VoteRequest("c", "b", 2, 100, 1, true, false));

        assertEquals(1, c.raft("b").term());
        assertEquals("a", c.raft("b").votedFor(), "still the vote of term 1");
        assertEquals("a", c.raft("b").leaderId());
        assertTrue(grantedVotes(c, "b", "c").isEmpty(), "b granted nothing");
    }

    @Test
    void leaderIgnoresVoteRequestsWhileItHearsFromAQuorum() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");

        c.deliver(new VoteRequest("c", "a", 2, 100, 1, false, false));

        assertEquals(Role.LEADER, c.raft("a").role());
        assertEquals(1, c.raft("a").term());
    }

    @Test
    void followerVotesAgainOnceItHasNotHeardFromTheLeaderForAnElectionTimeout() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.net().isolate("a");
        c.tick("b", E);
        c.net().heal();

        c.deliver(new VoteRequest("c", "b", 2, 100, 1, false, false));

        assertEquals(2, c.raft("b").term());
        assertEquals("c", c.raft("b").votedFor());
        assertEquals(List.of(new VoteResponse("b", "c", 2, true, false)), grantedVotes(c, "b", "c"));
    }

    @Test
    void voteRequestOfALeadershipTransferBypassesTheStickiness() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");

        c.deliver(new VoteRequest("c", "b", 2, 100, 1, false, true));

        assertEquals(2, c.raft("b").term());
        assertEquals("c", c.raft("b").votedFor());
        assertEquals(List.of(new VoteResponse("b", "c", 2, true, false)), grantedVotes(c, "b", "c"));
    }

    private static List<VoteResponse> grantedVotes(TestCluster c, String from, String to) {
        return c.net().sent().stream().filter(m -> m instanceof VoteResponse vr && vr.granted()
            && m.from().equals(from) && m.to().equals(to)).map(m -> (VoteResponse) m).toList();
    }
}
