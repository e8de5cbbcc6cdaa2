package dev.dledger.raft.server;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.SnapshotMeta;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * A {@link NodeStorage} in memory whose {@link #sync()} waits while its gate is closed, so that a test can keep log
 * writes written but not durable for as long as it wants; counts the syncs that completed.
 */
final class GatedSyncStorage implements NodeStorage {
    private final MemoryNodeStorage inner = new MemoryNodeStorage();
    private volatile CountDownLatch gate;
    private volatile long syncs;

    /** Closes the gate (syncs from now on wait) or opens it (waiting syncs go on). */
    void blockSyncs(boolean block) {
        if (block) {
            gate = new CountDownLatch(1);
        } else {
            CountDownLatch g = gate;
            gate = null;
            if (g != null) {
                g.countDown();
            }
        }
    }

    /** Syncs completed so far. */
    long syncs() {
        return syncs;
    }

    /** Whether the log holds an entry with exactly this payload, and how many. */
    long count(byte[] payload) {
        LogView log = inner.log();
        return log.entries(log.firstIndex(), log.lastIndex() + 1, Long.MAX_VALUE).stream()
            .filter(e -> java.util.Arrays.equals(e.data(), payload)).count();
    }

    @Override
    public void sync() {
        CountDownLatch g = gate;
        if (g != null) {
            try {
                g.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new StorageException("interrupted in sync", e);
            }
        }
        inner.sync();
        syncs++;
    }

    @Override
    public LogView log() {
        return inner.log();
    }

    @Override
    public HardState hardState() {
        return inner.hardState();
    }

    @Override
    public void saveHardState(HardState hardState) {
        inner.saveHardState(hardState);
    }

    @Override
    public void truncateSuffix(long fromIndex) {
        inner.truncateSuffix(fromIndex);
    }

    @Override
    public long[] append(List<Entry> entries) {
        return inner.append(entries);
    }

    @Override
    public List<Entry> configEntries() {
        return inner.configEntries();
    }

    @Override
    public byte[] snapshotData() {
        return inner.snapshotData();
    }

    @Override
    public void saveSnapshot(SnapshotMeta meta, byte[] data) {
        inner.saveSnapshot(meta, data);
    }

    @Override
    public void installSnapshot(SnapshotMeta meta, byte[] data) {
        inner.installSnapshot(meta, data);
    }

    @Override
    public long committedCheckpoint() {
        return inner.committedCheckpoint();
    }

    @Override
    public void checkpointCommit(long commitIndex) {
        inner.checkpointCommit(commitIndex);
    }

    @Override
    public void close() {
        inner.close();
    }
}
