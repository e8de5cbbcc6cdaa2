package dev.dledger.raft.sim;

import dev.dledger.raft.core.HardState;

import java.util.Random;

/**
 * The simulated store of a node's {@link HardState} (term and vote) and of its commit checkpoint.
 *
 * <p>A write changes the visible value at once; {@link #sync()} makes it durable. Each value is written atomically
 * (temp file, fsync, rename in production), so a crash keeps either the old or the new value, never a mix: with a
 * pending write, {@link #crash(boolean)} keeps the new value only when told so. Not thread-safe.
 */
public final class SimulatedMetaStore {

    private HardState current = HardState.INITIAL;
    private HardState durable = HardState.INITIAL;
    private long checkpoint = -1;

    /** A store holding {@link HardState#INITIAL} and no checkpoint. */
    public SimulatedMetaStore() {
    }

    /** Writes a new term and vote; durable only after {@link #sync()}. */
    public void write(HardState hs) {
        current = hs;
    }

    /** Makes the last written value durable. */
    public void sync() {
        durable = current;
    }

    /** Whether a written value is not yet durable. */
    public boolean hasPending() {
        return !current.equals(durable);
    }

    /**
     * Models a crash: a pending write survives only when {@code keepPending} (the rename reached the disk before the
     * failure).
     */
    public void crash(boolean keepPending) {
        if (keepPending) {
            durable = current;
        }
        current = durable;
    }

    /** A crash that keeps a pending write with probability 1/2, drawn from {@code random}. */
    public void crash(Random random) {
        crash(hasPending() && random.nextBoolean());
    }

    /** The visible term and vote. */
    public HardState hardState() {
        return current;
    }

    /** The durable term and vote: what a restart reads. */
    public HardState durableHardState() {
        return durable;
    }

    /**
     * Records a commit checkpoint, written atomically and durable at once (DLedger's checkpoint file). The driver
     * writes it only after the entries it covers are durable.
     */
    public void writeCheckpoint(long commitIndex) {
        checkpoint = commitIndex;
    }

    /** The last checkpoint, or -1. */
    public long checkpoint() {
        return checkpoint;
    }
}
