package dev.dledger.raft.sim;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.SnapshotMeta;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * An in-memory log for the simulation, with a durable part and a written-but-not-yet-synced part.
 *
 * <p>Every write ({@link #append}, {@link #truncateFrom}, {@link #installSnapshot}, {@link #compactTo}) changes the
 * view the core reads at once and is queued as one pending operation (an append queues one operation per entry).
 * {@link #sync()} makes every pending operation durable, like an fsync. {@link #crash(int)} models a power loss: the
 * first {@code keep} pending operations reach the disk (a torn write keeps a prefix), the rest are lost, and the view
 * falls back to the durable state. The simulation driver syncs at once after each write, so a node acknowledges only
 * durable data; pending operations exist only at the instant a disk fault is injected.
 *
 * <p>Positions follow {@link LogView}: entries {@code firstIndex()..lastIndex()}, and the snapshot the log was
 * compacted to ends at {@code firstIndex() - 1}. Not thread-safe: the simulation is single-threaded.
 */
public final class SimulatedLogStore implements LogView {

    /** One pending write, replayed onto the durable state by {@link #sync()} or partially by a crash. */
    private record Op(Kind kind, Entry entry, long index, SnapshotMeta meta) {
    }

    private enum Kind {
        APPEND, TRUNCATE, INSTALL, COMPACT, DROP
    }

    /** The state the core reads: durable state plus every pending operation. */
    private final State current = new State();
    /** What survives a crash. */
    private final State durable = new State();
    private final List<Op> pending = new ArrayList<>();

    /** A fresh empty log: {@code firstIndex() == 0}, {@code lastIndex() == -1}, no snapshot. */
    public SimulatedLogStore() {
    }

    @Override
    public long firstIndex() {
        return current.snapshot.index() + 1;
    }

    @Override
    public long lastIndex() {
        return current.lastIndex();
    }

    @Override
    public long term(long index) {
        return current.term(index);
    }

    @Override
    public List<Entry> entries(long lo, long hi, long maxBytes) {
        if (lo < firstIndex() || hi > lastIndex() + 1 || lo > hi) {
            throw new IllegalArgumentException("range [" + lo + ", " + hi + ") is not within [" + firstIndex()
                + ", " + (lastIndex() + 1) + "]");
        }
        List<Entry> out = new ArrayList<>();
        long bytes = 0;
        for (long i = lo; i < hi; i++) {
            Entry e = current.get(i);
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
        return current.snapshot;
    }

    /**
     * The entry at {@code index} as the core sees it, or null when compacted away or beyond the end.
     */
    public Entry entry(long index) {
        return current.get(index);
    }

    /**
     * Appends {@code entries}, which must start at {@code lastIndex() + 1} and be consecutive.
     *
     * @throws IllegalArgumentException if they do not continue the log
     */
    public void append(List<Entry> entries) {
        for (Entry e : entries) {
            if (e.index() != current.lastIndex() + 1) {
                throw new IllegalArgumentException("append of " + e + " does not continue the log ending at "
                    + current.lastIndex());
            }
            current.append(e);
            pending.add(new Op(Kind.APPEND, e, e.index(), null));
        }
    }

    /** Removes every entry at or after {@code index} (suffix truncation); a no-op when nothing is there. */
    public void truncateFrom(long index) {
        if (index < firstIndex()) {
            throw new IllegalArgumentException("cannot truncate from " + index + ", before the first index "
                + firstIndex());
        }
        current.truncateFrom(index);
        pending.add(new Op(Kind.TRUNCATE, null, index, null));
    }

    /** Installs a snapshot received from a leader: the log becomes empty after {@code meta.index()}. */
    public void installSnapshot(SnapshotMeta meta) {
        current.install(meta);
        pending.add(new Op(Kind.INSTALL, null, meta.index(), meta));
    }

    /**
     * Compacts the prefix up to a local snapshot at {@code meta.index()}, keeping the entries after it.
     *
     * @throws IllegalArgumentException if the index is not within the log or its term differs
     */
    public void compactTo(SnapshotMeta meta) {
        if (meta.index() < current.snapshot.index() || meta.index() > current.lastIndex()
            || current.term(meta.index()) != meta.term()) {
            throw new IllegalArgumentException("cannot compact to " + meta.index() + "@" + meta.term() + ", log is "
                + firstIndex() + ".." + lastIndex());
        }
        current.compact(meta);
        pending.add(new Op(Kind.COMPACT, null, meta.index(), meta));
    }

    /**
     * A witness drops the bodies of its NORMAL entries up to {@code index} (issue 19): they keep index, term, type
     * and request id, with an empty payload; CONFIG and NOOP entries stay whole.
     */
    public void dropBodiesThrough(long index) {
        current.drop(index);
        pending.add(new Op(Kind.DROP, null, index, null));
    }

    @Override
    public long droppedBodiesThrough() {
        return current.dropped;
    }

    /** Makes every pending write durable. */
    public void sync() {
        for (Op op : pending) {
            apply(durable, op);
        }
        pending.clear();
    }

    /** The number of writes not yet durable (one per appended entry). */
    public int pendingOps() {
        return pending.size();
    }

    /**
     * Models a crash: the first {@code keep} pending writes become durable (a torn write), the others are lost, and
     * the view returns to the durable state.
     */
    public void crash(int keep) {
        for (int i = 0; i < Math.min(keep, pending.size()); i++) {
            apply(durable, pending.get(i));
        }
        pending.clear();
        current.copyFrom(durable);
    }

    /** A crash keeping a random prefix of the pending writes, drawn from {@code random}. */
    public void crash(Random random) {
        crash(pending.isEmpty() ? 0 : random.nextInt(pending.size() + 1));
    }

    /** The last index of the durable state. */
    public long durableLastIndex() {
        return durable.lastIndex();
    }

    /** The term at {@code index} in the durable state, as {@link #term(long)} defines it. */
    public long durableTerm(long index) {
        return durable.term(index);
    }

    /** The snapshot of the durable state. */
    public SnapshotMeta durableSnapshot() {
        return durable.snapshot;
    }

    /** The entries of the view, for checks and dumps; a copy. */
    public List<Entry> allEntries() {
        return new ArrayList<>(current.entries);
    }

    private static void apply(State s, Op op) {
        switch (op.kind()) {
            case APPEND:
                s.append(op.entry());
                break;
            case TRUNCATE:
                s.truncateFrom(op.index());
                break;
            case INSTALL:
                s.install(op.meta());
                break;
            case COMPACT:
                s.compact(op.meta());
                break;
            case DROP:
                s.drop(op.index());
                break;
            default:
                throw new IllegalStateException("unknown op " + op.kind());
        }
    }

    @Override
    public String toString() {
        return "log[" + firstIndex() + ".." + lastIndex() + " snap=" + current.snapshot.index() + "@"
            + current.snapshot.term() + "]";
    }

    /** Entries after a snapshot; position {@code k} of the list holds index {@code snapshot.index + 1 + k}. */
    private static final class State {
        private final ArrayList<Entry> entries = new ArrayList<>();
        private SnapshotMeta snapshot = SnapshotMeta.NONE;
        private long dropped = -1;

        long lastIndex() {
            return snapshot.index() + entries.size();
        }

        long term(long index) {
            if (index == snapshot.index()) {
                return snapshot.term();
            }
            Entry e = get(index);
            return e == null ? -1 : e.term();
        }

        Entry get(long index) {
            long k = index - snapshot.index() - 1;
            if (k < 0 || k >= entries.size()) {
                return null;
            }
            return entries.get((int) k);
        }

        void append(Entry e) {
            if (e.index() != lastIndex() + 1) {
                throw new IllegalStateException("replayed append of " + e + " does not continue " + lastIndex());
            }
            entries.add(e);
        }

        void truncateFrom(long index) {
            long k = Math.max(0, index - snapshot.index() - 1);
            while (entries.size() > k) {
                entries.remove(entries.size() - 1);
            }
        }

        void drop(long index) {
            for (long i = Math.max(dropped + 1, snapshot.index() + 1); i <= Math.min(index, lastIndex()); i++) {
                int k = (int) (i - snapshot.index() - 1);
                Entry e = entries.get(k);
                if (e.type() == EntryType.NORMAL && e.data().length > 0) {
                    entries.set(k, new Entry(e.index(), e.term(), e.type(), null, e.requestId()));
                }
            }
            dropped = Math.max(dropped, index);
        }

        void install(SnapshotMeta meta) {
            entries.clear();
            snapshot = meta;
            // What a witness dropped is replaced by a data member's state (issue 19), as the real store does.
            dropped = -1;
        }

        void compact(SnapshotMeta meta) {
            long drop = meta.index() - snapshot.index();
            entries.subList(0, (int) Math.min(drop, entries.size())).clear();
            snapshot = meta;
        }

        void copyFrom(State other) {
            entries.clear();
            entries.addAll(other.entries);
            snapshot = other.snapshot;
            dropped = other.dropped;
        }
    }
}
