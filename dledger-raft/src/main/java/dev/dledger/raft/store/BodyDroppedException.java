package dev.dledger.raft.store;

/**
 * A read asked for the body of an entry that this witness dropped (issue 19): its index, term and position are kept,
 * its bytes are not; a data member of the group holds them. Never answered with other bytes.
 */
public final class BodyDroppedException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public BodyDroppedException(String message) {
        super(message);
    }
}
