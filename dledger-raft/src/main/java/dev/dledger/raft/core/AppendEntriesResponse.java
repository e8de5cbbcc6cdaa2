package dev.dledger.raft.core;

/**
 * The answer to an {@link AppendEntriesRequest}. A success is sent only after the entries it covers are durable.
 *
 * @param success       whether the log matched at {@code prevLogIndex} and the entries were stored
 * @param matchIndex    on success, the index up to which the follower's log now matches the request
 * @param rejectedIndex on failure, the {@code prevLogIndex} of the rejected request (to spot stale rejections)
 * @param conflictIndex on failure, where the leader should retry: the first index of {@code conflictTerm} in the
 *                      follower's log, or the follower's last index + 1 when its log is too short
 * @param conflictTerm  on failure, the follower's term at {@code rejectedIndex}, or -1 when it has no entry there;
 *                      this is the fast backtracking of Raft paper section 5.3 (one round trip per term, not per
 *                      entry)
 * @param seq           the {@code seq} of the request
 * @param leadReady     on success, from its group's preferred leader only: whether it could serve at once if it led
 *                      now (its application caught up with its log, {@code RaftNode#setLeadReady}); the leader hands
 *                      the preferred node the leadership only then (issue 18)
 */
public record AppendEntriesResponse(String from, String to, long term, boolean success, long matchIndex,
                                    long rejectedIndex, long conflictIndex, long conflictTerm, long seq,
                                    boolean leadReady)
    implements Message {

    /** An answer that does not say the follower is ready to lead. */
    public AppendEntriesResponse(String from, String to, long term, boolean success, long matchIndex,
                                 long rejectedIndex, long conflictIndex, long conflictTerm, long seq) {
        this(from, to, term, success, matchIndex, rejectedIndex, conflictIndex, conflictTerm, seq, false);
    }
}
