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

    /** Holds and reads the entries; this class adds the driver's checks on writes. */
    private final MemoryLog log = new MemoryLog();
    private byte[] snapshotData = new byte[0];

    @Override
    public long firstIndex() {
        return log.firstIndex();
    }

    @Override
    public long lastIndex() {
        return log.lastIndex();
    }

    @Override
    public long term(long index) {
        return log.term(index);
    }

    @Override
    public List<Entry> entries(long lo, long hi, long maxBytes) {
        return log.entries(lo, hi, maxBytes);
    }

    @Override
    public SnapshotMeta snapshot() {
        return log.snapshot();
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
        return log.entries(index, index + 1, Long.MAX_VALUE).get(0);
    }

    /** Every entry held, in index order. */
    List<Entry> entries() {
        return log.all();
    }

    /** Whether the entry {@code index@term} is durable here, in the log or covered by the snapshot. */
    boolean holds(long index, long entryTerm) {
        return index <= snapshot().index() || term(index) == entryTerm;
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
            log.append(List.of(e));
        }
    }

    void truncateFrom(long index) {
        if (index < firstIndex() || index > lastIndex() + 1) {
            throw new AssertionError("truncation at " + index + " outside [" + firstIndex() + "," + (lastIndex() + 1)
                + "]");
        }
        log.truncateFrom(index);
    }

    /** Installs a snapshot received from the leader: the log becomes empty after it. */
    void install(SnapshotMeta meta, byte[] data) {
        log.install(meta);
        snapshotData = data;
    }

    /** Compacts the log up to {@code index} (inclusive) into a snapshot, as a driver does after applying. */
    void compact(long index, Membership membership, byte[] data) {
        if (index < firstIndex() || index > lastIndex()) {
            throw new IllegalArgumentException("cannot compact to " + index);
        }
        log.compact(new SnapshotMeta(index, term(index), membership));
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
