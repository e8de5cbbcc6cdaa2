package dev.dledger.raft.core;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The test driver's durable log: a list of entries after an optional snapshot. The core only reads it; the driver
 * ({@link TestCluster}) writes exactly what a {@link Ready} says, and checks that what it is told to write is a valid
 * log (consecutive indexes, terms that never go down).
 */
final class InMemoryLogView implements LogView {

    private SnapshotMeta snapshot = SnapshotMeta.NONE;
    private byte[] snapshotData = new byte[0];
    private final List<Entry> entries = new ArrayList<>();

    @Override
    public long firstIndex() {
        return snapshot.index() + 1;
    }

    @Override
    public long lastIndex() {
        return firstIndex() + entries.size() - 1;
    }

    @Override
    public long term(long index) {
        if (index == snapshot.index()) {
            return snapshot.term();
        }
        if (index < firstIndex() || index > lastIndex()) {
            return -1;
        }
        return entries.get((int) (index - firstIndex())).term();
    }

    @Override
    public List<Entry> entries(long lo, long hi, long maxBytes) {
        if (lo < firstIndex() || hi > lastIndex() + 1 || lo > hi) {
            throw new IllegalArgumentException("range [" + lo + "," + hi + ") outside [" + firstIndex() + ","
                + (lastIndex() + 1) + ")");
        }
        List<Entry> out = new ArrayList<>();
        long bytes = 0;
        for (long i = lo; i < hi; i++) {
            Entry e = entry(i);
            if (!out.isEmpty() && bytes + e.sizeBytes() > maxBytes) {
                break;
            }
            out.add(e);
            bytes += e.sizeBytes();
        }
        return out;
    }

    @Override
    public SnapshotMeta snapshot() {
        return snapshot;
    }

    /** The bytes of the snapshot, as the driver would stream them to a follower. */
    byte[] snapshotData() {
        return snapshotData;
    }

    /** The entry at {@code index}, which must be in the log. */
    Entry entry(long index) {
        if (index < firstIndex() || index > lastIndex()) {
            throw new IllegalArgumentException("no entry " + index + " in [" + firstIndex() + "," + lastIndex() + "]");
        }
        return entries.get((int) (index - firstIndex()));
    }

    /** Every entry held, in index order. */
    List<Entry> entries() {
        return List.copyOf(entries);
    }

    /** Whether the entry {@code index@term} is durable here, in the log or covered by the snapshot. */
    boolean holds(long index, long entryTerm) {
        return index <= snapshot.index() || term(index) == entryTerm;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Writes, by the driver only

    void append(List<Entry> ents) {
        for (Entry e : ents) {
            if (e.index() != lastIndex() + 1) {
                throw new AssertionError("driver told to append " + e + " to a log ending at " + lastIndex());
            }
            long lastTerm = term(lastIndex());
            if (e.term() < lastTerm) {
                throw new AssertionError("driver told to append " + e + " after an entry of term " + lastTerm);
            }
            entries.add(e);
        }
    }

    void truncateFrom(long index) {
        if (index < firstIndex() || index > lastIndex() + 1) {
            throw new AssertionError("truncation at " + index + " outside [" + firstIndex() + "," + (lastIndex() + 1)
                + "]");
        }
        entries.subList((int) (index - firstIndex()), entries.size()).clear();
    }

    /** Installs a snapshot received from the leader: the log becomes empty after it. */
    void install(SnapshotMeta meta, byte[] data) {
        snapshot = meta;
        snapshotData = data;
        entries.clear();
    }

    /** Compacts the log up to {@code index} (inclusive) into a snapshot, as a driver does after applying. */
    void compact(long index, Membership membership, byte[] data) {
        if (index < firstIndex() || index > lastIndex()) {
            throw new IllegalArgumentException("cannot compact to " + index);
        }
        long snapTerm = term(index);
        entries.subList(0, (int) (index - firstIndex() + 1)).clear();
        snapshot = new SnapshotMeta(index, snapTerm, membership);
        snapshotData = data;
    }

    /** Appends {@code count} NORMAL entries of {@code entryTerm}, to build a log a node recovers from. */
    InMemoryLogView preload(long entryTerm, int count) {
        List<Entry> ents = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long index = lastIndex() + 1 + i;
            ents.add(new Entry(index, entryTerm, EntryType.NORMAL,
                ("t" + entryTerm + "i" + index).getBytes(StandardCharsets.UTF_8)));
        }
        append(ents);
        return this;
    }
}
