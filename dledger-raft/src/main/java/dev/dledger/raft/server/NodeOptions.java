package dev.dledger.raft.server;

import dev.dledger.raft.core.RaftConfig;
import java.util.Objects;

/**
 * The settings of one node's driver.
 *
 * @param group             the group name
 * @param raft              the protocol settings, in ticks (its id is the node's id)
 * @param tickMs            milliseconds per tick. Default 10
 * @param flush             when log writes become durable. Default {@link FlushMode#ASYNC}
 * @param appendTimeoutMs   an append not committed within this time completes with TIMEOUT. Default 3000
 * @param maxPendingAppends appends waiting for commit beyond this count are refused with OVERLOADED. Default 10000
 * @param maxQueuedInputs   capacity of the driver's input queue; messages beyond it are dropped and appends
 *                          refused with OVERLOADED. Default 65536
 * @param snapshotThreshold take a snapshot after this many applied entries (0 = never). Default 0
 * @param snapshotChunkBytes a snapshot goes to a follower in chunks of this many bytes. Default 1 MiB
 * @param randomSeed        seed of the election jitter
 */
public record NodeOptions(String group, RaftConfig raft, int tickMs, FlushMode flush, long appendTimeoutMs,
                          int maxPendingAppends, int maxQueuedInputs, long snapshotThreshold, int snapshotChunkBytes,
                          long randomSeed) {

    public NodeOptions {
        Objects.requireNonNull(group, "group");
        Objects.requireNonNull(raft, "raft");
        Objects.requireNonNull(flush, "flush");
        if (tickMs < 1 || appendTimeoutMs < 1 || maxPendingAppends < 1 || maxQueuedInputs < 1
            || snapshotThreshold < 0 || snapshotChunkBytes < 1) {
            throw new IllegalArgumentException("bad node options: " + tickMs + " ms tick, " + appendTimeoutMs
                + " ms timeout, " + maxPendingAppends + " pending, " + maxQueuedInputs + " queued, "
                + snapshotThreshold + " snapshot threshold");
        }
        if (raft.leaseTicks() > 0 && raft.leaseTicks() + 1 >= raft.electionTimeoutTicks()) {
            // The driver serves a lease read only while leaseTicks plus its late ticks stay below the election
            // timeout (issue 16, B4); a lease that leaves no room for one late tick is a setting that cannot work.
            throw new IllegalArgumentException("leaseTicks " + raft.leaseTicks() + " leaves no tick below "
                + "electionTimeoutTicks " + raft.electionTimeoutTicks() + " for a late tick of the driver: use at most "
                + (raft.electionTimeoutTicks() - 2) + ", or 0 for no lease reads");
        }
    }

    /** The defaults listed above. */
    public static NodeOptions defaults(String group, String id) {
        return new NodeOptions(group, RaftConfig.defaults(id), 10, FlushMode.ASYNC, 3000, 10_000, 65_536, 0, 1 << 20,
            id.hashCode() * 31L + System.nanoTime());
    }

    /** A copy with another flush mode. */
    public NodeOptions withFlush(FlushMode mode) {
        return new NodeOptions(group, raft, tickMs, mode, appendTimeoutMs, maxPendingAppends, maxQueuedInputs,
            snapshotThreshold, snapshotChunkBytes, randomSeed);
    }

    /** A copy with other protocol settings. */
    public NodeOptions withRaft(RaftConfig config) {
        return new NodeOptions(group, config, tickMs, flush, appendTimeoutMs, maxPendingAppends, maxQueuedInputs,
            snapshotThreshold, snapshotChunkBytes, randomSeed);
    }

    /** A copy with another snapshot chunk size. */
    public NodeOptions withSnapshotChunkBytes(int bytes) {
        return new NodeOptions(group, raft, tickMs, flush, appendTimeoutMs, maxPendingAppends, maxQueuedInputs,
            snapshotThreshold, bytes, randomSeed);
    }

    /** A copy with another snapshot threshold. */
    public NodeOptions withSnapshotThreshold(long entries) {
        return new NodeOptions(group, raft, tickMs, flush, appendTimeoutMs, maxPendingAppends, maxQueuedInputs,
            entries, snapshotChunkBytes, randomSeed);
    }
}
