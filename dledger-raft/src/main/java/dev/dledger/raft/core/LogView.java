package dev.dledger.raft.core;

import java.util.List;

/**
 * The read-only view of the durable log that the core reads. Only the driver writes the log, and only what a
 * {@link Ready} tells it to. Every method is called on the driver's thread.
 *
 * <p>Positions: the log holds entries {@code firstIndex()..lastIndex()}. Entries before {@code firstIndex()} were
 * compacted into the snapshot whose last index is {@code firstIndex() - 1}. An empty fresh log has
 * {@code firstIndex() == 0} and {@code lastIndex() == -1}.
 */
public interface LogView {

    /** The first index whose entry is available. */
    long firstIndex();

    /** The index of the last entry, {@code firstIndex() - 1} when the log holds no entry. */
    long lastIndex();

    /**
     * The term of the entry at {@code index}. For {@code index == firstIndex() - 1} this is the snapshot's term
     * (0 for index -1).
     *
     * @return the term, or -1 when the index is compacted away or beyond {@link #lastIndex()}
     */
    long term(long index);

    /**
     * Entries {@code lo} (inclusive) to {@code hi} (exclusive), stopping early once {@code maxBytes} is reached but
     * always returning at least one entry when {@code lo < hi}.
     *
     * @throws IllegalArgumentException if the range is not within {@code firstIndex()..lastIndex() + 1}
     */
    List<Entry> entries(long lo, long hi, long maxBytes);

    /** The latest snapshot the log was compacted to, or {@link SnapshotMeta#NONE}. */
    SnapshotMeta snapshot();

    /**
     * The highest index whose entry body this log dropped as a witness (issue 19; see {@link Membership}): the entry's
     * index, term and type are kept, its payload is not. -1 (the default) for a log that never dropped a body.
     */
    default long droppedBodiesThrough() {
        return -1;
    }
}
