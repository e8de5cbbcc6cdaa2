package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/**
 * Per-follower replication: PROBE (one AppendEntries in flight), then REPLICATE (pipelined within the in-flight
 * bounds by count and bytes), in batches bounded by entries and bytes per message.
 */
class ReplicationFlowControlScenarioTest {

    private static final int HB = TestCluster.HEARTBEAT_TICKS;

    private static final Predicate<Message> ACKS_FROM_B = m -> m instanceof AppendEntriesResponse
        && m.from().equals("b");

    @Test
    void probingLeaderKeepsOneAppendInFlightUntilTheFollowerAnswers() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.net().dropIf(ACKS_FROM_B);
        c.elect("a");
        int base = c.net().sent().size();

        for (int i = 0; i < 5; i++) {
            c.propose("a", "p" + i);
            c.deliverAll();
        }

        assertEquals(List.of(), appendsTo(c, "b", base), "b's probe is unanswered: nothing more is sent");
        assertEquals(5, withEntries(appendsTo(c, "c", base)).size(), "c answered its probe: one append a proposal");
        assertEquals("PROBE", progress(c, "b").state());
        assertEquals("REPLICATE", progress(c, "c").state());

        c.tick("a", HB);
        c.deliverAll();
        List<AppendEntriesRequest> probes = appendsTo(c, "b", base);
        assertEquals(1, probes.size(), "one probe a heartbeat");
        assertEquals(5, probes.get(0).lastIndex(), "the probe carries what b lacks");

