package dev.dledger.raft.core;

import java.util.ArrayList;
import java.util.List;

/**
 * A {@link LogView} in memory that a test driver writes as a Ready says; supports compaction. Public for the tests of
 * other packages (the driver's in-memory storage wraps it).
 */
public final class MemoryLog implements LogView {

    final List<Entry> entries = new ArrayList<>();
    SnapshotMeta snapshot = SnapshotMeta.NONE;

    @Override
    public long firstIndex() {
        return snapshot.index() + 1;
    }

    @Override
    public long lastIndex() {
        return snapshot.index() + entries.size();
    }

    @Override
    public long term(long index) {
        if (index == snapshot.index()) {
            return index == -1 ? 0 : snapshot.term();
        }
        if (index < firstIndex() || index > lastIndex()) {
            return -1;
        }
        return entries.get((int) (index - firstIndex())).term();
    }

    @Override
    public List<Entry> entries(long lo, long hi, long maxBytes) {
        if (lo < firstIndex() || hi > lastIndex() + 1 || lo > hi) {
            throw new IllegalArgumentException("[" + lo + "," + hi + ") outside [" + firstIndex() + ","
                + (lastIndex() + 1) + ")");
        }
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
    public SnapshotMeta snapshot() {
        return snapshot;
    }

    /** Removes every entry at or after {@code index}. */
    public void truncateFrom(long index) {
        while (lastIndex() >= index) {
            entries.remove(entries.size() - 1);
        }
    }

    /** Appends consecutive entries at the end. */
    public void append(List<Entry> ents) {
        for (Entry e : ents) {
            if (e.index() != lastIndex() + 1) {
                throw new IllegalStateException("append " + e + " after " + lastIndex());
            }
            entries.add(e);
        }
    }

    /** Drops entries up to and including {@code meta.index()}, as a driver does after taking a snapshot. */
    public void compact(SnapshotMeta meta) {
        entries.subList(0, (int) (meta.index() - snapshot.index())).clear();
        snapshot = meta;
    }

    /** Empties the log in favour of a snapshot from the leader. */
    public void install(SnapshotMeta meta) {
        entries.clear();
        snapshot = meta;
    }

    /** The entries held, in order (a copy). */
    public List<Entry> all() {
        return List.copyOf(entries);
    }

    /** Builds a log of the given terms, one entry per term value, from index 0. */
    static MemoryLog ofTerms(long... terms) {
        MemoryLog log = new MemoryLog();
        for (int i = 0; i < terms.length; i++) {
            log.entries.add(new Entry(i, terms[i], EntryType.NORMAL, ("e" + i + "t" + terms[i]).getBytes()));
        }
        return log;
    }
}
