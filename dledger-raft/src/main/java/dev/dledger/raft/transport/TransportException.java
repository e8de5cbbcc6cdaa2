package dev.dledger.raft.transport;

/** The transport cannot do what was asked of it (for example, its port is taken). */
public final class TransportException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public TransportException(String message, Throwable cause) {
        super(message, cause);
    }
}
