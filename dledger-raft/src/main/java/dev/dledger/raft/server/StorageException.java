package dev.dledger.raft.server;

/** A storage operation failed (I/O error, full disk); the node that hit it stops acknowledging. */
public class StorageException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public StorageException(String message, Throwable cause) {
        super(message, cause);
    }

    public StorageException(String message) {
        super(message);
    }
}
