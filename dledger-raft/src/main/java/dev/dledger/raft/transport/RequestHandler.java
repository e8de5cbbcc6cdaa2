package dev.dledger.raft.transport;

import java.util.concurrent.CompletableFuture;

/**
 * Serves the client and admin requests of one group on the node's port. Called on a transport thread; must not
 * block: return a future and complete it from elsewhere.
 */
@FunctionalInterface
public interface RequestHandler {

    /**
     * Handles one request body.
     *
     * @return the response body; a future that fails sends an ERROR frame with the failure's message
     */
    CompletableFuture<byte[]> handle(byte[] request);
}
