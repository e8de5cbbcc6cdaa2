package dev.dledger.raft.server;

import dev.dledger.raft.core.AppendEntriesResponse;
import dev.dledger.raft.core.InstallSnapshotResponse;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.RaftNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.function.Consumer;

/**
 * How far the log of one {@link RaftGroupNode} is durable, and the acknowledgements that wait for it.
 *
 * <p>With {@link FlushMode#ASYNC} (no syncer) every write counts as durable once made. With {@link FlushMode#SYNC} the
 * writes are handed to a background {@link LogSyncer}; an index counts as durable once a sync that covers it finished
 * and the entry it ended with is still in the log (log matching), and the core learns it through
 * {@link RaftNode#logDurable}. An acknowledgement (a successful {@link AppendEntriesResponse}, an
 * {@link InstallSnapshotResponse}) whose match index is not durable is held back, in the order made, until it is; one
 * of entries truncated or replaced is dropped, never sent.
 *
 * <p>Contract: driver thread only; {@link #collect} throws {@link StorageException} when a sync failed.
 */
final class DurableLog {

    /** The background fsync with {@link FlushMode#SYNC}; null with {@link FlushMode#ASYNC}. */
    private final LogSyncer syncer;
    /** With a syncer: the number of the last log write handed to it. */
    private long writes;
    /** With a syncer: the number of the last write whose sync the driver handled. */
    private long syncedWrites;
    /** With a syncer: each write not yet synced as {number, last index after it, that entry's term}. */
    private final ArrayDeque<long[]> unsynced = new ArrayDeque<>();
    /** The last index of the log known durable here (every index with {@link FlushMode#ASYNC}). */
    private long durableIndex;
    /** With a syncer: acknowledgements waiting for their match index to become durable, in the order made. */
    private final List<Message> heldAcks = new ArrayList<>();

    /**
     * @param syncer       the background syncer, or null when every write counts as durable
     * @param durableIndex the last index of the log at start (durable: synced before the node starts)
     */
    DurableLog(LogSyncer syncer, long durableIndex) {
        this.syncer = syncer;
        this.durableIndex = durableIndex;
    }

    /** Whether the log writes are durable when made (no background sync). */
    boolean durableOnWrite() {
        return syncer == null;
    }

    /** The last index known durable here. */
    long durableIndex() {
        return durableIndex;
    }

    /** The writes of a Ready are made: with a syncer they are handed to it, else they are durable now. */
    void written(LogView log) {
        if (syncer != null) {
            long last = log.lastIndex();
            unsynced.addLast(new long[] {++writes, last, log.term(last)});
            syncer.request(writes);
        } else {
            durableIndex = log.lastIndex();
        }
    }

    /** A snapshot replaced the log up to {@code index}: that much is durable, and nothing after it. */
    void snapshotInstalled(long index) {
        durableIndex = index;
        dropHeldAcksAbove(durableIndex);
    }

    /** The log lost every entry from {@code from} on: acknowledgements of them can never be honoured. */
    void truncated(long from) {
        durableIndex = Math.min(durableIndex, from - 1);
        dropHeldAcksAbove(durableIndex);
    }

    /** Sends {@code m} now, or holds it back while it acknowledges an index not durable yet. */
    void sendOrHold(Message m, Consumer<Message> send) {
        if (syncer != null && ackIndex(m) > durableIndex) {
            heldAcks.add(m);
        } else {
            send.accept(m);
        }
    }

    /**
     * Takes what the syncer finished: tells the core how far the log is durable and sends the acknowledgements that
     * waited for it.
     *
     * @return whether anything was done
     * @throws StorageException if a sync failed
     */
    boolean collect(LogView log, RaftNode node, Consumer<Message> send) {
        if (syncer == null) {
            return false;
        }
        RuntimeException failure = syncer.failure();
        if (failure != null) {
            throw failure instanceof StorageException se ? se
                : new StorageException("log sync failed: " + failure.getMessage(), failure);
        }
        long synced = syncer.synced();
        if (synced <= syncedWrites) {
            return false;
        }
        syncedWrites = synced;
        long[] last = null;
        while (!unsynced.isEmpty() && unsynced.peekFirst()[0] <= synced) {
            last = unsynced.pollFirst();
        }
        if (last == null) {
            return true;
        }
        long index = last[1];
        long term = last[2];
        // The write is still this log's only if the entry it ended with is still there (log matching); a later
        // truncation removed it otherwise, and the sync that covers the replacement reports it.
        if (index > durableIndex && index <= log.lastIndex() && index >= log.firstIndex() && log.term(index) == term) {
            durableIndex = index;
        }
        node.logDurable(index, term);
        sendHeldAcks(send);
        return true;
    }

    /**
     * A snapshot of the applied state was saved at {@code index}: with a syncer, applied entries may not be synced
     * here yet (a quorum of others committed them); the snapshot is durable and replaces the log up to its index, so
     * that much is durable now, and a sync of the dropped entries can no longer report them.
     */
    void snapshotSaved(long index, long term, RaftNode node, Consumer<Message> send) {
        if (syncer != null && index > durableIndex) {
            durableIndex = index;
            node.logDurable(index, term);
            sendHeldAcks(send);
        }
    }

    /** Stops the syncer, if any. */
    void close() {
        if (syncer != null) {
            syncer.close();
        }
    }

    /** Sends the held acknowledgements that the durable log now covers. */
    private void sendHeldAcks(Consumer<Message> send) {
        Iterator<Message> it = heldAcks.iterator();
        while (it.hasNext()) {
            Message m = it.next();
            if (ackIndex(m) <= durableIndex) {
                it.remove();
                send.accept(m);
            }
        }
    }

    private void dropHeldAcksAbove(long index) {
        heldAcks.removeIf(m -> ackIndex(m) > index);
    }

    /** The index a message tells its receiver is stored here, or -1 when it claims nothing. */
    static long ackIndex(Message m) {
        if (m instanceof AppendEntriesResponse r) {
            return r.success() ? r.matchIndex() : -1;
        }
        if (m instanceof InstallSnapshotResponse r) {
            return r.matchIndex();
        }
        return -1;
    }
}
