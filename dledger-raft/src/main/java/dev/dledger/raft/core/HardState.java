package dev.dledger.raft.core;

/**
 * The state that must be durable before any message that depends on it leaves the node: the current term and the
 * vote cast in it (Raft paper, figure 2, "persistent state on all servers").
 *
 * @param term     the current term, 0 before the first election
 * @param votedFor the id voted for in {@code term}, or null
 */
public record HardState(long term, String votedFor) {

    /** The state of a node that has never voted. */
    public static final HardState INITIAL = new HardState(0, null);

    public HardState {
        if (term < 0) {
            throw new IllegalArgumentException("term must be >= 0, was " + term);
        }
    }
}
