package dev.dledger.raft.server;

import dev.dledger.raft.core.HardState;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The counts of one {@link RaftGroupNode} since it started: elections it began, snapshot transfers it started,
 * snapshots it installed.
 *
 * <p>Contract: the counting methods run on the driver thread; {@link #snapshot()} from any thread.
 */
final class NodeCounters {

    private final String id;
    private final AtomicLong electionsStarted = new AtomicLong();
    private final AtomicLong snapshotsSent = new AtomicLong();
    private final AtomicLong snapshotsInstalled = new AtomicLong();
    /** The last term this node voted for itself in; driver thread only. */
    private long electionTerm;

    /**
     * @param id        this node's id
     * @param startTerm the term on disk at start: a vote for itself in it was counted before
     */
    NodeCounters(String id, long startTerm) {
        this.id = id;
        this.electionTerm = startTerm;
    }

    /**
     * A term and vote to be saved: a candidate persists its new term with its vote for itself first (Raft section
     * 5.2), so each such save is one election.
     */
    void hardStateSaved(HardState hs) {
        if (id.equals(hs.votedFor()) && hs.term() > electionTerm) {
            electionTerm = hs.term();
            electionsStarted.incrementAndGet();
        }
    }

    void snapshotSent() {
        snapshotsSent.incrementAndGet();
    }

    void snapshotInstalled() {
        snapshotsInstalled.incrementAndGet();
    }

    /** The counts now. */
    RaftGroupNode.Counters snapshot() {
        return new RaftGroupNode.Counters(electionsStarted.get(), snapshotsSent.get(), snapshotsInstalled.get());
    }
}
