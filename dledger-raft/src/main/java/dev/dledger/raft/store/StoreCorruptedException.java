package dev.dledger.raft.store;

/**
 * The log on disk is not what it must be: a bad record before the tail, a broken CRC chain, an index unit that
 * disagrees with the data, a missing file. The message names the file, the position and what was wrong. The node
 * must stop; nothing is dropped to get past it.
 */
public final class StoreCorruptedException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public StoreCorruptedException(String message) {
        super(message);
    }
}
