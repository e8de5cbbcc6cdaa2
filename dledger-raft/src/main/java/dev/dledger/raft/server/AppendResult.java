package dev.dledger.raft.server;

/**
 * The outcome of an append.
 *
 * @param status     the outcome
 * @param index      the index of the first entry when committed, else -1
 * @param term       the term the entries were appended in, else -1
 * @param positions  the data-file position of each entry when committed (DLedger's {@code pos}; -1 where unknown, as
 *                   in the answer to a retry of an append applied earlier), else empty
 * @param leaderHint the leader to retry at when {@code status} is NOT_LEADER, or null
 */
public record AppendResult(Status status, long index, long term, long[] positions, String leaderHint) {

    /** What happened to an append. */
    public enum Status {
        /** Committed: stored on a quorum and applied on this node. */
        OK,
        /** This node is not the leader; nothing was appended. */
        NOT_LEADER,
        /** A leadership transfer is under way; nothing was appended. */
        TRANSFERRING,
        /** Too many appends are waiting; nothing was appended. */
        OVERLOADED,
        /** Appended but not known to be committed in time: it may still commit (indeterminate). */
        TIMEOUT,
        /** Appended, then replaced by another leader's entries: it did not commit. */
        LOST,
        /** The node stopped or failed before the outcome was known (indeterminate). */
        STOPPED,
        /**
         * A retried append (same request id) that the leader cannot match with certainty: the id is older than what
         * it remembers of the client, or only the head of the batch is in the log. Nothing was appended; whether the
         * original was applied is unknown.
         */
        EXPIRED,
        /**
         * The leader's disk is above the full ratio of its retention policy ({@code diskSpaceRatioToForceClean} + 5%,
         * at most 95%); nothing was appended. DLedger's DISK_FULL.
         */
        DISK_FULL
    }

    /** A result without log position. */
    public static AppendResult of(Status status, String leaderHint) {
        return new AppendResult(status, -1, -1, new long[0], leaderHint);
    }
}
