package dev.dledger.raft.core;

/**
 * The answer to a {@link VoteRequest}.
 *
 * @param term    the voter's term; for a granted pre-vote, the term of the request
 * @param granted whether the vote (or pre-vote) was granted
 * @param preVote whether this answers a pre-vote
 */
public record VoteResponse(String from, String to, long term, boolean granted, boolean preVote) implements Message {
}