        c.net().heal();
        c.tick("a", HB);
        c.deliverAll();
        assertEquals("REPLICATE", progress(c, "b").state());
        assertEquals(5, progress(c, "b").matchIndex());
        assertEquals(5, c.node("b").log.lastIndex());
    }

    @Test
    void replicatingLeaderPipelinesUpToMaxInflightMessages() {
        TestCluster c = TestCluster.of(cfg -> cfg.withFlowControl(256, 1 << 20, 3, 32L << 20), "a", "b", "c");
        c.elect("a");
        c.run(HB);
        assertEquals("REPLICATE", progress(c, "b").state());
        int base = c.net().sent().size();

        for (int i = 1; i <= 6; i++) {
            c.propose("a", "p" + i);
            c.deliverWhere(ACKS_FROM_B.negate());
        }

        List<AppendEntriesRequest> toB = withEntries(appendsTo(c, "b", base));
        assertEquals(3, toB.size(), "three appends in flight without waiting for an answer");
        assertEquals(List.of(1L, 2L, 3L), toB.stream().map(AppendEntriesRequest::lastIndex).toList());
        assertEquals(0, progress(c, "b").matchIndex());
        assertEquals(4, progress(c, "b").nextIndex());

        int beforeAck = c.net().sent().size();
        c.deliver(c.net().poll(ACKS_FROM_B));

        List<AppendEntriesRequest> next = withEntries(appendsTo(c, "b", beforeAck));
        assertEquals(1, next.size(), "one answer frees one slot");
        assertEquals(4, next.get(0).entries().get(0).index());
        assertEquals(6, next.get(0).lastIndex(), "everything pending travels in that one append");

        c.deliverAll();
        assertEquals(6, progress(c, "b").matchIndex());
        assertEquals(6, c.raft("a").commitIndex());
    }

    @Test
    void replicatingLeaderStopsSendingOnceTheInflightBytesReachTheBound() {
        long maxInflightBytes = 300;
        TestCluster c = TestCluster.of(cfg -> cfg.withFlowControl(256, 1 << 20, 256, maxInflightBytes),
            "a", "b", "c");
        c.elect("a");
        c.run(HB);
        int base = c.net().sent().size();

        for (int i = 0; i < 6; i++) {
            c.on("a", r -> r.propose(new byte[100]));
            c.deliverWhere(ACKS_FROM_B.negate());
        }

        List<AppendEntriesRequest> toB = withEntries(appendsTo(c, "b", base));
        long[] bytes = toB.stream().mapToLong(ReplicationFlowControlScenarioTest::bytes).toArray();
        long beforeLast = 0;
        for (int i = 0; i < bytes.length - 1; i++) {
            beforeLast += bytes[i];
        }
        assertTrue(toB.size() >= 2, "two 148-byte entries fit in 300 bytes: " + toB.size());
        assertTrue(beforeLast < maxInflightBytes, "each append left while under the bound: " + beforeLast);
        assertTrue(toB.size() < 6, "replication paused: " + toB.size() + " appends in flight");
        assertEquals(6, withEntries(appendsTo(c, "c", base)).size(), "c is not held back by b's window");
    }

    @Test
    void catchUpIsBatchedByMaxEntriesPerMessage() {
        TestCluster c = laggingFollower(cfg -> cfg.withFlowControl(4, 1 << 20, 256, 32L << 20));

        c.elect("a");
        c.run(HB);

        List<AppendEntriesRequest> toB = withEntries(appendsTo(c, "b", 0));
        for (AppendEntriesRequest ar : toB) {
            assertTrue(ar.entries().size() <= 4, ar.toString());
        }
        assertTrue(toB.stream().anyMatch(ar -> ar.entries().size() == 4), "full batches are used");
        assertEquals(c.node("a").log.entries(), c.node("b").log.entries());
    }

    @Test
    void catchUpIsBatchedByMaxBytesPerMessageButAlwaysCarriesOneEntry() {
        long maxBytes = 120;
        TestCluster c = laggingFollower(cfg -> cfg.withFlowControl(256, maxBytes, 256, 32L << 20));
        c.elect("a");
        c.run(HB);
        c.on("a", r -> r.propose(new byte[500]));
        c.deliverAll();

        List<AppendEntriesRequest> toB = withEntries(appendsTo(c, "b", 0));
        for (AppendEntriesRequest ar : toB) {
            assertTrue(ar.entries().size() == 1 || bytes(ar) <= maxBytes, ar + " carries " + bytes(ar) + " bytes");
        }
        assertTrue(toB.stream().anyMatch(ar -> ar.entries().size() == 2), "two small entries share a message");
        assertTrue(toB.stream().anyMatch(ar -> bytes(ar) > maxBytes), "an entry above the bound still travels");
        assertEquals(c.node("a").log.entries(), c.node("b").log.entries());
    }

    @Test
    void proposedBatchGetsConsecutiveIndexesAndTravelsInOneMessage() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        int base = c.net().sent().size();

        ProposeResult r = c.on("a", n -> n.propose(List.of(bytes("x"), bytes("y"), bytes("z"))));
        c.deliverAll();

        assertEquals(1, r.index());
        List<AppendEntriesRequest> toC = withEntries(appendsTo(c, "c", base));
        assertEquals(1, toC.size());
        assertEquals(List.of(1L, 2L, 3L), toC.get(0).entries().stream().map(Entry::index).toList());
        c.run(HB);
        assertEquals(List.of("x", "y", "z"), c.node("c").appliedPayloads());
    }

    @Test
    void lostAppendIsSentAgainAfterTheReplicationTimeout() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);

        c.propose("a", "lost once");
        c.net().dropPending(m -> m instanceof AppendEntriesRequest && m.to().equals("b"));
        c.deliverAll();
        assertEquals(0, c.node("b").log.lastIndex());

        c.run(c.node("a").config.replicationTimeoutTicks() + 2 * HB);

        assertEquals(1, c.node("b").log.lastIndex());
        assertEquals(List.of("lost once"), c.node("b").appliedPayloads());
    }

    @Test
    void progressMarksAFollowerInactiveAfterAnElectionTimeoutOfSilence() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        assertTrue(progress(c, "c").active());
        c.net().isolate("c");

        c.run(TestCluster.ELECTION_TICKS + 1);

        assertFalse(progress(c, "c").active());
        assertTrue(progress(c, "b").active());
        assertEquals(List.of("a"), c.leaders());
    }

    @Test
    void progressOfAFollowerThatNeverAnsweredIsNotActive() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.net().isolate("c");
        c.elect("a");

        c.run(TestCluster.HEARTBEAT_TICKS);

        assertTrue(progress(c, "b").active());
        assertFalse(progress(c, "c").active(), "FollowerProgress.active: answered within the last election timeout");
    }

    /** a and c hold 20 entries of term 1; b holds nothing. */
    private static TestCluster laggingFollower(java.util.function.UnaryOperator<RaftConfig> tune) {
        TestCluster c = TestCluster.empty(tune);
        Membership voters = Membership.of("a", "b", "c");
        c.add("a", voters, new InMemoryLogView().preload(1, 20), new HardState(1, null));
        c.add("b", voters, new InMemoryLogView(), new HardState(1, null));
        c.add("c", voters, new InMemoryLogView().preload(1, 20), new HardState(1, null));
        return c;
    }

    static FollowerProgress progress(TestCluster c, String follower) {
        for (FollowerProgress p : c.raft("a").progress()) {
            if (p.id().equals(follower)) {
                return p;
            }
        }
        throw new AssertionError("a tracks no " + follower);
    }

    static List<AppendEntriesRequest> appendsTo(TestCluster c, String to, int fromPosition) {
        List<Message> sent = c.net().sent();
        List<AppendEntriesRequest> out = new ArrayList<>();
        for (Message m : sent.subList(fromPosition, sent.size())) {
            if (m instanceof AppendEntriesRequest ar && ar.to().equals(to)) {
                out.add(ar);
            }
        }
        return out;
    }

    static List<AppendEntriesRequest> withEntries(List<AppendEntriesRequest> appends) {
        return appends.stream().filter(ar -> !ar.entries().isEmpty()).toList();
    }

    private static long bytes(AppendEntriesRequest ar) {
        return ar.entries().stream().mapToLong(Entry::sizeBytes).sum();
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
