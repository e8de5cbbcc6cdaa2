package dev.dledger.raft.core;

/**
 * The outcome of a proposal: accepted at a log position, or refused for a reason the caller can act on.
 *
 * @param status     the outcome
 * @param index      the first index given to the proposal when accepted, else -1
 * @param term       the term of the accepted proposal, else the node's current term
 * @param leaderHint the known leader when {@code status} is {@link Status#NOT_LEADER}, else null
 */
public record ProposeResult(Status status, long index, long term, String leaderHint) {

    /** Why a proposal was or was not accepted. */
    public enum Status {
        /** Appended to the leader's log; it commits once a quorum stores it. */
        ACCEPTED,
        /** This node is not the leader; retry at {@code leaderHint} if known. */
        NOT_LEADER,
        /** A leadership transfer is in progress; retry at the new leader. */
        TRANSFERRING,
        /** A membership change is already in progress, or the leader has not yet committed an entry of its term. */
        CONFIG_CHANGE_IN_PROGRESS,
        /** The membership change is not valid (adding a voter that exists, removing one that does not, ...). */
        INVALID_CONFIG_CHANGE,
        /** The named peer is not a voter of the group (leadership transfer to a non-member). */
        UNKNOWN_PEER,
        /** The peer to add is being caught up; the leader adds it as a voter by itself once it has caught up. */
        CATCHING_UP,
        /** Removing the peer would leave fewer reachable voters than a quorum of the new configuration. */
        NO_QUORUM_AFTER_CHANGE
    }

    /** Whether the proposal was appended. */
    public boolean accepted() {
        return status == Status.ACCEPTED;
    }
}
