package dev.dledger.raft.server;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.SnapshotMeta;
import java.util.ArrayList;
import java.util.List;

/** A {@link NodeStorage} in memory, for driver tests; survives a node restart when the same instance is reused. */
final class MemoryNodeStorage implements NodeStorage, LogView {

    private final List<Entry> entries = new ArrayList<>();
    private final List<Long> positions = new ArrayList<>();
    private SnapshotMeta snapshot = SnapshotMeta.NONE;
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
        return snapshot.index() + 1;
    }

    @Override
    public synchronized long lastIndex() {
        return snapshot.index() + entries.size();
    }

    @Override
    public synchronized long term(long index) {
        if (index == snapshot.index()) {
            return index == -1 ? 0 : snapshot.term();
        }
        if (index < firstIndex() || index > lastIndex()) {
            return -1;
        }
        return entries.get((int) (index - firstIndex())).term();
    }

    @Override
    public synchronized List<Entry> entries(long lo, long hi, long maxBytes) {
        List<Entry> out = new ArrayList<>();
        long bytes = 0;
        for (long i = lo; i < hi; i++) {
            Entry e = entries.get((int) (i - firstIndex()));
            if (!out.isEmpty() && bytes + e.sizeBytes() > maxBytes) {
                break;
            }
            out.add(e);
            bytes += e.sizeBytes();
        }
        return out;
    }

    @Override
    public synchronized SnapshotMeta snapshot() {
        return snapshot;
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
        while (lastIndex() >= fromIndex) {
            entries.remove(entries.size() - 1);
            positions.remove(positions.size() - 1);
        }
    }

    @Override
    public synchronized long[] append(List<Entry> ents) {
        long[] pos = new long[ents.size()];
        for (int i = 0; i < pos.length; i++) {
            Entry e = ents.get(i);
            if (e.index() != lastIndex() + 1) {
                throw new StorageException("append of " + e.index() + " after " + lastIndex());
            }
            entries.add(e);
            pos[i] = nextPos;
            positions.add(nextPos);
            nextPos += e.sizeBytes();
        }
        return pos;
    }

    @Override
    public void sync() {
    }

    @Override
    public synchronized List<Entry> configEntries() {
        return entries.stream().filter(e -> e.type() == EntryType.CONFIG).toList();
    }

    @Override
    public synchronized byte[] snapshotData() {
        return snapshotData;
    }

    @Override
    public synchronized void saveSnapshot(SnapshotMeta meta, byte[] data) {
        int drop = (int) (meta.index() - snapshot.index());
        entries.subList(0, drop).clear();
        positions.subList(0, drop).clear();
        snapshot = meta;
        snapshotData = data;
    }

    @Override
    public synchronized void installSnapshot(SnapshotMeta meta, byte[] data) {
        entries.clear();
        positions.clear();
        snapshot = meta;
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
