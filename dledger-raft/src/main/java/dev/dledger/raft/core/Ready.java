package dev.dledger.raft.core;

import java.util.List;

/**
 * Everything the driver must do after the core took inputs, as one immutable batch. The driver handles batches
 * strictly in order, and each batch in this order (the contract the simulation asserts):
 *
 * <ol>
 *   <li>Make durable, in this order: {@link #hardState()} if not null; {@link #snapshot()} if not null (install the
 *   snapshot bytes in the state machine and reset the log to empty after {@code snapshot.index}); then, if
 *   {@link #truncateFrom()} is not -1, remove every entry at or after it; then append {@link #entries()}. With
 *   {@code flush=async} the page cache suffices. With {@code flush=sync} the log writes are fsynced, either here or in
 *   the background: a driver that syncs in the background calls {@link RaftNode#advance(Ready, boolean)
 *   advance(rd, false)}, reports what became durable through {@link RaftNode#logDurable(long, long)} (a leader counts
 *   itself toward a quorum only up to there), and holds back every acknowledgement (a successful
 *   {@link AppendEntriesResponse}, an {@link InstallSnapshotResponse}) whose match index is not durable yet.</li>
 *   <li>Only then send {@link #messages()}: they may depend on the term, vote and entries just persisted (a vote
 *   granted, an append acknowledged).</li>
 *   <li>Apply {@link #committedEntries()} in index order; serve {@link #readStates()} once their index is
 *   applied.</li>
 *   <li>Call {@link RaftNode#advance(Ready)} with this batch before any other input to the node.</li>
 * </ol>
 *
 * @param hardState        term and vote to persist, or null when unchanged
 * @param role             the role after the inputs
 * @param leaderId         the known leader after the inputs, or null
 * @param snapshot         a snapshot received from the leader to install, or null
 * @param truncateFrom     the first index to remove from the log before appending, or -1
 * @param entries          entries to append, consecutive, starting at the end of the log (after truncation)
 * @param messages         messages to send once the above is durable
 * @param committedEntries committed entries to apply, consecutive, in order
 * @param commitIndex      the commit index after the inputs (a checkpoint may record it)
 * @param readStates       confirmed linearizable reads
 */
public record Ready(HardState hardState, Role role, String leaderId, SnapshotMeta snapshot, long truncateFrom,
                    List<Entry> entries, List<Message> messages, List<Entry> committedEntries, long commitIndex,
                    List<ReadState> readStates) {

    public Ready {
        entries = List.copyOf(entries);
        messages = List.copyOf(messages);
        committedEntries = List.copyOf(committedEntries);
        readStates = List.copyOf(readStates);
    }

    /** Whether the driver has anything to persist before sending messages. */
    public boolean mustPersist() {
        return hardState != null || snapshot != null || truncateFrom >= 0 || !entries.isEmpty();
    }
}
