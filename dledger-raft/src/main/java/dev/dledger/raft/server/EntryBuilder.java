package dev.dledger.raft.server;

import java.util.List;

/**
 * Builds the entries of an append on the node's driver thread, at the moment they are proposed and certain to be
 * taken (see {@link RaftGroupNode#append(EntryBuilder)}). Builders run one at a time, in the order of the log, so a
 * caller may number its entries there (a message queue's offsets) without leaving a gap for an append that is
 * refused: a refused append never runs its builder.
 */
@FunctionalInterface
public interface EntryBuilder {

    /**
     * Returns the bodies to append, at least one, each small enough for a data file
     * ({@link NodeStorage#maxEntryBytes()}). Runs on the driver thread: it must be quick and must not wait for the
     * node. Throwing refuses the append: nothing is appended, and the append completes exceptionally with what was
     * thrown.
     *
     * @param term the term the entries are proposed in (this node leads it)
     */
    List<byte[]> build(long term);
}
