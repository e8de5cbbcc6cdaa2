package dev.dledger.raft.core;

/**
 * A broken protocol invariant (for example, a leader asking to overwrite a committed entry). The node that throws it
 * must stop: it is never caught and continued from.
 */
public final class RaftInvariantError extends Error {

    private static final long serialVersionUID = 1L;

    public RaftInvariantError(String message) {
        super(message);
    }
}
