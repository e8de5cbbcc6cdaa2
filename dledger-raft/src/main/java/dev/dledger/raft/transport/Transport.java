package dev.dledger.raft.transport;

import dev.dledger.raft.core.Message;
import java.util.function.Consumer;

/**
 * The port through which a node's driver exchanges Raft messages with its peers. Delivery is best effort: a message
 * may be lost, delayed, duplicated or reordered, which the protocol tolerates. Implementations are thread-safe.
 */
public interface Transport extends AutoCloseable {

    /**
     * Sends {@code m} to {@code m.to()} of {@code group}. Never blocks on the network; drops the message when the
     * peer is unreachable or its queue is full.
     */
    void send(String group, Message m);

    /**
     * Starts delivering messages for {@code group} addressed to {@code selfId} to {@code inbound}. The consumer is
     * called on a transport thread and must not block.
     */
    void register(String group, String selfId, Consumer<Message> inbound);

    /** Sends a snapshot chunk or acknowledgement to {@code chunk.to()}, best effort like {@link #send}. */
    void sendChunk(String group, SnapshotChunk chunk);

    /** Delivers the snapshot chunks of a registered {@code group} to {@code inbound} (on a transport thread). */
    void onChunks(String group, Consumer<SnapshotChunk> inbound);

    /** Serves the client and admin requests of a registered {@code group} with {@code handler}. */
    void serveRequests(String group, RequestHandler handler);

    /**
     * Tells {@code listener} the id of each peer of a registered {@code group} that the transport knows to be gone
     * (its process no longer accepts connections), on a transport thread; the listener must not block. Best effort:
     * the default reports nothing, and a peer that is unreachable but alive is never reported.
     */
    default void onPeerDown(String group, Consumer<String> listener) {
    }

    /** Stops delivering messages of {@code group}. */
    void unregister(String group);

    /**
     * A thread of this transport on which a node's driver may run, or null when the transport offers none (the
     * driver then runs on a thread of its own). The default offers none.
     */
    default IoThread driverThread() {
        return null;
    }

    @Override
    void close();
}
