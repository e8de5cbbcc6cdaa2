package dev.dledger.raft.server;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.LogView;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.function.DoubleConsumer;

/**
 * The appends a {@link RaftGroupNode} took and has not answered yet, by the index of their first entry, and the
 * positions of their entries in the data files (known once written here, handed out with the answer).
 *
 * <p>Contract: driver thread only. An append completes exactly once: OK when its last entry is applied with the
 * term it was proposed in (same index and term means the same entries, log matching), LOST when another term's entry
 * was committed there, EXPIRED when that entry was compacted away before it could be told, TIMEOUT at its deadline,
 * STOPPED when the node stops. Times are nanoseconds of the driver's {@link Clock}.
 */
final class PendingAppends {

    private static final class Pending {
        final long firstIndex;
        final long lastIndex;
        final long term;
        final long startNanos;
        final long deadlineNanos;
        final CompletableFuture<AppendResult> future;

        Pending(long firstIndex, long lastIndex, long term, long startNanos, long deadlineNanos,
                CompletableFuture<AppendResult> f) {
            this.firstIndex = firstIndex;
            this.lastIndex = lastIndex;
            this.term = term;
            this.startNanos = startNanos;
            this.deadlineNanos = deadlineNanos;
            this.future = f;
        }
    }

    /** The driver's clock, read where the driver read it before this class was split from it. */
    private final Clock clock;
    private final TreeMap<Long, Pending> pending = new TreeMap<>();
    private final TreeMap<Long, Long> positions = new TreeMap<>();
    /** Seconds from an append's arrival until it is committed and applied; called on the driver thread. */
    private volatile DoubleConsumer commitLatencySeconds = s -> { };
    /** Seconds from an append's arrival until its entries are written here; called on the driver thread. */
    private volatile DoubleConsumer storeLatencySeconds = s -> { };

    PendingAppends(Clock clock) {
        this.clock = clock;
    }

    void recordCommitLatency(DoubleConsumer seconds) {
        this.commitLatencySeconds = seconds;
    }

    void recordStoreLatency(DoubleConsumer seconds) {
        this.storeLatencySeconds = seconds;
    }

    int size() {
        return pending.size();
    }

    boolean isEmpty() {
        return pending.isEmpty();
    }

    /** An accepted proposal of entries {@code [first, last]} in {@code term}: waits until applied. */
    void add(long first, long last, long term, long deadline, CompletableFuture<AppendResult> f) {
        pending.put(first, new Pending(first, last, term, clock.nanoTime(), deadline, f));
    }

    /**
     * A retry of entries in the log at {@code [first, last]}: completes with the original's outcome, waits anew when
     * the original's caller gave up, and completes EXPIRED when the original covers other entries.
     */
    void attach(long first, long last, long term, CompletableFuture<AppendResult> f, long deadline,
                String leaderHint) {
        Pending original = pending.get(first);
        if (original == null) {
            // The original's caller gave up (TIMEOUT) but the entries are still in the log: wait for them anew.
            pending.put(first, new Pending(first, last, term, clock.nanoTime(), deadline, f));
        } else if (original.lastIndex == last && original.term == term) {
            original.future.thenAccept(f::complete);
        } else {
            f.complete(AppendResult.of(AppendResult.Status.EXPIRED, leaderHint));
        }
    }

    /** Entries written to the log here at {@code pos}: their positions are kept when an answer may need them. */
    void written(List<Entry> entries, long[] pos, boolean leader) {
        if (leader || !pending.isEmpty()) {
            for (int i = 0; i < pos.length; i++) {
                positions.put(entries.get(i).index(), pos[i]);
            }
        }
        if (!pending.isEmpty()) {
            long now = clock.nanoTime();
            long lo = entries.get(0).index();
            long hi = entries.get(entries.size() - 1).index();
            for (Pending p : pending.subMap(lo, true, hi, true).values()) {
                storeLatencySeconds.accept((now - p.startNanos) / 1e9);
            }
        }
    }

    /** The log lost every entry from {@code from} on. */
    void truncated(long from) {
        positions.keySet().removeIf(i -> i >= from);
    }

    /** A snapshot replaced the log. */
    void snapshotInstalled() {
        positions.clear();
    }

    /** Whether an append waits on an entry at or below {@code lastIndex}. */
    boolean waitsUpTo(long lastIndex) {
        return !pending.isEmpty() && pending.firstKey() <= lastIndex;
    }

    /**
     * Answers the appends whose entries are all applied now, {@code committed} being the entries just applied.
     *
     * @param log        the log here, for the term of entries applied before this batch
     * @param leaderHint the leader as known now, for refusals
     */
    void applied(List<Entry> committed, LogView log, String leaderHint) {
        long last = committed.get(committed.size() - 1).index();
        Iterator<Map.Entry<Long, Pending>> it = pending.entrySet().iterator();
        while (it.hasNext()) {
            Pending p = it.next().getValue();
            if (p.firstIndex > last) {
                break;
            }
            if (p.lastIndex > last) {
                continue;
            }
            it.remove();
            // The batch's last entry decides for all of it: same index and term means the same leader's entries up
            // to there (log matching). It is in this batch when the append waited since before the previous apply;
            // a retry attached later may name entries applied before this batch: the log still has their term.
            long first = committed.get(0).index();
            long lastTerm = p.lastIndex >= first ? committed.get((int) (p.lastIndex - first)).term()
                : log.term(p.lastIndex);
            if (lastTerm == -1) {
                // Compacted away: whether these were the entries committed there cannot be told any more.
                p.future.complete(AppendResult.of(AppendResult.Status.EXPIRED, leaderHint));
            } else if (lastTerm != p.term) {
                p.future.complete(AppendResult.of(AppendResult.Status.LOST, leaderHint));
            } else {
                long[] pos = new long[(int) (p.lastIndex - p.firstIndex + 1)];
                for (int i = 0; i < pos.length; i++) {
                    pos[i] = positions.getOrDefault(p.firstIndex + i, -1L);
                }
                commitLatencySeconds.accept((clock.nanoTime() - p.startNanos) / 1e9);
                p.future.complete(new AppendResult(AppendResult.Status.OK, p.firstIndex, p.term, pos, null));
            }
        }
        positions.headMap(last + 1).clear();
    }

    /** Answers TIMEOUT to the appends past their deadline. */
    void expire(long now, String leaderHint) {
        Iterator<Map.Entry<Long, Pending>> it = pending.entrySet().iterator();
        while (it.hasNext()) {
            Pending p = it.next().getValue();
            if (now - p.deadlineNanos >= 0) {
                it.remove();
                p.future.complete(AppendResult.of(AppendResult.Status.TIMEOUT, leaderHint));
            }
        }
    }

    /** Answers STOPPED to every append. */
    void failAll() {
        for (Pending p : pending.values()) {
            p.future.complete(AppendResult.of(AppendResult.Status.STOPPED, null));
        }
        pending.clear();
    }
}
