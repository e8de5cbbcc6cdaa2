package dev.dledger.raft.server;

/** When a node's log writes become durable relative to acknowledging them. */
public enum FlushMode {
    /**
     * An entry counts toward the quorum only once fsynced on that node. The fsync runs on a thread of its own while
     * the driver goes on; one fsync covers every entry that arrived while the previous one ran (group commit).
     */
    SYNC,
    /**
     * An entry counts once it is in the page cache; the log is fsynced every {@code flushIntervalMs}. A process crash
     * loses nothing; losing power on a majority at once can lose acknowledged entries. DLedger's and RocketMQ's
     * default.
     */
    ASYNC
}
