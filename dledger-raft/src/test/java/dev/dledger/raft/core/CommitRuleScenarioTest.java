package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * When an entry commits: once stored on a quorum, and only by counting replicas of an entry of the leader's current
 * term (Raft paper section 5.4.2). The figure-8 scenario of the paper shows why.
 */
class CommitRuleScenarioTest {

    private static final int E = TestCluster.ELECTION_TICKS;

    @Test
    void entryCommitsOnlyOnceAQuorumStoresIt() {
        TestCluster c = TestCluster.of("a", "b", "c", "d", "e");
        c.elect("a");
        c.net().cut("a", "c");
        c.net().cut("a", "d");
        c.net().cut("a", "e");

        ProposeResult r = c.propose("a", "x");
        c.deliverAll();

        assertEquals(1, r.index());
        assertEquals(0, c.raft("a").commitIndex(), "stored on a and b: 2 of 5");
        c.net().heal();
        c.net().cut("a", "d");
        c.net().cut("a", "e");
        c.run(2 * TestCluster.HEARTBEAT_TICKS + 4);

        assertEquals(1, c.raft("a").commitIndex(), "stored on a, b and c: 3 of 5");
        assertEquals(List.of("x"), c.node("a").appliedPayloads());
    }

    @Test
    void followerNeverCommitsBeyondWhatTheLeaderProvedItHolds() {
        TestCluster c = TestCluster.empty(cfg -> cfg);
        Membership voters = Membership.of("a", "b", "c");
        c.add("a", voters, new InMemoryLogView().preload(1, 1), new HardState(2, null));
        c.add("b", voters, new InMemoryLogView().preload(1, 3), new HardState(2, null));

        c.deliver(new AppendEntriesRequest("a", "b", 2, 0, 1, List.of(), 2, 1));

        assertEquals(0, c.raft("b").commitIndex(), "entries 1 and 2 of b were not shown to match the leader's");
        assertEquals(0, c.node("b").appliedIndex);
    }

    @Test
    void entryOfAnOlderTermCommitsUnderTheNewLeadersNoop() {
        TestCluster c = TestCluster.of("a", "b", "c", "d", "e");
        c.elect("a");
        c.net().cut("a", "c");
        c.net().cut("a", "d");
        c.net().cut("a", "e");
        c.propose("a", "x");
        c.deliverAll();
        assertEquals(0, c.raft("a").commitIndex(), "x is on a and b only");
        c.crash("a");
        c.net().heal();
        for (int i = 0; i < E; i++) {
            for (String id : List.of("c", "d", "e")) {
                c.tick(id);
            }
        }

        c.elect("b");
        c.run(2);

        assertEquals(2, c.raft("b").term());
        assertEquals(2, c.raft("b").commitIndex());
        List<Entry> applied = c.node("b").applied;
        assertEquals("x", new String(applied.get(1).data(), StandardCharsets.UTF_8));
        assertEquals(1, applied.get(1).term());
        assertEquals(EntryType.NOOP, applied.get(2).type());
        assertEquals(2, applied.get(2).term());
    }

