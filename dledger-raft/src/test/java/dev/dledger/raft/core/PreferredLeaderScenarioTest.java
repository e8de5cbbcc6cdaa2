package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** RaftConfig.preferredLeader: a leader hands over to the preferred voter once it is caught up and active. */
class PreferredLeaderScenarioTest {

    private static final int E = TestCluster.ELECTION_TICKS;

    @Test
    void leaderHandsOverToThePreferredLeaderOnceItIsCaughtUp() {
        TestCluster c = TestCluster.of(cfg -> cfg.withPreferredLeader("b"), "a", "b", "c");
        c.elect("a");
        c.propose("a", "x");

        // b has answered steadily for an election timeout by then (RaftNode.PREFERRED_STEADY_ELECTIONS), ready to lead.
        c.run(4 * E);

        assertEquals(List.of("b"), c.leaders());
        assertTrue(c.net().sent().contains(new TimeoutNow("a", "b", 1)), "handed over by a transfer");
        assertEquals(2, c.raft("b").term(), "no election beyond the transfer's");
        assertEquals(List.of("x"), c.node("b").appliedPayloads());
    }

    @Test
    void preferredLeaderWhoseDriverIsNotReadyToLeadIsHandedTheLeadershipOnlyOnceItIs() {
        TestCluster c = TestCluster.of(cfg -> cfg.withPreferredLeader("b"), "a", "b", "c");
        // b's application runs behind its log (a broker still dispatching what it caught up on).
        c.raft("b").setLeadReady(false);
        c.elect("a");
        c.propose("a", "x");

        c.run(4 * E);

        assertEquals(List.of("a"), c.leaders(), "b answers steadily but says it could not serve yet");
        assertTrue(c.net().sent().stream().noneMatch(m -> m instanceof TimeoutNow));
        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("a", "y").status(), "no transfer holds up proposals");

        c.raft("b").setLeadReady(true);
        c.run(3 * E);

        assertEquals(List.of("b"), c.leaders());
        assertEquals(List.of("x", "y"), c.node("b").appliedPayloads());
    }

    @Test
    void onlyThePreferredLeaderSaysItIsReadyToLead() {
        TestCluster c = TestCluster.of(cfg -> cfg.withPreferredLeader("b"), "a", "b", "c");
        c.elect("a");
        c.propose("a", "x");

        c.run(TestCluster.HEARTBEAT_TICKS);

        List<AppendEntriesResponse> answers = c.net().sent().stream()
            .filter(m -> m instanceof AppendEntriesResponse r && r.success()).map(m -> (AppendEntriesResponse) m).toList();
        assertTrue(answers.stream().anyMatch(r -> r.from().equals("b") && r.leadReady()), "b says it is ready");
        assertTrue(answers.stream().noneMatch(r -> r.from().equals("c") && r.leadReady()), "c never does");
    }

    @Test
    void preferredLeaderThatNeverAnsweredIsNotTransferredTo() {
        TestCluster c = TestCluster.of(cfg -> cfg.withPreferredLeader("b"), "a", "b", "c");
        c.net().isolate("b");
        c.elect("a");

        c.run(TestCluster.HEARTBEAT_TICKS);

        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("a", "x").status(),
            "b answered nothing, so it is not an active voter: no transfer may hold up proposals");
    }

    @Test
    void unreachablePreferredLeaderGetsLeadershipOnceItIsBack() {
        TestCluster c = TestCluster.of(cfg -> cfg.withPreferredLeader("b"), "a", "b", "c");
        c.net().isolate("b");
        c.elect("a");

        c.run(3 * E);

        assertEquals(List.of("a"), c.leaders());
        assertTrue(c.net().sent().stream().noneMatch(m -> m instanceof TimeoutNow));
        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("a", "x").status(), "no transfer is pending");

        c.net().heal();
        c.run(12 * E);

        assertEquals(List.of("b"), c.leaders());
        assertEquals(List.of("x"), c.node("b").appliedPayloads());
    }

    @Test
    void preferredLeaderThatLeadsKeepsLeading() {
        TestCluster c = TestCluster.of(cfg -> cfg.withPreferredLeader("a"), "a", "b", "c");
        c.elect("a");

        c.run(5 * E);

        assertEquals(List.of("a"), c.leaders());
        assertEquals(1, c.raft("a").term());
        assertTrue(c.net().sent().stream().noneMatch(m -> m instanceof TimeoutNow));
    }

    @Test
    void preferredLeaderThatIsNoVoterIsIgnored() {
        TestCluster c = TestCluster.of(cfg -> cfg.withPreferredLeader("z"), "a", "b", "c");
        c.elect("a");

        c.run(5 * E);

        assertEquals(List.of("a"), c.leaders());
        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("a", "x").status());
    }
}
