package dev.dledger.raft.transport;

/**
 * A thread of a transport that may run a node's driver between its network reads and writes. A driver on the
 * thread that reads its peers' messages takes them without a hand-off to another thread, and its sends leave without
 * one: on a small machine those hand-offs (a wake-up of a sleeping thread each) cost more than the work.
 *
 * <p>Whatever runs here must not block for long: it delays every connection the thread serves.
 */
public interface IoThread {

    /** Whether the calling thread is this thread. */
    boolean inThread();

    /**
     * Runs {@code task} on this thread soon, after the tasks and reads before it; from any thread.
     *
     * @return false when the thread is shut down (the task will not run)
     */
    boolean execute(Runnable task);

    /**
     * Runs {@code task} on this thread after {@code delayNanos}; from any thread.
     *
     * @return false when the thread is shut down (the task will not run)
     */
    boolean schedule(Runnable task, long delayNanos);

    /**
     * Whether a driver on this thread must hand work that blocks on a disk (a term/vote fsync, building a snapshot)
     * to a thread of its own: true for an event loop that serves other connections and groups (the default); a
     * thread that serves nothing else may answer false.
     */
    default boolean offloadsBlockingWork() {
        return true;
    }
}
