package dev.dledger.raft.faults;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * What the clients of a fault run did and saw, for {@link HistoryChecker}: every write (one entry with a unique
 * value, acknowledged at an index or of unknown outcome) and every read of a key that got an answer. Times are
 * {@link System#nanoTime()} of the one process that runs the clients. Thread-safe: clients record concurrently.
 */
public final class History {

    /** How a write ended. */
    public enum Outcome {
        /** The group acknowledged it as committed at {@link Write#index()}. */
        OK,
        /** No acknowledgement (timeout, refusal, broken connection): it may be in the log once, or not at all. */
        UNKNOWN
    }

    /**
     * One entry written by a client.
     *
     * @param client     which client wrote it
     * @param key        the key the entry sets
     * @param value      the value, unique over the whole run: it identifies the entry in the replicas' logs
     * @param startNanos when the client sent it (first attempt)
     * @param endNanos   when the client got its final answer
     * @param outcome    acknowledged or unknown
     * @param index      the log index acknowledged, -1 when unknown
     */
    public record Write(int client, String key, String value, long startNanos, long endNanos, Outcome outcome,
                       long index) {

        public Write {
            Objects.requireNonNull(key, "key");
            Objects.requireNonNull(value, "value");
            Objects.requireNonNull(outcome, "outcome");
            if (outcome == Outcome.OK && index < 0) {
                throw new IllegalArgumentException("an acknowledged write needs its index, not " + index);
            }
        }
    }

    /**
     * One read that got an answer.
     *
     * @param client     which client read
     * @param key        the key read
     * @param value      the value answered, null when the key was not set
     * @param startNanos when the read was sent
     * @param endNanos   when the answer came
     * @param detail     how it was read (e.g. "lease"), for reports
     */
    public record Read(int client, String key, String value, long startNanos, long endNanos, String detail) {

        public Read {
            Objects.requireNonNull(key, "key");
        }
    }

    private final ConcurrentLinkedQueue<Write> writes = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Read> reads = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Long> failedReads = new ConcurrentLinkedQueue<>();

    /** Records a write once its outcome is known (or known to be unknown). */
    public void write(Write w) {
        writes.add(w);
    }

    /** Records a read that got an answer. */
    public void read(Read r) {
        reads.add(r);
    }

    /** Records a read that got no usable answer (it says nothing about the state, but counts as an operation). */
    public void failedRead(long startNanos) {
        failedReads.add(startNanos);
    }

    /** Every write recorded so far, in no particular order. */
    public List<Write> writes() {
        return new ArrayList<>(writes);
    }

    /** Every answered read recorded so far, in no particular order. */
    public List<Read> reads() {
        return new ArrayList<>(reads);
    }

    /** Operations attempted: writes (each entry) and reads, answered or not. */
    public long operations() {
        return writes.size() + reads.size() + failedReads.size();
    }

    /** Writes acknowledged so far. */
    public long acknowledged() {
        return writes.stream().filter(w -> w.outcome() == Outcome.OK).count();
    }
}
