package dev.dledger.raft.core;

import java.util.Objects;

/**
 * The protocol's settings, in ticks (the driver decides how long a tick is; 10 ms by default) and bytes.
 *
 * @param id                      this node's id
 * @param electionTimeoutTicks    base election timeout; a follower waits a random time in
 *                                {@code [electionTimeoutTicks, 2 * electionTimeoutTicks)} before campaigning.
 *                                Default 30 (300 ms with 10 ms ticks: failover well under 2 s, yet a loaded 2-core
 *                                machine's scheduling hiccups do not depose a healthy leader)
 * @param heartbeatTicks          a leader sends a heartbeat to an idle follower this often. Default 3
 * @param preVote                 run a pre-vote before each election (thesis section 9.6). Default true
 * @param checkQuorum             a leader steps down when no quorum was heard from within an election timeout, and
 *                                followers ignore votes while they hear from a leader. Default true
 * @param leaseTicks              how long after a quorum acknowledged a heartbeat the leader may serve lease reads;
 *                                must stay below {@code electionTimeoutTicks} by the clock drift allowed between
 *                                nodes. Default 15 ({@code electionTimeoutTicks / 2})
 * @param maxEntriesPerMessage    at most this many entries in one AppendEntries. Default 256
 * @param maxBytesPerMessage      at most about this many bytes of entries in one AppendEntries. Default 1 MiB
 * @param maxInflightMessages     at most this many unacknowledged AppendEntries per follower. Default 256
 * @param maxInflightBytes        at most about this many unacknowledged bytes per follower. Default 32 MiB
 * @param maxApplyBytes           at most about this many bytes of committed entries in one Ready. Default 1 MiB: the
 *                                driver applies a Ready in one go, so a batch must take well under an election
 *                                timeout, or a follower working off a backlog (after a restart) answers its leader too
 *                                late for check-quorum
 * @param preferredLeader         the id that should lead when it is caught up, or null. Default null
 * @param replicationTimeoutTicks a pipelined follower that answered nothing for this long is probed again.
 *                                Default {@code 2 * heartbeatTicks}
 */
public record RaftConfig(String id, int electionTimeoutTicks, int heartbeatTicks, boolean preVote, boolean checkQuorum,
                         int leaseTicks, int maxEntriesPerMessage, long maxBytesPerMessage, int maxInflightMessages,
                         long maxInflightBytes, long maxApplyBytes, String preferredLeader,
                         int replicationTimeoutTicks) {

    public RaftConfig {
        Objects.requireNonNull(id, "id");
        require(electionTimeoutTicks >= 2, "electionTimeoutTicks must be >= 2");
        require(heartbeatTicks >= 1 && heartbeatTicks < electionTimeoutTicks,
            "heartbeatTicks must be in [1, electionTimeoutTicks)");
        require(leaseTicks >= 0 && leaseTicks < electionTimeoutTicks, "leaseTicks must be in [0, electionTimeoutTicks)");
        require(maxEntriesPerMessage >= 1, "maxEntriesPerMessage must be >= 1");
        require(maxBytesPerMessage >= 1, "maxBytesPerMessage must be >= 1");
        require(maxInflightMessages >= 1, "maxInflightMessages must be >= 1");
        require(maxInflightBytes >= 1, "maxInflightBytes must be >= 1");
        require(maxApplyBytes >= 1, "maxApplyBytes must be >= 1");
        require(replicationTimeoutTicks >= 1, "replicationTimeoutTicks must be >= 1");
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new IllegalArgumentException(what);
        }
    }

    /** The defaults listed above for node {@code id}. */
    public static RaftConfig defaults(String id) {
        return new RaftConfig(id, 30, 3, true, true, 15, 256, 1 << 20, 256, 32L << 20, 1L << 20, null, 6);
    }

    /**
     * A copy with other election and heartbeat timeouts. The lease is half the election timeout, but leaves at least
     * one tick below it for a driver that runs a tick late (none with 2 ticks); the replication timeout is two
     * heartbeats.
     */
    public RaftConfig withTimeouts(int electionTicks, int heartbeat) {
        int lease = Math.max(0, Math.min(electionTicks / 2, electionTicks - 2));
        return new RaftConfig(id, electionTicks, heartbeat, preVote, checkQuorum, lease, maxEntriesPerMessage,
            maxBytesPerMessage, maxInflightMessages, maxInflightBytes, maxApplyBytes, preferredLeader, 2 * heartbeat);
    }

    /** A copy with another preferred leader. */
    public RaftConfig withPreferredLeader(String preferred) {
        return new RaftConfig(id, electionTimeoutTicks, heartbeatTicks, preVote, checkQuorum, leaseTicks,
            maxEntriesPerMessage, maxBytesPerMessage, maxInflightMessages, maxInflightBytes, maxApplyBytes, preferred,
            replicationTimeoutTicks);
    }

    /** A copy with other flow-control limits. */
    public RaftConfig withFlowControl(int entriesPerMessage, long bytesPerMessage, int inflightMessages,
                                      long inflightBytes) {
        return new RaftConfig(id, electionTimeoutTicks, heartbeatTicks, preVote, checkQuorum, leaseTicks,
            entriesPerMessage, bytesPerMessage, inflightMessages, inflightBytes, maxApplyBytes, preferredLeader,
            replicationTimeoutTicks);
    }

    /** A copy with another bound on the bytes of committed entries one Ready applies. */
    public RaftConfig withMaxApplyBytes(long bytes) {
        return new RaftConfig(id, electionTimeoutTicks, heartbeatTicks, preVote, checkQuorum, leaseTicks,
            maxEntriesPerMessage, maxBytesPerMessage, maxInflightMessages, maxInflightBytes, bytes, preferredLeader,
            replicationTimeoutTicks);
    }

    /** A copy with pre-vote and check-quorum switched. */
    public RaftConfig withElectionSafety(boolean usePreVote, boolean useCheckQuorum) {
        return new RaftConfig(id, electionTimeoutTicks, heartbeatTicks, usePreVote, useCheckQuorum, leaseTicks,
            maxEntriesPerMessage, maxBytesPerMessage, maxInflightMessages, maxInflightBytes, maxApplyBytes,
            preferredLeader, replicationTimeoutTicks);
    }
}
