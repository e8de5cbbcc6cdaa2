package dev.dledger.raft.core;

/**
 * The kind of a log entry. The numeric {@link #magic()} is the value DLedger 0.3.x writes into the first four bytes
 * of the entry header, so a store written by stock DLedger keeps its meaning.
 */
public enum EntryType {
    /** An application payload. */
    NORMAL(1),
    /** The empty entry a new leader appends at the start of its term (Raft paper section 8). */
    NOOP(2),
    /** A membership configuration (Raft thesis section 4.1); the body is {@link Membership#encode()}. */
    CONFIG(3);

    private final int magic;

    EntryType(int magic) {
        this.magic = magic;
    }

    /** The magic number of this type in the on-disk entry header. */
    public int magic() {
        return magic;
    }

    /**
     * Returns the type for an on-disk magic number.
     *
     * @throws IllegalArgumentException if the magic names no entry type
     */
    public static EntryType ofMagic(int magic) {
        switch (magic) {
            case 1:
                return NORMAL;
            case 2:
                return NOOP;
            case 3:
                return CONFIG;
            default:
                throw new IllegalArgumentException("unknown entry magic " + magic);
        }
    }
}
