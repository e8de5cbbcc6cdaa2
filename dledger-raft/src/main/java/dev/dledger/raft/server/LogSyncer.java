package dev.dledger.raft.server;

/**
 * The background fsync of one node with {@link FlushMode#SYNC} (a port of the driver): the driver writes log entries,
 * numbers each write and asks for it to be synced; the syncer runs {@link NodeStorage#sync()} later, for every write
 * asked for so far (group commit), then publishes the number of the last write it covered and calls the wake-up it
 * was made with. Production: a thread of its own per node ({@link FlushThreads#threadPerNode()}), or
 * {@link FlushThreads} shared by the groups of a process; the simulation runs syncs as events.
 *
 * <p>Thread safety: every method may be called from any thread. A sync makes durable at least everything written
 * before it started, so a number published is a safe claim.
 *
 * <p>Errors: a failing sync is kept in {@link #failure()} and no sync follows; the driver then stops the node.
 */
public interface LogSyncer extends AutoCloseable {

    /** Makes a syncer for one node. */
    @FunctionalInterface
    interface Factory {
        /**
         * Starts a syncer.
         *
         * @param name    a name for its thread and its logs
         * @param storage the storage to sync
         * @param wake    called after each sync (and after a failure), from the syncer's thread; must not block
         */
        LogSyncer start(String name, NodeStorage storage, Runnable wake);
    }

    /** Asks for every write up to number {@code write} (the driver's count, increasing) to be made durable. */
    void request(long write);

    /** The number of the last write known durable; 0 before the first sync. */
    long synced();

    /** The failure that stopped the syncer, or null. */
    RuntimeException failure();

    /** Stops the syncer after the sync under way. */
    @Override
    void close();
}
