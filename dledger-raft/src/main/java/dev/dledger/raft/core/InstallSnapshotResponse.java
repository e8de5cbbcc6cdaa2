package dev.dledger.raft.core;

/**
 * The answer to an {@link InstallSnapshotRequest}, sent once the snapshot is installed (or known to be covered).
 *
 * @param matchIndex the index up to which the follower's log now matches the leader's
 * @param seq        the {@code seq} of the request
 */
public record InstallSnapshotResponse(String from, String to, long term, long matchIndex, long seq)
    implements Message {
}
