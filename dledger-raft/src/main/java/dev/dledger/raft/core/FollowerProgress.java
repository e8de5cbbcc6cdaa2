package dev.dledger.raft.core;

/**
 * A leader's view of one follower, for status and metrics.
 *
 * @param id         the follower's id
 * @param matchIndex the highest index known to be stored on the follower
 * @param nextIndex  the next index the leader will send
 * @param state      PROBE, REPLICATE or SNAPSHOT
 * @param active     whether the follower answered within the last election timeout
 */
public record FollowerProgress(String id, long matchIndex, long nextIndex, String state, boolean active) {

    /** Whether the leader is sending this follower a snapshot (state SNAPSHOT). */
    public boolean sendingSnapshot() {
        return Progress.State.SNAPSHOT.name().equals(state);
    }
}
