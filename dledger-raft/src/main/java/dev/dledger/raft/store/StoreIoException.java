package dev.dledger.raft.store;

/**
 * A read or write of the store failed (I/O error, full disk). After a failed write the store refuses further writes;
 * what was stored before stays readable.
 */
public final class StoreIoException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public StoreIoException(String message, Throwable cause) {
        super(message, cause);
    }
}
