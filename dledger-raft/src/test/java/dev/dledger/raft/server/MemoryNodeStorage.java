package dev.dledger.raft.server;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.MemoryLog;
import dev.dledger.raft.core.SnapshotMeta;
import java.util.List;

/**
 * A {@link NodeStorage} in memory, for driver tests; survives a node restart when the same instance is reused. The
 * driver thread writes while tests read, so every method holds the instance's lock.
 */
class MemoryNodeStorage implements NodeStorage, LogView {

    private final MemoryLog log = new MemoryLog();
    private byte[] snapshotData;
    private HardState hardState = HardState.INITIAL;
    private long nextPos;
    private long checkpoint = -1;

    @Override
    public synchronized LogView log() {
        return this;
    }

    @Override
    public synchronized long firstIndex() {
        return log.firstIndex();
    }

    @Override
    public synchronized long lastIndex() {
        return log.lastIndex();
    }

    @Override
    public synchronized long term(long index) {
        return log.term(index);
    }

    @Override
    public synchronized List<Entry> entries(long lo, long hi, long maxBytes) {
        return log.entries(lo, hi, maxBytes);
    }

    @Override
    public synchronized SnapshotMeta snapshot() {
        return log.snapshot();
    }

    @Override
    public synchronized HardState hardState() {
        return hardState;
    }

    @Override
    public synchronized void saveHardState(HardState hs) {
        hardState = hs;
    }

    @Override
    public synchronized void truncateSuffix(long fromIndex) {
        log.truncateFrom(fromIndex);
    }

    @Override
    public synchronized long[] append(List<Entry> ents) {
        long[] pos = new long[ents.size()];
        for (int i = 0; i < pos.length; i++) {
            pos[i] = nextPos;
            nextPos += ents.get(i).sizeBytes();
        }
        log.append(ents);
        return pos;
    }

    @Override
    public void sync() {
    }

    @Override
    public synchronized List<Entry> configEntries() {
        return log.all().stream().filter(e -> e.type() == EntryType.CONFIG).toList();
    }

    @Override
    public synchronized byte[] snapshotData() {
        return snapshotData;
    }

    @Override
    public synchronized void saveSnapshot(SnapshotMeta meta, byte[] data) {
        log.compact(meta);
        snapshotData = data;
    }

    @Override
    public synchronized void installSnapshot(SnapshotMeta meta, byte[] data) {
        log.install(meta);
        snapshotData = data;
    }

    @Override
    public synchronized long committedCheckpoint() {
        return checkpoint;
    }

    @Override
    public synchronized void checkpointCommit(long commitIndex) {
        checkpoint = commitIndex;
    }

    @Override
    public void close() {
    }
}
