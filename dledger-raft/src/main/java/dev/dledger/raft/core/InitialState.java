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
 * @param leaseQuietTicks for this many ticks after start the node refuses votes as if it had just heard from a
 *                      leader. After a restart the driver passes the election timeout: the node may have heard from a
 *                      leader just before it stopped, and that leader's lease counts on its silence. 0 for a new node,
 *                      or one that was down longer than an election timeout
 */
public record InitialState(HardState hardState, Membership membership, List<Entry> configEntries, long commitIndex,
                           long appliedIndex, int leaseQuietTicks) {

    public InitialState {
        configEntries = List.copyOf(configEntries);
        if (leaseQuietTicks < 0) {
            throw new IllegalArgumentException("leaseQuietTicks must be >= 0, was " + leaseQuietTicks);
        }
    }

    /** A state without a quiet period after start. */
    public InitialState(HardState hardState, Membership membership, List<Entry> configEntries, long commitIndex,
                        long appliedIndex) {
        this(hardState, membership, configEntries, commitIndex, appliedIndex, 0);
    }

    /** A copy with a quiet period of {@code ticks} after start. */
    public InitialState withLeaseQuietTicks(int ticks) {
        return new InitialState(hardState, membership, configEntries, commitIndex, appliedIndex, ticks);
    }

    /** The state of a brand-new node of a group whose voters are {@code membership}. */
    public static InitialState bootstrap(Membership membership) {
        return new InitialState(HardState.INITIAL, membership, List.of(), -1, -1);
    }
}