    /**
     * Figure 8 (a)-(d) of the Raft paper, with the NOOP of each new leader. Nodes a..e stand for S1..S5. Entry x of
     * term 1 reaches a majority in term 3, and the leader knows it, but must not commit it there: a node with a newer
     * last term (e) can still be elected and overwrite it, which it then does.
     */
    @Test
    void figure8EntryOfAnOlderTermOnAMajorityIsNotCommittedAndMayBeOverwritten() {
        TestCluster c = TestCluster.of(cfg -> cfg.withFlowControl(1, 1 << 20, 256, 32L << 20),
            "a", "b", "c", "d", "e");
        figure8UpToE(c);

        // (c) a comes back and wins term 3 with the votes of b, c, d; it brings c up to date with x (1@1), and its
        // NOOP of term 3 reaches b only (the network loses d's appends and exactly those that would store it on c).
        c.restart("a");
        c.net().dropIf(m -> m instanceof AppendEntriesRequest && m.from().equals("a") && m.to().equals("d"));
        c.net().dropIf(m -> m instanceof AppendEntriesRequest ar && ar.from().equals("a") && ar.to().equals("c")
            && ar.entries().stream().anyMatch(en -> en.term() == 3)
            && c.node("c").log.lastIndex() >= ar.prevLogIndex());
        c.elect("a");
        c.tick("a", 2 * TestCluster.HEARTBEAT_TICKS);
        c.deliverAll();
        assertEquals(3, c.raft("a").term());
        assertEquals(1, c.node("c").log.term(1), "x is on a, b and c: a majority of five");
        assertEquals(3, c.node("b").log.term(2), "the NOOP of term 3 is on a and b only");
        assertEquals(1, ReplicationFlowControlScenarioTest.progress(c, "c").matchIndex(), "a knows c holds x");
        assertEquals(2, ReplicationFlowControlScenarioTest.progress(c, "b").matchIndex(), "a knows b holds x");

        assertTrue(c.raft("a").commitIndex() < 1, "x is of an older term: replica counting must not commit it");
        for (String id : List.of("a", "b", "c", "d", "e")) {
            assertTrue(c.node(id).appliedIndex < 1, id + " applied x");
        }

        // (d) a crashes; e (last term 2) wins term 4 with c and d and overwrites x everywhere.
        c.crash("a");
        c.net().heal();
        c.restart("e");
        for (int i = 0; i < E; i++) {
            for (String id : List.of("b", "c", "d")) {
                c.tick(id);
            }
        }
        c.elect("e");
        c.run(3);

        assertEquals(4, c.raft("e").term());
        for (String id : List.of("b", "c", "d", "e")) {
            assertEquals(2, c.node(id).log.term(1), id + " holds e's entry at index 1");
            assertEquals(2, c.raft(id).commitIndex(), id);
            assertFalse(c.node(id).appliedPayloads().contains("x"), id);
        }
    }

    /** Figure 8 (e): once a's NOOP of term 3 is on a majority too, x is committed and e can no longer win. */
    @Test
    void figure8EntryCommittedUnderACurrentTermEntryIsNeverLost() {
        TestCluster c = TestCluster.of(cfg -> cfg.withFlowControl(1, 1 << 20, 256, 32L << 20),
            "a", "b", "c", "d", "e");
        figure8UpToE(c);

        c.restart("a");
        c.net().cut("a", "d");
        c.elect("a");
        c.tick("a", 2 * TestCluster.HEARTBEAT_TICKS);
        c.deliverAll();
        assertEquals(3, c.raft("a").term());
        assertEquals(2, c.raft("a").commitIndex(), "the NOOP of term 3 is on a, b and c, and x with it");
        assertEquals(List.of("x"), c.node("a").appliedPayloads());

        c.crash("a");
        c.net().heal();
        c.restart("e");
        c.run(10 * E);

        List<String> leaders = c.leaders();
        assertEquals(1, leaders.size());
        assertTrue(List.of("b", "c").contains(leaders.get(0)), "only b or c can win: " + leaders);
        for (String id : List.of("b", "c", "d", "e")) {
            assertEquals(1, c.node(id).log.term(1), id + " holds x");
            assertEquals(List.of("x"), c.node(id).appliedPayloads(), id);
        }
    }

    /** Figure 8 (a) and (b): x (1@1) reaches only a and b; a crashes; e wins term 2 but its NOOP reaches nobody. */
    private static void figure8UpToE(TestCluster c) {
        c.elect("a");
        c.net().cut("a", "c");
        c.net().cut("a", "d");
        c.net().cut("a", "e");
        c.propose("a", "x");
        c.deliverAll();
        assertEquals(0, c.raft("a").commitIndex());
        assertEquals(1, c.node("b").log.term(1));

        c.crash("a");
        c.net().heal();
        c.net().dropIf(m -> m instanceof AppendEntriesRequest && m.from().equals("e"));
        for (int i = 0; i < E; i++) {
            for (String id : List.of("b", "c", "d")) {
                c.tick(id);
            }
        }
        c.elect("e");
        assertEquals(2, c.raft("e").term());
        assertEquals(2, c.node("e").log.term(1), "e's NOOP of term 2 at index 1");
        c.crash("e");
        c.net().heal();
    }
}
