package dev.dledger.raft.server;

import dev.dledger.raft.core.ReadState;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeoutException;

/**
 * The linearizable reads of one {@link RaftGroupNode} on their way: asked of the core, confirmed by it (a
 * {@link ReadState} in a Ready), served once the node applied up to the read's index.
 *
 * <p>Contract: driver thread only. A read completes exactly once: with its index once confirmed and applied, with a
 * {@link TimeoutException} at its deadline when not confirmed by then, or with an IllegalStateException when the node
 * stops.
 */
final class PendingReads {

    private record PendingRead(long deadlineNanos, CompletableFuture<Long> future, long[] index) {
    }

    private final Map<Long, PendingRead> asked = new TreeMap<>();
    private final List<PendingRead> confirmed = new ArrayList<>();
    private long nextReadId;

    /** A new read's id, for {@link dev.dledger.raft.core.RaftNode#readIndex}. */
    long nextId() {
        return nextReadId++;
    }

    /** Waits for the core to confirm read {@code id}, until {@code deadlineNanos} (nanoTime). */
    void asked(long id, long deadlineNanos, CompletableFuture<Long> future) {
        asked.put(id, new PendingRead(deadlineNanos, future, new long[] {-1}));
    }

    /** The core confirmed these reads (a Ready's read states): each waits for its index to be applied. */
    void confirmed(List<ReadState> states) {
        for (ReadState rs : states) {
            PendingRead r = asked.remove(rs.requestId());
            if (r != null) {
                r.index()[0] = rs.index();
                confirmed.add(r);
            }
        }
    }

    /** Completes the confirmed reads whose index is applied. */
    void serve(long appliedIndex) {
        Iterator<PendingRead> it = confirmed.iterator();
        while (it.hasNext()) {
            PendingRead r = it.next();
            if (appliedIndex >= r.index()[0]) {
                it.remove();
                r.future().complete(r.index()[0]);
            }
        }
    }

    /** Fails the reads not confirmed by their deadline. */
    void expire(long now) {
        asked.values().removeIf(r -> {
            boolean late = now - r.deadlineNanos() >= 0;
            if (late) {
                r.future().completeExceptionally(new TimeoutException("read not confirmed"));
            }
            return late;
        });
    }

    /** Fails every read: the node stopped. */
    void failAll(String nodeId) {
        for (PendingRead r : asked.values()) {
            r.future().completeExceptionally(new IllegalStateException("node " + nodeId + " stopped"));
        }
        asked.clear();
        for (PendingRead r : confirmed) {
            r.future().completeExceptionally(new IllegalStateException("node " + nodeId + " stopped"));
        }
        confirmed.clear();
    }
}
