package dev.dledger.raft.core;

import java.util.ArrayList;
import java.util.List;

/**
 * The core's view of its log: the durable {@link LogView} plus what the core decided but the driver has not yet
 * persisted (a snapshot to install and a suffix of entries). Entries at or after {@code unstableOffset} in storage are
 * superseded by the unstable suffix; the next {@link Ready} tells the driver to truncate them.
 *
 * <p>Invariant: when {@code unstable} is empty, {@code unstableOffset == lastIndex() + 1}.
 */
final class RaftLog {

    private final LogView storage;
    /** A snapshot received from the leader that the driver has not yet installed, or null. */
    private SnapshotMeta unstableSnapshot;
    private final List<Entry> unstable = new ArrayList<>();
    private long unstableOffset;

    RaftLog(LogView storage) {
        this.storage = storage;
        this.unstableOffset = storage.lastIndex() + 1;
    }

    LogView storage() {
        return storage;
    }

    long firstIndex() {
        return unstableSnapshot != null ? unstableSnapshot.index() + 1 : storage.firstIndex();
    }

    long lastIndex() {
        if (!unstable.isEmpty()) {
            return unstableOffset + unstable.size() - 1;
        }
        if (unstableSnapshot != null) {
            return unstableSnapshot.index();
        }
        return storage.lastIndex();
    }

    long lastTerm() {
        return term(lastIndex());
    }

    /** The term at {@code index}, 0 for index -1, or -1 when compacted away or beyond the end. */
    long term(long index) {
        if (index == -1) {
            return 0;
        }
        if (!unstable.isEmpty() && index >= unstableOffset) {
            long off = index - unstableOffset;
            return off < unstable.size() ? unstable.get((int) off).term() : -1;
        }
        if (unstableSnapshot != null) {
            return index == unstableSnapshot.index() ? unstableSnapshot.term() : -1;
        }
        return storage.term(index);
    }

    boolean matchTerm(long index, long term) {
        long t = term(index);
        return t >= 0 && t == term;
    }

    /**
     * Whether a log ending at {@code (lastIndex, lastTerm)} is at least as up to date as ours (Raft paper section
     * 5.4.1: compare the last terms, then the lengths).
     */
    boolean isUpToDate(long otherLastIndex, long otherLastTerm) {
        long myTerm = lastTerm();
        return otherLastTerm > myTerm || (otherLastTerm == myTerm && otherLastIndex >= lastIndex());
    }

    /** Entries {@code [lo, hi)}, at most about {@code maxBytes} of them but at least one when the range is not empty. */
    List<Entry> entries(long lo, long hi, long maxBytes) {
        if (lo < firstIndex() || hi > lastIndex() + 1 || lo > hi) {
            throw new IllegalArgumentException("range [" + lo + "," + hi + ") outside log [" + firstIndex() + ","
                + (lastIndex() + 1) + ")");
        }
        List<Entry> out = new ArrayList<>();
        if (lo == hi) {
            return out;
        }
        long budget = maxBytes;
        long storageEnd = unstable.isEmpty() ? hi : Math.min(hi, unstableOffset);
        if (lo < storageEnd) {
            List<Entry> stored = storage.entries(lo, storageEnd, budget);
            out.addAll(stored);
            for (Entry e : stored) {
                budget -= e.sizeBytes();
            }
            if (out.size() < storageEnd - lo || budget <= 0) {
                return out;
            }
        }
        for (long i = Math.max(lo, unstableOffset); i < hi; i++) {
            Entry e = unstable.get((int) (i - unstableOffset));
            if (!out.isEmpty() && budget - e.sizeBytes() < 0) {
                break;
            }
            out.add(e);
            budget -= e.sizeBytes();
        }
        return out;
    }

    /**
     * Appends {@code ents}, which start at most one past the end; anything from their first index on is replaced.
     * The caller has checked that nothing committed is replaced.
     */
    void append(List<Entry> ents) {
        if (ents.isEmpty()) {
            return;
        }
        long first = ents.get(0).index();
        long last = lastIndex();
        if (first > last + 1 || first < firstIndex()) {
            throw new RaftInvariantError("append at " + first + " to a log spanning [" + firstIndex() + ","
                + last + "]");
        }
        if (first == last + 1 && !unstable.isEmpty()) {
            unstable.addAll(ents);
        } else if (!unstable.isEmpty() && first >= unstableOffset) {
            unstable.subList((int) (first - unstableOffset), unstable.size()).clear();
            unstable.addAll(ents);
        } else {
            unstable.clear();
            unstableOffset = first;
            unstable.addAll(ents);
        }
    }

    /** Forgets the log in favour of a snapshot from the leader (Raft paper section 7, receiver step 7). */
    void restore(SnapshotMeta snapshot) {
        unstableSnapshot = snapshot;
        unstable.clear();
        unstableOffset = snapshot.index() + 1;
    }

    SnapshotMeta unstableSnapshot() {
        return unstableSnapshot;
    }

    List<Entry> unstableEntries() {
        return List.copyOf(unstable);
    }

    /** The first storage index the driver must remove before appending the unstable entries, or -1. */
    long truncateFrom() {
        if (unstableSnapshot == null && !unstable.isEmpty() && storage.lastIndex() >= unstableOffset) {
            return unstableOffset;
        }
        return -1;
    }

    /**
     * The last index of the durable log that is also part of this log: durable entries that a pending truncation
     * replaces do not count.
     */
    long persistedLastIndex() {
        if (unstableSnapshot != null) {
            return -1;
        }
        if (!unstable.isEmpty()) {
            return Math.min(storage.lastIndex(), unstableOffset - 1);
        }
        return storage.lastIndex();
    }

    boolean hasUnstable() {
        return unstableSnapshot != null || !unstable.isEmpty();
    }

    /**
     * Records that the driver persisted everything {@code rd} asked for.
     *
     * @throws IllegalStateException if the durable log does not end where {@code rd} said it would
     */
    void stableTo(Ready rd) {
        long expectedLast = lastIndex();
        long expectedTerm = lastTerm();
        if (storage.lastIndex() != expectedLast || storage.term(expectedLast) != expectedTerm) {
            throw new IllegalStateException("driver did not persist the Ready: log ends at " + storage.lastIndex()
                + "@" + storage.term(storage.lastIndex()) + ", expected " + expectedLast + "@" + expectedTerm);
        }
        unstableSnapshot = null;
        unstable.clear();
        unstableOffset = storage.lastIndex() + 1;
    }
}
