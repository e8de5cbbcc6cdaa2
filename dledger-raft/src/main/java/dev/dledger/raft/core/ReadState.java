package dev.dledger.raft.core;

/**
 * A linearizable read that the leader has confirmed (thesis section 6.4): once the node has applied {@code index},
 * the read may be served from its state machine.
 *
 * @param requestId the id the caller passed to {@link RaftNode#readIndex(long, boolean)}
 * @param index     the commit index at the time the read was registered
 */
public record ReadState(long requestId, long index) {
}
