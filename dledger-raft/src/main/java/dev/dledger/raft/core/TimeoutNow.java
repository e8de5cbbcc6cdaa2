package dev.dledger.raft.core;

/**
 * Sent by a leader to the target of a leadership transfer once its log is caught up: the target starts an election
 * at once, without pre-vote (thesis section 3.10).
 */
public record TimeoutNow(String from, String to, long term) implements Message {
}
