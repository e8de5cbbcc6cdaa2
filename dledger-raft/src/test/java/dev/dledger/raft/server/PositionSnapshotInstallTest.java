package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A follower installs the position-only snapshots of a leader whose log retention compacts (the leader's log goes on
 * at a data position, and the follower's must go on at the same one: RocketMQ's physical offsets are built from it).
 * Seen in CI (RetentionCatchUpTest): a follower restarted behind retention first installed an old transfer of the
 * leader's, snapshot 356 at position 36,864, which started its log with an empty data file there, then the leader's
 * next one, 558 at 57,344, before any entry was written; the empty file kept the old start, and every later entry sat
 * 20,480 bytes (five files) before the leader's.
 */
class PositionSnapshotInstallTest {

    private static final int FILE = 4096;
    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(FILE, 32 * 64);
    private static final Membership VOTERS = Membership.of("n0", "n1", "n2");

    @TempDir
    Path dir;

    /** A follower with a short log of its own, which then installs the leader's position-only snapshot 356. */
    private FileNodeStorage followerAt356() {
        FileNodeStorage storage = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        storage.append(SnapshotCrashTest.entries(0, 6));
        storage.sync();
        storage.installSnapshot(new SnapshotMeta(356, 1, VOTERS), SnapshotPosition.encode(9L * FILE));
        assertEquals(9L * FILE, storage.store().writePosition());
        return storage;
    }

    @Test
    void aLaterPositionOnlySnapshotBeforeAnyEntryMovesTheStartToTheLeadersNewPosition() {
        FileNodeStorage storage = followerAt356();
        try {
            storage.installSnapshot(new SnapshotMeta(558, 1, VOTERS), SnapshotPosition.encode(14L * FILE));
            assertEquals(14L * FILE, storage.store().writePosition());
            storage.append(SnapshotCrashTest.entries(559, 3));
            storage.sync();
            assertEquals(14L * FILE, storage.store().position(559));
            for (SegmentedLogStore.DataFile f : storage.store().dataFiles()) {
                assertTrue(f.start() >= 14L * FILE, "a data file left before the new start: " + f);
            }
        } finally {
            storage.close();
        }
        FileNodeStorage reopened = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        try {
            assertEquals(558, reopened.log().snapshot().index());
            assertEquals(561, reopened.log().lastIndex());
            assertEquals(14L * FILE, reopened.store().position(559));
        } finally {
            reopened.close();
        }
    }
}
