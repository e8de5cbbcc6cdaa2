package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class PreferredLeaderTest {

    /** a, b and the preferred leader c (election timeout 10 ticks, heartbeat 2), c cut off for now. */
    private static CoreCluster groupWithoutC() {
        CoreCluster c = new CoreCluster(id -> RaftConfig.defaults(id).withTimeouts(10, 2).withPreferredLeader("c"),
            "a", "b", "c");
        c.isolated.add("c");
        return c;
    }

    @Test
    void leaderHandsOverToThePreferredNodeOnceItIsCaughtUp() {
        CoreCluster c = groupWithoutC();
        RaftNode first = c.electLeader();
        assertEquals(false, first.id().equals("c"));
        c.isolated.clear();
        c.tickUntil(() -> c.node("c").role() == Role.LEADER, 100);
        c.tick(30);
        assertEquals(Role.LEADER, c.node("c").role(), "the preferred leader keeps leading");
    }

    @Test
    void preferredNodeIsHandedTheLeadershipOnlyAfterAnsweringSteadily() {
        // Election timeout 10 ticks: a silence over 5 restarts the steady time, 10 steady ticks hand over.
        CoreCluster c = groupWithoutC();
        RaftNode first = c.electLeader();
        long term = first.term();
        c.isolated.clear();
        c.tick(6);
        assertEquals(Role.LEADER, first.role(), "c answered for 6 ticks only");
        // c stalls once more (a process starved right after its restart), shorter than its election timeout.
        c.isolated.add("c");
        c.tick(8);
        c.isolated.clear();
        c.tick(8);
        assertEquals(Role.LEADER, first.role(), "c answered steadily for 8 ticks since its stall");
        assertEquals(term, c.node("c").term(), "no election meanwhile");
        c.tickUntil(() -> c.node("c").role() == Role.LEADER, 40);
        assertEquals(term + 1, c.node("c").term(), "handed over in one term");
    }

    @Test
    void theHandOverIsAnnouncedAHeartbeatBeforeItStartsAndProposalsAreTakenMeanwhile() {
        CoreCluster c = groupWithoutC();
        RaftNode first = c.electLeader();
        c.isolated.clear();
        c.tickUntil(() -> first.leadTransferee() != null, 100);
        assertEquals("c", first.leadTransferee(), "announced");
        // A proposal sent by a client that had not seen the announcement yet is taken, not refused as TRANSFERRING.
        assertEquals(ProposeResult.Status.ACCEPTED, first.propose("sent before the announcement was seen".getBytes(
            java.nio.charset.StandardCharsets.UTF_8)).status());
        c.tickUntil(() -> c.node("c").role() == Role.LEADER, 40);
        assertEquals(first.term(), c.node("c").term(), "handed over in one term");
    }

    @Test
    void preferredLeaderThatCannotBeReachedLeavesTheLeaderInPlace() {
        CoreCluster c = groupWithoutC();
        RaftNode leader = c.electLeader();
        c.tick(100);
        assertEquals(Role.LEADER, leader.role());
    }
}
