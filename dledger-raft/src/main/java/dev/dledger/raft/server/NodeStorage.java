package dev.dledger.raft.server;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.util.List;
import java.util.function.LongFunction;

/**
 * What a node's driver needs of its durable state: the log (which the core reads through {@link #log()}), the term
 * and vote, and snapshots. Only the driver thread of the node calls these methods, except {@link #sync()}.
 *
 * <p>Durability: {@link #saveHardState} is durable when it returns. Log writes ({@link #truncateSuffix},
 * {@link #append}) may sit in the page cache until {@link #sync()}; when the flush mode is {@code sync} the driver
 * sends nothing that claims them durable before a {@code sync()} that started after them returned.
 *
 * <p>Errors: every method throws {@link StorageException} on an I/O failure; the node then stops.
 */
public interface NodeStorage extends AutoCloseable {

    /** The log as the core reads it; reflects every write at once. */
    LogView log();

    /** The term and vote persisted last. */
    HardState hardState();

    /** Persists the term and vote durably (write, fsync, rename). */
    void saveHardState(HardState hardState);

    /** Removes every entry at or after {@code fromIndex}; {@code fromIndex} is above the commit index. */
    void truncateSuffix(long fromIndex);

    /**
     * Appends consecutive entries at the end of the log.
     *
     * @return the position in the data files of each entry, in order (DLedger's {@code pos})
     */
    long[] append(List<Entry> entries);

    /**
     * Makes durable at least every log write that returned before this call started. Called from the node's syncer
     * thread (with {@link FlushMode#SYNC}) while the driver thread goes on writing, so it must be safe to run
     * concurrently with the other methods.
     */
    void sync();

    /** Every CONFIG entry of the log after the snapshot, in order (for the core's start-up). */
    List<Entry> configEntries();

    /** The latest snapshot's bytes, or null when there is none. */
    byte[] snapshotData();

    /** Saves a snapshot taken locally at {@code meta.index()} and drops the log up to it. */
    void saveSnapshot(SnapshotMeta meta, byte[] data);

    /** Installs a snapshot received from the leader: the log becomes empty after {@code meta.index()}. */
    void installSnapshot(SnapshotMeta meta, byte[] data);

    /** The commit index recorded by {@link #checkpointCommit}, or -1. */
    long committedCheckpoint();

    /** Records the commit index (not necessarily durable at once; it is a hint for restart). */
    void checkpointCommit(long commitIndex);

    /**
     * Housekeeping that the driver runs about once a second: deletes old log files as the storage's retention
     * settings allow, never an entry above {@code safeIndex}; the log then starts later, as after a snapshot. The
     * default does nothing.
     *
     * @param safeIndex    the highest index the node no longer needs in the log: the last snapshot's when the node
     *                     takes snapshots, otherwise the applied index
     * @param membershipAt the membership in force at an index (the node's view), recorded with the deletion
     */
    default void retain(long safeIndex, LongFunction<Membership> membershipAt) {
    }

    /**
     * Why the leader must refuse new appends for lack of disk space, or null when it may take them. Read on the
     * driver thread before each proposal; the default never refuses.
     */
    default String diskFull() {
        return null;
    }

    /**
     * On a witness (issue 19), drops the bodies of the NORMAL entries up to {@code index}, keeping their index, term,
     * type and header, and every CONFIG entry whole; {@link LogView#droppedBodiesThrough()} then reports at least
     * {@code index}. Called on the driver thread with an index the core allowed ({@code RaftNode.witnessDropIndex()})
     * and the node applied. The default keeps every body, which is always safe (only the witness's disk pays).
     */
    default void dropBodiesThrough(long index) {
    }

    @Override
    void close();

    /** The largest entry body this storage can hold, in bytes; larger appends are refused before they reach it. */
    default int maxEntryBytes() {
        return Integer.MAX_VALUE;
    }
}
