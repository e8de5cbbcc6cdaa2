package dev.dledger.raft.server;

/**
 * The time a node's driver reads (a port): a monotonic count of nanoseconds, as {@link System#nanoTime()}, from which
 * the driver derives ticks, deadlines and the lateness of its ticks. Production: {@link #SYSTEM}; the simulation reads
 * its simulated time, skewed per node.
 */
@FunctionalInterface
public interface Clock {

    /** The system's monotonic clock. */
    Clock SYSTEM = System::nanoTime;

    /** Nanoseconds since an arbitrary origin; never decreases. Called on the driver's thread. */
    long nanoTime();
}
