package dev.dledger.raft.core;

/**
 * Sent by a leader to the target of a leadership transfer once its log is caught up: the target campaigns at once
 * (thesis section 3.10), its vote requests setting the voters' lease aside. With pre-vote configured it runs a pre-vote
 * round first, so that a TimeoutNow read late (after the leader gave the transfer up and appended more) costs no term.
 */
public record TimeoutNow(String from, String to, long term) implements Message {
}
