package dev.dledger.raft.core;

/**
 * RequestVote (Raft paper section 5.2), also used for pre-vote (thesis section 9.6).
 *
 * @param term                the candidate's term; for a pre-vote, the term it would campaign in
 * @param lastLogIndex        index of the candidate's last entry (-1 for an empty log)
 * @param lastLogTerm         term of that entry (0 for an empty log)
 * @param preVote             true for a pre-vote, which changes no state on the receiver
 * @param leadershipTransfer  true when the candidate campaigns because the leader sent it {@link TimeoutNow}: the
 *                            receivers then skip the leader-lease check (thesis section 3.10)
 */
public record VoteRequest(String from, String to, long term, long lastLogIndex, long lastLogTerm, boolean preVote,
                          boolean leadershipTransfer) implements Message {
}
