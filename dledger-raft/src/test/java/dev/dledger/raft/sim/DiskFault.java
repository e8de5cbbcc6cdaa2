package dev.dledger.raft.sim;

/**
 * A fault armed on a node's disk or process, fired by the driver while it handles the next {@code Ready} that reaches
 * the point where the fault applies. Every fault ends with the node down (fail-stop); the simulation restarts it
 * later from its durable state.
 */
public enum DiskFault {
    /** No fault armed. */
    NONE,
    /** The fsync of a new term or vote fails: the node stops; the new value may or may not have reached the disk. */
    META_FSYNC_FAILURE,
    /** The fsync of log writes fails: the node stops; any prefix of the writes may have reached the disk. */
    LOG_FSYNC_FAILURE,
    /** Power is lost in the middle of writing entries: only a strict prefix of them is on disk. */
    TORN_WRITE,
    /** The process dies after persisting a batch but before sending its messages. */
    CRASH_BEFORE_SEND,
    /** The process dies after sending a batch's messages but before applying its committed entries. */
    CRASH_BEFORE_APPLY
}
