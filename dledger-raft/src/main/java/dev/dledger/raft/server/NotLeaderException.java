package dev.dledger.raft.server;

/** The request needs the leader and this node is not it. */
public final class NotLeaderException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String leaderHint;

    public NotLeaderException(String leaderHint) {
        super(leaderHint == null ? "not the leader; leader unknown" : "not the leader; try " + leaderHint);
        this.leaderHint = leaderHint;
    }

    /** The leader this node knows of, or null. */
    public String leaderHint() {
        return leaderHint;
    }
}
