package dev.dledger.raft.core;

import java.util.List;

/**
 * What a driver does with each part of a {@link Ready}; {@link #handle(RaftNode, Ready, ReadyHandler, boolean)} is the
 * one place that runs the parts, in the order the Ready contract demands. Every consumer of the core's Readys (the
 * production driver, the test harnesses of the core) goes through it, so the order is written once.
 *
 * <p>The order, and why (Raft paper section 5, figure 2 "Rules for Servers"; etcd-raft's Ready contract):
 * <ol>
 *   <li>{@link #begin}: bookkeeping of the batch that writes nothing (the role, the peers' addresses).</li>
 *   <li>Make durable: {@link #saveHardState} (term and vote, before any vote granted or request sent in that term
 *   leaves, section 5.2), {@link #installSnapshot} (replaces the log up to its index), {@link #truncateFrom} (removes
 *   a conflicting suffix before the new entries go in, section 5.3), then {@link #append}.</li>
 *   <li>{@link #persisted}: every write of the batch is made; a driver that syncs in the background hands them to its
 *   syncer here, before any acknowledgement of them can leave.</li>
 *   <li>{@link #send} each message: they may depend on everything above (a vote granted, an append acknowledged), so
 *   none leaves before it is stored. A driver that syncs in the background holds back an acknowledgement of an index
 *   not yet durable here.</li>
 *   <li>{@link #apply} the committed entries, in index order, only after they are stored here (a follower may learn an
 *   index is committed in the same batch that brings the entry).</li>
 *   <li>{@link #readsConfirmed}: reads are served once their index is applied, so after the apply above.</li>
 *   <li>{@link RaftNode#advance(Ready, boolean)}: the core learns the batch is handled, before any other input.</li>
 *   <li>{@link #advanced}: work that needs the core past this batch (serving reads, checkpoints, snapshots).</li>
 * </ol>
 * A step whose part of the Ready is empty is not called (no hard state, no snapshot, no truncation, no entries, no
 * messages, no committed entries, no reads). All steps run on the thread that owns the node. A step that throws stops
 * the sequence: the core is not advanced, and the driver must stop the node (a storage failure) or fail the test.
 */
public interface ReadyHandler {

    /** Before anything of {@code rd} is written; must not write. */
    default void begin(Ready rd) {
    }

    /** Makes the term and vote durable. */
    void saveHardState(HardState hardState);

    /** Installs a snapshot received from the leader: the log is empty after {@code snapshot.index()}. */
    void installSnapshot(SnapshotMeta snapshot);

    /** Removes every entry at or after {@code index}. */
    void truncateFrom(long index);

    /** Appends entries, consecutive, at the end of the log. */
    void append(List<Entry> entries);

    /** Every write of {@code rd} is made (synced, or handed to a background sync); nothing is sent yet. */
    default void persisted(Ready rd) {
    }

    /** Sends one message, in the order of the Ready. */
    void send(Message message);

    /** Applies committed entries, consecutive, in index order. */
    void apply(List<Entry> committed);

    /** Reads the leader confirmed; to be served once their index is applied. */
    void readsConfirmed(List<ReadState> reads);

    /** After the core was advanced past {@code rd}. */
    default void advanced(Ready rd) {
    }

    /**
     * Handles {@code rd}, taken from {@code node}, in the order above, and advances the node past it.
     *
     * @param logDurable whether the log writes are durable when {@link #persisted} returns (false for a driver that
     *                   syncs in the background and reports through {@link RaftNode#logDurable})
     */
    static void handle(RaftNode node, Ready rd, ReadyHandler handler, boolean logDurable) {
        handler.begin(rd);
        if (rd.hardState() != null) {
            handler.saveHardState(rd.hardState());
        }
        if (rd.snapshot() != null) {
            handler.installSnapshot(rd.snapshot());
        }
        if (rd.truncateFrom() >= 0) {
            handler.truncateFrom(rd.truncateFrom());
        }
        if (!rd.entries().isEmpty()) {
            handler.append(rd.entries());
        }
        handler.persisted(rd);
        for (Message m : rd.messages()) {
            handler.send(m);
        }
        if (!rd.committedEntries().isEmpty()) {
            handler.apply(rd.committedEntries());
        }
        if (!rd.readStates().isEmpty()) {
            handler.readsConfirmed(rd.readStates());
        }
        node.advance(rd, logDurable);
        handler.advanced(rd);
    }
}
