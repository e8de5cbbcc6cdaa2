package dev.dledger.raft.core;

/**
 * A message between two members of one group. Every message carries the sender's term; the rules of Raft paper
 * section 5.1 (adopt a higher term, reject a lower one) apply to all of them, with the pre-vote exceptions of the
 * thesis, section 9.6.
 */
public sealed interface Message
    permits VoteRequest, VoteResponse, AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
    InstallSnapshotResponse, TimeoutNow {

    /** The sender's id. */
    String from();

    /** The receiver's id. */
    String to();

    /** The sender's term (for a granted pre-vote response: the term the pre-candidate asked about). */
    long term();
}
