package dev.dledger.raft.core;

import java.util.ArrayDeque;

/**
 * A leader's replication state for one follower (etcd's tracker is the model for the three states).
 *
 * <ul>
 *   <li>PROBE: the leader does not know where the logs match; it sends one AppendEntries and waits for the answer
 *   (or the next heartbeat) before sending another.</li>
 *   <li>REPLICATE: the logs match up to {@code match}; the leader streams batches optimistically from {@code next},
 *   bounded by the in-flight limits.</li>
 *   <li>SNAPSHOT: the follower needs a snapshot; nothing else is sent until it is installed or fails.</li>
 * </ul>
 */
final class Progress {

    enum State {
        PROBE,
        REPLICATE,
        SNAPSHOT
    }

    long match = -1;
    long next;
    State state = State.PROBE;
    /** In PROBE: an AppendEntries was sent and not yet answered. */
    boolean probeSent;
    /** In SNAPSHOT: the index of the snapshot being sent. */
    long pendingSnapshot = -1;
    /**
     * A witness being promoted (issue 19): its log lacks bodies it dropped, so its answers count for nothing until it
     * installed a snapshot at or above this index, which replaces its log; -1 for every other follower.
     */
    long refillFloor = -1;
    /**
     * The last tick at which the follower answered anything; starts at the tick the leader took office, so that
     * check-quorum gives a new leader one election timeout of grace.
     */
    long lastActiveTick;
    /**
     * The leader's {@code RaftNode#stoodStill} at {@link #lastActiveTick}: check-quorum counts only the silence of
     * ticks the leader ran.
     */
    long stoodStillAtActive;
    /** Whether the follower answered this leader at all (grace is not activity). */
    boolean responded;
    /**
     * The tick since which the follower answered without a long silence (see {@code RaftNode#answered}): a node that
     * just restarted often stalls for a while (its process starting, its code not compiled yet), and leadership handed
     * to it then is lost again to an election.
     */
    long steadySinceTick;
    /** Whether the follower's last successful answer said it is ready to lead ({@link AppendEntriesResponse#leadReady}). */
    boolean leadReady;
    /** The last tick at which replication to the follower made progress, or a message was sent in PROBE. */
    long lastProgressTick;
    /** The highest broadcast seq the follower echoed. */
    long ackedSeq = -1;

    /** In REPLICATE: the last index and the bytes of each unacknowledged AppendEntries, oldest first. */
    private final ArrayDeque<long[]> inflight = new ArrayDeque<>();
    private long inflightBytes;

    Progress(long next, long nowTick, long stoodStill) {
        this.next = next;
        this.lastActiveTick = nowTick;
        this.stoodStillAtActive = stoodStill;
        this.lastProgressTick = nowTick;
    }

    /** Raises {@code match} (and {@code next} with it); returns whether {@code match} grew. */
    boolean maybeUpdate(long index) {
        boolean grew = index > match;
        if (grew) {
            match = index;
        }
        if (next < index + 1) {
            next = index + 1;
        }
        return grew;
    }

    void becomeProbe(long nextIndex) {
        state = State.PROBE;
        next = Math.max(nextIndex, match + 1);
        probeSent = false;
        pendingSnapshot = -1;
        clearInflight();
    }

    void becomeReplicate() {
        state = State.REPLICATE;
        next = match + 1;
        probeSent = false;
        pendingSnapshot = -1;
        clearInflight();
    }

    void becomeSnapshot(long snapshotIndex) {
        state = State.SNAPSHOT;
        pendingSnapshot = snapshotIndex;
        probeSent = false;
        clearInflight();
    }

    /** Whether the leader must not send more entries now. */
    boolean paused(int maxMessages, long maxBytes) {
        switch (state) {
            case PROBE:
                return probeSent;
            case REPLICATE:
                return inflight.size() >= maxMessages || inflightBytes >= maxBytes;
            default:
                return true;
        }
    }

    void addInflight(long lastIndex, long bytes) {
        inflight.addLast(new long[] {lastIndex, bytes});
        inflightBytes += bytes;
    }

    /** Drops the in-flight records up to and including {@code index}. */
    void freeInflightTo(long index) {
        while (!inflight.isEmpty() && inflight.peekFirst()[0] <= index) {
            inflightBytes -= inflight.removeFirst()[1];
        }
    }

    boolean hasInflight() {
        return !inflight.isEmpty();
    }

    int inflightCount() {
        return inflight.size();
    }

    long inflightBytes() {
        return inflightBytes;
    }

    private void clearInflight() {
        inflight.clear();
        inflightBytes = 0;
    }
}
