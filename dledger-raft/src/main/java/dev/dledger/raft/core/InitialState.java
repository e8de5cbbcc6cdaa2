package dev.dledger.raft.core;

import java.util.List;

/**
 * What a node recovered from its durable state when it starts.
 *
 * @param hardState     the persisted term and vote
 * @param membership    the configuration in force at the start of the log: the snapshot's, or the bootstrap
 *                      configuration of a new group ({@link Membership#EMPTY} for a node that is being added)
 * @param configEntries every {@link EntryType#CONFIG} entry of the log after the snapshot, in index order
 * @param commitIndex   a commit index known from a checkpoint, or -1; the core never goes below the snapshot index
 * @param appliedIndex  the last index the state machine holds (the snapshot's index after a restart of an in-memory
 *                      state machine); committed entries after it are applied again
 */
public record InitialState(HardState hardState, Membership membership, List<Entry> configEntries, long commitIndex,
                           long appliedIndex) {

    public InitialState {
        configEntries = List.copyOf(configEntries);
    }

    /** The state of a brand-new node of a group whose voters are {@code membership}. */
    public static InitialState bootstrap(Membership membership) {
        return new InitialState(HardState.INITIAL, membership, List.of(), -1, -1);
    }
}
