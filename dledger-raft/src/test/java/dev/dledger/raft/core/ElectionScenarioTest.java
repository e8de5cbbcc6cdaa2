package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Leader election (Raft paper section 5.2) with randomized timeouts drawn from the injected RandomSource. */
class ElectionScenarioTest {

    private static final int E = TestCluster.ELECTION_TICKS;

    @Test
    void singleNodeElectsItselfAfterItsElectionTimeoutAndCommitsItsNoop() {
        TestCluster c = TestCluster.of("a");
        c.tick("a", E - 1);
        assertEquals(Role.FOLLOWER, c.raft("a").role());

        c.tick("a");

        assertEquals(Role.LEADER, c.raft("a").role());
        assertEquals(1, c.raft("a").term());
        assertEquals(0, c.raft("a").commitIndex());
        Entry noop = c.node("a").applied.get(0);
        assertEquals(EntryType.NOOP, noop.type());
        assertEquals(1, noop.term());
    }

    @Test
    void followerCampaignsExactlyWhenItsRandomizedTimeoutExpires() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.node("a").random.always(7);
        c.restart("a");

        c.tick("a", E + 6);
        assertEquals(Role.FOLLOWER, c.raft("a").role());
        c.tick("a");

        assertEquals(Role.PRE_CANDIDATE, c.raft("a").role());
        for (int bound : c.node("a").random.bounds()) {
            assertEquals(E, bound, "jitter is drawn from [0, electionTimeoutTicks)");
        }
    }

    @Test
    void largestJitterStillCampaignsBeforeTwiceTheElectionTimeout() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.node("a").random.always(E - 1);
        c.restart("a");

        c.tick("a", 2 * E - 2);
        assertEquals(Role.FOLLOWER, c.raft("a").role());
        c.tick("a");

        assertEquals(Role.PRE_CANDIDATE, c.raft("a").role());
    }

    @Test
    void firstNodeToTimeOutWinsAndEveryoneFollowsIt() {
        TestCluster c = TestCluster.of("a", "b", "c");

        c.run(E);

        assertEquals(List.of("a"), c.leaders());
        for (String id : List.of("a", "b", "c")) {
            assertEquals(1, c.raft(id).term(), id);
            assertEquals("a", c.raft(id).leaderId(), id);
        }
        c.run(2 * TestCluster.HEARTBEAT_TICKS);
        for (String id : List.of("a", "b", "c")) {
            assertEquals(0, c.raft(id).commitIndex(), id + " learned that the NOOP committed");
            assertEquals(EntryType.NOOP, c.node(id).log.entry(0).type());
        }
    }

    @Test
    void heartbeatsKeepFollowersFromCampaigning() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        int votesBefore = countVoteRequests(c);

        c.run(20 * E);

        assertEquals(List.of("a"), c.leaders());
        assertEquals(1, c.raft("b").term());
        assertEquals(votesBefore, countVoteRequests(c), "nobody campaigned under a live leader");
    }

    @Test
    void nodeWithoutAMajorityNeverBecomesLeader() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.net().isolate("b");
        c.net().isolate("c");

        for (int i = 0; i < 10 * E; i++) {
            c.tick("a");
            c.deliverAll();
        }

        assertTrue(c.leaders().isEmpty());
        assertEquals(0, c.raft("a").term(), "pre-vote keeps a lonely node from raising its term");
    }

    @Test
    void candidateBecomesFollowerOnAppendFromALeaderOfItsTerm() {
        TestCluster c = TestCluster.of(cfg -> cfg.withElectionSafety(false, true), "a", "b", "c");
        c.net().isolate("b");
        c.tick("b", E + 2);
        assertEquals(Role.CANDIDATE, c.raft("b").role());
        assertEquals(1, c.raft("b").term());
        c.net().heal();

        c.deliver(new AppendEntriesRequest("a", "b", 1, -1, 0, List.of(), -1, 1));

        assertEquals(Role.FOLLOWER, c.raft("b").role());
        assertEquals(1, c.raft("b").term());
        assertEquals("a", c.raft("b").leaderId());
    }

    @Test
    void leaderStepsDownOnAnyMessageOfAHigherTerm() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");

        c.deliver(new AppendEntriesResponse("b", "a", 5, false, -1, 0, 0, -1, 0));

        assertEquals(Role.FOLLOWER, c.raft("a").role());
        assertEquals(5, c.raft("a").term());
        assertNull(c.raft("a").votedFor());
        assertEquals(new HardState(5, null), c.node("a").hardState, "the new term is persisted");
    }

    @Test
    void splitVoteEndsOnceTheJitterSeparatesTheCandidates() {
        TestCluster c = TestCluster.of(cfg -> cfg.withElectionSafety(false, true), "a", "b", "c");
        c.node("b").random.always(0);
        c.restart("b");
        c.net().isolate("c");

        for (int i = 0; i < E; i++) {
            c.tickAll();
            c.deliverAll();
        }
        assertEquals(Role.CANDIDATE, c.raft("a").role());
        assertEquals(Role.CANDIDATE, c.raft("b").role());
        assertEquals(1, c.raft("a").term());
        assertEquals(1, c.raft("b").term());
        assertTrue(c.leaders().isEmpty(), "each candidate voted for itself: no majority");

        c.node("b").random.always(5);
        c.run(4 * E);

        assertEquals(List.of("a"), c.leaders());
        assertEquals(Role.FOLLOWER, c.raft("b").role());
        assertEquals(c.raft("a").term(), c.raft("b").term());
        assertTrue(c.raft("a").term() >= 2);
    }

    private static int countVoteRequests(TestCluster c) {
        int n = 0;
        for (Message m : c.net().sent()) {
            if (m instanceof VoteRequest) {
                n++;
            }
        }
        return n;
    }
}
