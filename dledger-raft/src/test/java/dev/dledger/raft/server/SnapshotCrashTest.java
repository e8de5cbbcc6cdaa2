package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.store.StoreConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A snapshot's state and the index it stands for are one durable unit (issue 16, B3): a crash between writing the
 * snapshot and compacting the log to it never pairs one snapshot's state with another's index.
 */
class SnapshotCrashTest {

    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(4096, 32 * 64);
    private static final Membership VOTERS = Membership.of("n0");

    @TempDir
    Path dir;

    /** Entries {@code from} to {@code from + count - 1} of term 1, each body "e" and its index. */
    static List<Entry> entries(long from, int count) {
        List<Entry> out = new ArrayList<>();
        for (long i = from; i < from + count; i++) {
            out.add(new Entry(i, 1, EntryType.NORMAL, ("e" + i).getBytes(StandardCharsets.UTF_8)));
        }
        return out;
    }

    private static byte[] state(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void aCrashBetweenTheSnapshotFileAndTheCompactionRestoresOneSnapshotWhole() {
        FileNodeStorage storage = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        storage.append(entries(0, 20));
        storage.sync();
        storage.saveSnapshot(new SnapshotMeta(5, 1, VOTERS), state("state after 5"));
        storage.betweenSnapshotSteps(() -> {
            throw new IllegalStateException("crash");
        });
        assertThrows(IllegalStateException.class,
            () -> storage.saveSnapshot(new SnapshotMeta(15, 1, VOTERS), state("state after 15")));
        storage.close();

        FileNodeStorage reopened = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        try {
            long index = reopened.log().snapshot().index();
            String data = new String(reopened.snapshotData(), StandardCharsets.UTF_8);
            // Either snapshot whole, never the state of one at the index of the other.
            assertEquals("state after " + index, data, "snapshot at " + index);
            assertEquals(index + 1, reopened.log().firstIndex());
            assertEquals(19, reopened.log().lastIndex());
            assertArrayEquals(state("e19"), reopened.log().entries(19, 20, Long.MAX_VALUE).get(0).data());
        } finally {
            reopened.close();
        }
    }

    @Test
    void aPromotedWitnessThatCrashesWhileItsSnapshotIsInstalledStillRecordsItsDropsUntilTheInstallIsDoneAgain() {
        // Issue 19: the snapshot that replaces a promoted witness's log is installed in steps (the entries after it
        // removed, its file, the compaction, the record of dropped bodies deleted); a crash before the last leaves the
        // record, so the node refuses to count until the leader sends the snapshot again.
        FileNodeStorage storage = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        storage.append(entries(0, 200));
        storage.sync();
        storage.dropBodiesThrough(150);
        long dropped = storage.log().droppedBodiesThrough();
        assertTrue(dropped >= 0, "the witness dropped bodies");
        SnapshotMeta snap = new SnapshotMeta(180, 1, VOTERS);
        storage.betweenSnapshotSteps(() -> {
            throw new IllegalStateException("crash");
        });
        assertThrows(IllegalStateException.class, () -> storage.installSnapshot(snap, state("state after 180")));
        storage.close();

        FileNodeStorage reopened = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        try {
            // What it dropped (whole files, so less than it was allowed) is still recorded: the node refills again.
            long recorded = reopened.log().droppedBodiesThrough();
            assertTrue(recorded >= 0 && recorded <= dropped, "recorded " + recorded + " of " + dropped);
            reopened.installSnapshot(snap, state("state after 180"));
            assertEquals(-1, reopened.log().droppedBodiesThrough(), "the record is gone once the install is done");
            assertFalse(java.nio.file.Files.exists(dir.resolve("dropped")));
            assertEquals(181, reopened.log().firstIndex());
            assertEquals("state after 180", new String(reopened.snapshotData(), StandardCharsets.UTF_8));
            reopened.append(entries(181, 5));
            reopened.sync();
        } finally {
            reopened.close();
        }
        FileNodeStorage again = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        try {
            assertEquals(-1, again.log().droppedBodiesThrough());
            assertEquals(185, again.log().lastIndex());
            assertArrayEquals(state("e185"), again.log().entries(185, 186, Long.MAX_VALUE).get(0).data());
        } finally {
            again.close();
        }
    }

    @Test
    void aCrashWhileInstallingAPositionOnlySnapshotNeverPairsTheOldStateWithAnIndex() {
        FileNodeStorage storage = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        storage.append(entries(0, 20));
        storage.sync();
        storage.saveSnapshot(new SnapshotMeta(5, 1, VOTERS), state("state after 5"));
        storage.betweenSnapshotSteps(() -> {
            throw new IllegalStateException("crash");
        });
        // The leader's log was compacted by retention: its snapshot says only where its log goes on.
        assertThrows(IllegalStateException.class, () -> storage.installSnapshot(new SnapshotMeta(50, 2, VOTERS),
            SnapshotPosition.encode(4096 * 3)));
        storage.close();

        FileNodeStorage reopened = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        try {
            assertEquals(50, reopened.log().snapshot().index());
            assertTrue(SnapshotPosition.isPosition(reopened.snapshotData()),
                "no state at 50, not the state after 5: " + new String(reopened.snapshotData(), StandardCharsets.UTF_8));
        } finally {
            reopened.close();
        }
    }
    @Test
    void aPositionSnapshotWithAnImageIsRestoredWithItsPositionAfterACrashBetweenItsSteps() {
        FileNodeStorage storage = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        storage.append(entries(0, 20));
        storage.sync();
        storage.betweenSnapshotSteps(() -> {
            throw new IllegalStateException("crash");
        });
        // The leader's log was compacted by retention, and its state machine sent its image with the position.
        byte[] sent = SnapshotPosition.encode(4096 * 3, state("image after 55"));
        assertThrows(IllegalStateException.class, () -> storage.installSnapshot(new SnapshotMeta(50, 2, VOTERS),
            sent));
        storage.close();

        FileNodeStorage reopened = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        try {
            // The compaction the crash interrupted is finished: the log starts at the leader's position, and the
            // image is there for the state machine.
            assertEquals(50, reopened.log().snapshot().index());
            assertEquals(4096 * 3, reopened.store().writePosition());
            assertArrayEquals(sent, reopened.snapshotData());
            assertArrayEquals(state("image after 55"), NodeSnapshot.decode(reopened.snapshotData()).stateMachine());
        } finally {
            reopened.close();
        }
    }

    @Test
    void positionRecordsOfBothLayoutsRead() {
        byte[] old = SnapshotPosition.encode(8192);
        assertEquals(16, old.length, "the layout of stores written before images");
        assertTrue(SnapshotPosition.isPosition(old));
        assertEquals(8192, SnapshotPosition.decode(old));
        assertEquals(0, NodeSnapshot.decode(old).stateMachine().length);
        byte[] withImage = SnapshotPosition.encode(8192, state("tables"));
        assertTrue(SnapshotPosition.isPosition(withImage));
        assertEquals(8192, SnapshotPosition.decode(withImage));
        assertArrayEquals(state("tables"), NodeSnapshot.decode(withImage).stateMachine());
        assertArrayEquals(old, SnapshotPosition.encode(8192, new byte[0]), "no image: the old layout");
    }
}
