package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link RaftNode#forgetLeader}: followers told that their leader's process is gone elect a new leader within half an
 * election timeout, where leader stickiness would otherwise make them wait a whole one; a report that does not name
 * the follower's leader changes nothing.
 */
class ForgetLeaderScenarioTest {

    private static final int E = TestCluster.ELECTION_TICKS;

    @Test
    void followersThatForgetADeadLeaderElectANewOneWithinHalfAnElectionTimeout() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(2);
        c.crash("a");

        forget(c, "b", "a");
        forget(c, "c", "a");
        assertNull(c.raft("b").leaderId());

        int rounds = 0;
        while (c.leaders().isEmpty() && rounds < E) {
            c.run(1);
            rounds++;
        }
        assertEquals(1, c.leaders().size(), "a new leader after " + rounds + " ticks");
        assertTrue(rounds <= E / 2 + 1, "elected after " + rounds + " ticks; at most half an election timeout ("
            + E / 2 + ") plus the round of votes");
        assertEquals(2, c.raft(c.leaders().get(0)).term());
    }

    @Test
    void withoutTheReportTheFollowersWaitAWholeElectionTimeout() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(2);
        c.crash("a");

        int rounds = 0;
        while (c.leaders().isEmpty() && rounds < 10 * E) {
            c.run(1);
            rounds++;
        }
        assertEquals(1, c.leaders().size());
        assertTrue(rounds >= E, "elected after " + rounds + " ticks");
    }

    @Test
    void aFollowerThatAloneForgetsItsLeaderCannotDeposeALiveOne() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(2);

        forget(c, "b", "a");
        c.run(3 * E);

        // b's pre-votes meet c, which still hears from a: nobody's term moves and a keeps leading.
        assertEquals(List.of("a"), c.leaders());
        for (String id : List.of("a", "b", "c")) {
            assertEquals(1, c.raft(id).term(), id);
        }
        assertEquals("a", c.raft("b").leaderId(), "b follows a again after its next heartbeat");
    }

    @Test
    void aReportAboutAnotherPeerOrToALeaderChangesNothing() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(2);

        forget(c, "b", "c");
        forget(c, "a", "a");

        assertEquals("a", c.raft("b").leaderId());
        assertEquals(Role.LEADER, c.raft("a").role());
    }

    /** Tells {@code node} that {@code leader}'s process is gone, and handles what that made ready. */
    private static void forget(TestCluster c, String node, String leader) {
        c.on(node, r -> {
            r.forgetLeader(leader);
            return null;
        });
    }
}
