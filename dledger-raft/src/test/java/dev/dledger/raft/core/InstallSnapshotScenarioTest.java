package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** InstallSnapshot (Raft paper section 7) for followers that need entries the leader compacted away. */
class InstallSnapshotScenarioTest {

    private static final int HB = TestCluster.HEARTBEAT_TICKS;
    private static final Membership ABC = Membership.of("a", "b", "c");

    /** a leads a, b, c; c missed entries 1..10, which a compacted up to 8. */
    private static TestCluster followerBehindCompaction() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.net().isolate("c");
        for (int i = 1; i <= 10; i++) {
            c.propose("a", "p" + i);
        }
        c.run(HB);
        assertEquals(10, c.raft("a").commitIndex());
        c.compact("a", 8);
        assertEquals(9, c.node("a").log.firstIndex());
        c.net().heal();
        return c;
    }

    /** Ticks a with everything but snapshots delivered, until a snapshot for c waits in the network. */
    private static InstallSnapshotRequest awaitSnapshotFor(TestCluster c, String follower) {
        for (int i = 0; i < 5 * HB; i++) {
            List<InstallSnapshotRequest> waiting = c.net().pending(InstallSnapshotRequest.class);
            if (!waiting.isEmpty()) {
                assertEquals(follower, waiting.get(0).to());
                return waiting.get(0);
            }
            c.tick("a");
            c.deliverWhere(m -> !(m instanceof InstallSnapshotRequest));
        }
        throw new AssertionError("no snapshot was sent to " + follower);
    }

    @Test
    void followerBehindTheCompactedLogGetsTheSnapshotThenTheRest() {
        TestCluster c = followerBehindCompaction();

        InstallSnapshotRequest req = awaitSnapshotFor(c, "c");

        assertEquals(new SnapshotMeta(8, 1, ABC), req.snapshot());
        assertNull(req.data(), "the core names the snapshot; the drivers move the bytes");
        assertEquals("SNAPSHOT", ReplicationFlowControlScenarioTest.progress(c, "c").state());

        c.deliverAll();
        c.run(HB);

        assertTrue(c.node("c").readies.stream().anyMatch(rd -> new SnapshotMeta(8, 1, ABC).equals(rd.snapshot())));
        assertArrayEquals("snapshot of a at 8".getBytes(StandardCharsets.UTF_8), c.node("c").receivedSnapshotData);
        assertTrue(c.net().sent().stream().anyMatch(m -> m instanceof InstallSnapshotResponse r
            && r.from().equals("c") && r.matchIndex() == 8));
        assertEquals(9, c.node("c").log.firstIndex());
        assertEquals(c.node("a").log.entries(), c.node("c").log.entries(), "9 and 10 followed the snapshot");
        assertEquals(10, c.raft("c").commitIndex());
        assertEquals(List.of("p9", "p10"), c.node("c").appliedPayloads(), "applied on top of the snapshot");
        assertEquals("REPLICATE", ReplicationFlowControlScenarioTest.progress(c, "c").state());
        assertEquals(10, ReplicationFlowControlScenarioTest.progress(c, "c").matchIndex());
    }

    @Test
    void snapshotFailureReportedByTheDriverStartsReplicationOver() {
        TestCluster c = followerBehindCompaction();
        awaitSnapshotFor(c, "c");
        c.net().dropPending(m -> m instanceof InstallSnapshotRequest);

        c.on("a", n -> {
            n.reportSnapshotFailed("c");
            return null;
        });

        assertEquals("PROBE", ReplicationFlowControlScenarioTest.progress(c, "c").state());
        c.run(2 * HB);
        long sentSnapshots = c.net().sent().stream().filter(m -> m instanceof InstallSnapshotRequest).count();
        assertEquals(2, sentSnapshots, "the leader found out again that c needs a snapshot");
        assertEquals(c.node("a").log.entries(), c.node("c").log.entries());
    }

    @Test
    void newVoterLearnsTheGroupFromTheSnapshot() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.add("d", Membership.EMPTY, new InMemoryLogView(), HardState.INITIAL);
        c.net().isolate("d");
        c.on("a", n -> n.addVoter("d"));
        c.propose("a", "x");
        c.run(HB);
        assertEquals(2, c.raft("a").commitIndex());
        c.compact("a", 2);
        c.net().heal();

        c.run(4 * HB);

        Membership abcd = Membership.of("a", "b", "c", "d");
        assertEquals(abcd, c.raft("d").membership());
        assertEquals(new SnapshotMeta(2, 1, abcd), c.node("d").log.snapshot());
        assertEquals(2, c.raft("d").commitIndex());
    }

    @Test
    void followerThatAlreadyHoldsTheSnapshotsLastEntryDoesNotInstallIt() {
        TestCluster c = followerBehindCompaction();
        int readiesBefore = c.node("b").readies.size();
        List<Entry> before = c.node("b").log.entries();

        c.deliver(new InstallSnapshotRequest("a", "b", 1, new SnapshotMeta(8, 1, ABC), 99,
            "unused".getBytes(StandardCharsets.UTF_8)));

        for (Ready rd : c.node("b").readies.subList(readiesBefore, c.node("b").readies.size())) {
            assertNull(rd.snapshot());
        }
        assertEquals(before, c.node("b").log.entries());
        InstallSnapshotResponse r = c.net().pending(InstallSnapshotResponse.class).get(0);
        assertTrue(r.matchIndex() >= 8, r.toString());
    }

    @Test
    void restartedFollowerStartsFromItsSnapshot() {
        TestCluster c = followerBehindCompaction();
        awaitSnapshotFor(c, "c");
        c.deliverAll();
        c.run(HB);

        c.crash("c");
        c.restart("c");

        assertTrue(c.raft("c").commitIndex() >= 8, "everything in the snapshot is committed");
        assertEquals(8, c.raft("c").appliedIndex(), "the in-memory state machine restarts from the snapshot");
        assertEquals(ABC, c.raft("c").membership());
        c.run(2 * HB);
        assertEquals(List.of("p9", "p10"), c.node("c").appliedPayloads());
    }
}
