package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.SnapshotChunk;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A follower whose log runs past a leader's snapshot, with another term at the snapshot's index (entries of a deposed
 * leader, never committed), installs the snapshot and keeps nothing after it: the file store removes that suffix
 * durably before the snapshot is written, as the storage contract says ("the log becomes empty after the snapshot").
 * It kept the suffix before: the core then found the log ending elsewhere than the Ready said, and the node stopped.
 */
class SnapshotOverConflictingLogTest {

    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(4096, 32 * 64);
    private static final Membership VOTERS = Membership.of("n0", "n1", "n2");
    /** The follower's log: 0..29, all of term 1. */
    private static final int OLD_ENTRIES = 30;
    /** The leader's snapshot ends at 20, an entry of term 2 there. */
    private static final SnapshotMeta SNAPSHOT = new SnapshotMeta(20, 2, VOTERS);

    @TempDir
    Path dir;

    private final ScriptedTransport transport = new ScriptedTransport();
    private RaftGroupNode node;

    @AfterEach
    void close() {
        if (node != null) {
            transport.onThread(node::close);
        }
    }

    private static List<Entry> termOneEntries() {
        List<Entry> out = new ArrayList<>();
        for (long i = 0; i < OLD_ENTRIES; i++) {
            out.add(new Entry(i, 1, EntryType.NORMAL, ("old" + i).getBytes(StandardCharsets.UTF_8)));
        }
        return out;
    }

    private FileNodeStorage storageWithTermOneLog() {
        FileNodeStorage storage = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        storage.append(termOneEntries());
        storage.saveHardState(new HardState(1, null));
        storage.sync();
        return storage;
    }

    private static void assertEndsAtTheSnapshot(FileNodeStorage storage, String when) {
        assertEquals(SNAPSHOT.index(), storage.log().lastIndex(), when + ": last index");
        assertEquals(SNAPSHOT.index() + 1, storage.log().firstIndex(), when + ": first index");
        assertEquals(SNAPSHOT.term(), storage.log().term(SNAPSHOT.index()), when + ": term at the snapshot's index");
        assertEquals(-1, storage.log().term(SNAPSHOT.index() + 1), when + ": an entry after the snapshot");
    }

    @Test
    void aStateSnapshotLeavesNothingAfterItAlsoAfterARestart() {
        FileNodeStorage storage = storageWithTermOneLog();
        storage.installSnapshot(SNAPSHOT, "state at 20".getBytes(StandardCharsets.UTF_8));
        assertEndsAtTheSnapshot(storage, "installed");
        storage.close();
        FileNodeStorage reopened = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        try {
            assertEndsAtTheSnapshot(reopened, "reopened");
        } finally {
            reopened.close();
        }
    }

    @Test
    void aPositionOnlySnapshotLeavesNothingAfterIt() {
        FileNodeStorage storage = storageWithTermOneLog();
        try {
            // The leader's log was compacted by retention and goes on at some position of its own.
            storage.installSnapshot(SNAPSHOT, SnapshotPosition.encode(3 * CONFIG.dataFileSizeBytes()));
            assertEndsAtTheSnapshot(storage, "installed");
        } finally {
            storage.close();
        }
    }

    @Test
    void aCrashAfterTheSnapshotFileNeverBringsTheOldSuffixBackBehindIt() {
        FileNodeStorage storage = storageWithTermOneLog();
        storage.betweenSnapshotSteps(() -> {
            throw new IllegalStateException("crash");
        });
        assertThrows(IllegalStateException.class,
            () -> storage.installSnapshot(SNAPSHOT, "state at 20".getBytes(StandardCharsets.UTF_8)));
        storage.close();
        // The open finishes the install: the snapshot file is there, the log compacted to it, nothing of term 1 after.
        FileNodeStorage reopened = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        try {
            assertEndsAtTheSnapshot(reopened, "reopened after the crash");
        } finally {
            reopened.close();
        }
    }

    @Test
    void anOpenRemovesTheOldSuffixBehindASnapshotFileLeftUncompacted() {
        // The state an install of the old code left after a crash between its two steps: the snapshot file written,
        // the log still holding entries of term 1 at and after its index (made here with saveSnapshot, which writes
        // the file first too).
        FileNodeStorage storage = storageWithTermOneLog();
        storage.betweenSnapshotSteps(() -> {
            throw new IllegalStateException("crash");
        });
        assertThrows(IllegalStateException.class,
            () -> storage.saveSnapshot(SNAPSHOT, "state at 20".getBytes(StandardCharsets.UTF_8)));
        assertEquals(OLD_ENTRIES - 1, storage.log().lastIndex(), "the log before the open");
        storage.close();
        FileNodeStorage reopened = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        try {
            assertEndsAtTheSnapshot(reopened, "reopened");
        } finally {
            reopened.close();
        }
    }

    @Test
    void aFollowerInstallsTheSnapshotOverItsLongerLogAndGoesOn() {
        FileNodeStorage storage = storageWithTermOneLog();
        node = new RaftGroupNode(NodeOptions.defaults("g", "n1"), VOTERS, storage,
            new SnapshotInstallBindingTest.RestoreRecorder(), transport);
        transport.runTasks();
        byte[] data = "state at 20".getBytes(StandardCharsets.UTF_8);
        InstallSnapshotRequest request = new InstallSnapshotRequest("n0", "n1", 2, SNAPSHOT, 1, null);
        transport.deliver(new SnapshotChunk("n0", "n1", request, data.length, SnapshotTransfers.crc(data), 0, data,
            false));
        transport.runTasks();

        assertFalse(node.status().failed(), "the node stopped installing the snapshot");
        assertEquals(SNAPSHOT.index(), node.status().commitIndex());
        assertEndsAtTheSnapshot(storage, "installed by the node");
    }
}
