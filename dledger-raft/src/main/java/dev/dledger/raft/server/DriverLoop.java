package dev.dledger.raft.server;

/**
 * The thread that runs the passes of one or more nodes ({@link RaftGroupNode#pass(long)}): a thread of its own
 * ({@link RaftLoops}) or a transport thread ({@link IoThreadLoop}). A node is only ever passed on that one thread.
 */
interface DriverLoop {

    /** Starts passing {@code node}. */
    void add(RaftGroupNode node);

    /** Stops passing {@code node}; on the loop's thread. */
    void remove(RaftGroupNode node);

    /** Asks for a pass soon: an input is queued. From any thread; must not block. */
    void wake();

    /** Whether the calling thread is the loop's. */
    boolean onLoopThread();

    /**
     * Whether the loop can no longer run passes (its thread was shut down): a node then stops on the caller's
     * thread.
     */
    boolean dead();
}
