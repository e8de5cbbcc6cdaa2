package dev.dledger.raft.server;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.RaftNode;
import java.util.function.Consumer;

/**
 * Tells the owner of the transport which peers one {@link RaftGroupNode} talks to: the voters in force, with the
 * addresses the group recorded, plus, on a leader, the peer being caught up before it becomes a voter.
 *
 * <p>Contract: driver thread only. {@link #publish} calls the listener only when the set differs from the last one it
 * was given, and the driver calls it before any message of a Ready leaves, so the transport knows a new peer's address
 * before the first message to it. The listener must not block.
 */
final class PeerAddresses {

    private Consumer<Membership> listener;
    private Membership last;

    /** Sets the listener; the next {@link #publish} calls it whatever the set. */
    void listen(Consumer<Membership> l) {
        listener = l;
        last = null;
    }

    /** Calls the listener with the peers of {@code node} now, when they changed. */
    void publish(RaftNode node) {
        Consumer<Membership> l = listener;
        if (l == null) {
            return;
        }
        Membership now = node.membership();
        if (node.stagedPeer() != null && !now.contains(node.stagedPeer())) {
            now = now.with(node.stagedPeer(), node.stagedAddress());
        }
        if (!now.equals(last)) {
            last = now;
            l.accept(now);
        }
    }
}
