package dev.dledger.raft.sim;

import dev.dledger.raft.core.AppendEntriesResponse;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.InstallSnapshotResponse;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.RaftNode;
import dev.dledger.raft.core.ReadState;
import dev.dledger.raft.core.Ready;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.core.VoteRequest;
import dev.dledger.raft.core.VoteResponse;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Checks the safety properties of Raft on a simulated group, incrementally at each step of the drivers (as a
 * {@link NodeObserver}) and after every event ({@link #afterEvent}). It also plays the clients: it learns of accepted
 * proposals and issued reads, decides when a proposal is acknowledged, and checks that nothing acknowledged is lost
 * and that reads are linearizable. Each broken property throws an {@link InvariantViolation} named as below.
 *
 * <ul>
 *   <li>{@code election-safety}: at most one leader per term.</li>
 *   <li>{@code single-vote}, {@code term-monotonic}: a node never votes twice in a term, its term never decreases.</li>
 *   <li>{@code log-matching}: two entries with the same index and term are identical and follow the same term (so,
 *   by induction, the same prefix); also checked pairwise on whole logs by {@link #fullCheck}.</li>
 *   <li>{@code leader-completeness}: a new leader of term T holds every entry known committed in a term below T
 *   (or its snapshot covers it).</li>
 *   <li>{@code committed-truncated}, {@code committed-discarded}, {@code committed-mismatch}: an entry at or below a
 *   node's commit index never changes or disappears, and equals the group's committed entry there. Across a crash the
 *   node keeps what it knew committed as far as its durable log holds the committed entries.</li>
 *   <li>{@code commit-monotonic}, {@code commit-below-snapshot}, {@code commit-beyond-log}: within a lifetime the
 *   commit index never decreases; it is never below the snapshot nor beyond the log.</li>
 *   <li>{@code applied-le-committed}, {@code state-machine-safety}: applied never exceeds committed; every node
 *   applies the same entry at each index and ends with the same state-machine hash (snapshots included).</li>
 *   <li>{@code acked-lost}: every proposal acknowledged to a client is in every later leader's log.</li>
 *   <li>{@code read-linearizability}: a read confirmed at index I has I at least the highest index acknowledged to a
 *   client before the read was issued.</li>
 *   <li>{@code persist-before-send}: a vote, a vote request, an append or snapshot acknowledgement leaves a node only
 *   when the term, vote and entries it depends on are durable.</li>
 * </ul>
 *
 * <p>Not thread-safe: it runs on the simulation thread.
 */
public final class InvariantChecker implements NodeObserver {

    private record IndexTerm(long index, long term) {
    }

    private record Known(Entry entry, long prevTerm, String firstSeenOn) {
    }

    private record Pending(long term, byte[] data) {
    }

    private record Acked(Entry entry, long ackTerm, String node) {
    }

    private record ReadRequest(String node, long minIndex, boolean lease, long issuedAt) {
    }

    /** What the checker remembers of one node. */
    private static final class Track {
        long lifetimeCommit = -1;
        long maxCommitEver = -1;
        long checkedCommit = -1;
        long leaderTermChecked = -1;
        final TreeMap<Long, Pending> pending = new TreeMap<>();
    }

    private final SimulatedClock clock;
    private final Map<Long, String> leaderOfTerm = new HashMap<>();
    private final Map<IndexTerm, Known> known = new HashMap<>();
    private final List<Entry> committed = new ArrayList<>();
    private final List<Long> committedObservedTerm = new ArrayList<>();
    private final List<Long> hashAt = new ArrayList<>();
    private final Map<String, Track> tracks = new TreeMap<>();
    private final TreeMap<Long, Acked> acked = new TreeMap<>();
    private final Map<Long, ReadRequest> reads = new HashMap<>();
    private long maxAckedIndex = -1;
    private long readsServed;
    private long leaseReadsServed;
    private long acks;

    /** A checker for one run, reading the simulated time for its reports. */
    public InvariantChecker(SimulatedClock clock) {
        this.clock = clock;
    }

    private Track track(String node) {
        return tracks.computeIfAbsent(node, k -> new Track());
    }

    private static InvariantViolation violation(String invariant, String detail) {
        return new InvariantViolation(invariant, detail);
    }

    // ----- client side ------------------------------------------------------------------------------------------

    /**
     * A proposal of {@code payloads} was accepted by {@code node} at {@code index} (first entry) in {@code term}. It
     * is acknowledged to the client once the same incarnation of the node applies those entries with that term.
     */
    public void onProposalAccepted(SimulatedNode node, long index, long term, List<byte[]> payloads) {
        Track t = track(node.id());
        for (int i = 0; i < payloads.size(); i++) {
            t.pending.put(index + i, new Pending(term, payloads.get(i)));
        }
    }

    /** A read {@code requestId} was registered at {@code node}; its confirmation must cover every ack so far. */
    public void onReadIssued(SimulatedNode node, long requestId, boolean lease) {
        reads.put(requestId, new ReadRequest(node.id(), maxAckedIndex, lease, clock.now()));
    }

    /** Whether the proposal at {@code index} was acknowledged. */
    public boolean isAcked(long index, long term) {
        Acked a = acked.get(index);
        return a != null && a.entry().term() == term;
    }

    // ----- driver hooks -------------------------------------------------------------------------------------------

    @Override
    public void onReady(SimulatedNode node, Ready rd) {
        String id = node.id();
        Track t = track(id);
        SimulatedLogStore log = node.log();
        HardState prev = node.meta().hardState();
        HardState hs = rd.hardState();
        if (hs != null) {
            if (hs.term() < prev.term()) {
                throw violation("term-monotonic", id + ": term goes from " + prev.term() + " to " + hs.term());
            }
            if (hs.term() == prev.term() && prev.votedFor() != null && !prev.votedFor().equals(hs.votedFor())) {
                throw violation("single-vote", id + ": vote in term " + hs.term() + " changes from "
                    + prev.votedFor() + " to " + hs.votedFor());
            }
        }
        if (rd.role() == Role.LEADER) {
            checkLeader(id, node.raft().term());
        }
        SnapshotMeta snap = rd.snapshot();
        if (snap != null) {
            if (snap.index() < node.stateMachine().appliedIndex()) {
                throw violation("state-machine-safety", id + ": installing snapshot " + snap.index() + "@"
                    + snap.term() + " would roll the state machine back from applied index "
                    + node.stateMachine().appliedIndex());
            }
            long lost = Math.min(t.lifetimeCommit, log.lastIndex());
            if (lost > snap.index()) {
                throw violation("committed-discarded", id + ": installing snapshot " + snap.index() + "@"
                    + snap.term() + " discards entries up to " + lost + " that it knows committed");
            }
        }
        long from = rd.truncateFrom();
        if (from >= 0) {
            long last = snap != null ? snap.index() : log.lastIndex();
            long first = snap != null ? snap.index() + 1 : log.firstIndex();
            if (from < first) {
                throw violation("ready-contract", id + ": truncation from " + from + " before the first index "
                    + first);
            }
            if (from <= last && from <= t.maxCommitEver) {
                throw violation("committed-truncated", id + ": truncation from " + from + " removes entries up to "
                    + last + " but the node knew index " + t.maxCommitEver + " committed");
            }
        }
    }

    @Override
    public void onPersisted(SimulatedNode node, Ready rd) {
        SimulatedLogStore log = node.log();
        Track t = track(node.id());
        for (Entry e : rd.entries()) {
            long prevTerm = log.term(e.index() - 1);
            IndexTerm key = new IndexTerm(e.index(), e.term());
            Known k = known.get(key);
            if (k == null) {
                known.put(key, new Known(e, prevTerm, node.id()));
            } else if (!k.entry().equals(e) || k.prevTerm() != prevTerm) {
                throw violation("log-matching", node.id() + " appended " + e + " after term " + prevTerm + " but "
                    + k.firstSeenOn() + " holds " + k.entry() + " after term " + k.prevTerm());
            }
            if (e.index() <= t.maxCommitEver && e.index() < committed.size()
                && !committed.get((int) e.index()).equals(e)) {
                throw violation("committed-mismatch", node.id() + " appended " + e + " at an index it knew "
                    + "committed, where the group committed " + committed.get((int) e.index()));
            }
        }
    }

    @Override
    public void onSnapshotInstalled(SimulatedNode node, SnapshotMeta meta, byte[] data) {
        checkSnapshotState(node.id(), "installed", meta, data);
    }

    @Override
    public void onRestart(SimulatedNode node) {
        Track t = track(node.id());
        t.lifetimeCommit = -1;
        t.checkedCommit = -1;
        t.leaderTermChecked = -1;
        t.pending.clear();
        SnapshotMeta snap = node.log().snapshot();
        if (snap.index() >= 0) {
            checkSnapshotState(node.id(), "restored", snap, node.snapshots().data());
        }
    }

    @Override
    public void onCrash(SimulatedNode node, String why) {
        Track t = track(node.id());
        t.pending.clear();
        // What a node knew committed survives a crash only as far as its durable log holds those committed entries: a
        // driver that syncs in the background may lose committed entries it had not synced, and the older entries
        // under them (their truncation was not synced either) are not committed and may be truncated again.
        SimulatedLogStore log = node.log();
        long keep = Math.min(t.maxCommitEver, log.lastIndex());
        while (keep >= log.firstIndex() && !committed.get((int) keep).equals(log.entry(keep))) {
            keep--;
        }
        t.maxCommitEver = Math.max(keep, Math.min(t.maxCommitEver, log.snapshot().index()));
    }

    private void checkSnapshotState(String node, String how, SnapshotMeta meta, byte[] data) {
        long idx = HashStateMachine.snapshotIndex(data);
        if (idx != meta.index()) {
            throw violation("state-machine-safety", node + " " + how + " snapshot " + meta + " whose bytes hold "
                + "state at index " + idx);
        }
        if (idx >= hashAt.size()) {
            throw violation("state-machine-safety", node + " " + how + " snapshot at " + idx
                + " beyond anything any node applied (" + (hashAt.size() - 1) + ")");
        }
        if (hashAt.get((int) idx) != HashStateMachine.snapshotHash(data)) {
            throw violation("state-machine-safety", node + " " + how + " snapshot at " + idx
                + " whose state differs from the committed prefix");
        }
        if (idx < committed.size() && committed.get((int) idx).term() != meta.term()) {
            throw violation("state-machine-safety", node + " " + how + " snapshot " + meta.index() + "@"
                + meta.term() + " but the committed entry there is " + committed.get((int) idx));
        }
    }

    @Override
    public void onSend(SimulatedNode node, Message m) {
        HardState durable = node.meta().durableHardState();
        SimulatedLogStore log = node.log();
        String id = node.id();
        boolean echoesOtherTerm = (m instanceof VoteRequest v && v.preVote())
            || (m instanceof VoteResponse r && r.preVote());
        if (!echoesOtherTerm && m.term() > durable.term()) {
            throw violation("persist-before-send", id + " sends " + m + " in term " + m.term()
                + " but its durable term is " + durable.term());
        }
        if (m instanceof VoteRequest v && !v.preVote()
            && (durable.term() != v.term() || !id.equals(durable.votedFor()))) {
            throw violation("persist-before-send", id + " asks for votes with " + m + " before its own vote is "
                + "durable: " + durable);
        }
        if (m instanceof VoteResponse r && !r.preVote() && r.granted()
            && (durable.term() != r.term() || !r.to().equals(durable.votedFor()))) {
            throw violation("persist-before-send", id + " grants " + m + " but its durable vote is " + durable);
        }
        if (m instanceof AppendEntriesResponse r && r.success() && r.matchIndex() > log.durableLastIndex()) {
            throw violation("persist-before-send", id + " acknowledges " + m + " but its durable log ends at "
                + log.durableLastIndex());
        }
        if (m instanceof InstallSnapshotResponse r && r.matchIndex() > log.durableLastIndex()) {
            throw violation("persist-before-send", id + " acknowledges " + m + " but its durable log ends at "
                + log.durableLastIndex());
        }
    }

    @Override
    public void onApplied(SimulatedNode node, Entry e) {
        String id = node.id();
        Entry inLog = node.log().entry(e.index());
        if (!e.equals(inLog)) {
            throw violation("ready-contract", id + " was told to apply " + e + " but its log holds " + inLog);
        }
        int i = (int) e.index();
        if (i < committed.size()) {
            if (!committed.get(i).equals(e)) {
                throw violation("state-machine-safety", id + " applies " + e + " where the group committed "
                    + committed.get(i));
            }
        } else if (i == committed.size()) {
            committed.add(e);
            committedObservedTerm.add(node.raft().term());
        } else {
            throw violation("harness", id + " applies " + e + " but only " + committed.size()
                + " committed entries are known");
        }
        long h = node.stateMachine().hash();
        if (i < hashAt.size()) {
            if (hashAt.get(i) != h) {
                throw violation("state-machine-safety", id + " state after applying " + e
                    + " differs from the state other nodes reached there");
            }
        } else if (i == hashAt.size()) {
            hashAt.add(h);
        } else {
            throw violation("harness", id + " applies " + e + " but the state is known only up to "
                + (hashAt.size() - 1));
        }
        Track t = track(id);
        while (!t.pending.isEmpty() && t.pending.firstKey() < e.index()) {
            t.pending.pollFirstEntry();
        }
        Pending p = t.pending.get(e.index());
        if (p != null) {
            t.pending.remove(e.index());
            if (p.term() == e.term()) {
                if (!Arrays.equals(p.data(), e.data())) {
                    throw violation("log-matching", id + " accepted a proposal at " + e.index() + "@" + e.term()
                        + " but applies a different payload there");
                }
                acked.put(e.index(), new Acked(e, node.raft().term(), id));
                maxAckedIndex = Math.max(maxAckedIndex, e.index());
                acks++;
            }
        }
    }

    @Override
    public void onReadState(SimulatedNode node, ReadState rs) {
        ReadRequest r = reads.get(rs.requestId());
        if (r == null || !r.node().equals(node.id())) {
            throw violation("read-linearizability", node.id() + " confirms read " + rs.requestId()
                + " that was issued " + (r == null ? "nowhere" : "at " + r.node()));
        }
        if (rs.index() < r.minIndex()) {
            throw violation("read-linearizability", node.id() + " confirms " + (r.lease() ? "lease" : "read-index")
                + " read " + rs.requestId() + " (issued at t=" + r.issuedAt() + ") at index " + rs.index()
                + " but index " + r.minIndex() + " was acknowledged to a client before it was issued");
        }
    }

    @Override
    public void onReadServed(SimulatedNode node, ReadState rs) {
        ReadRequest r = reads.get(rs.requestId());
        if (node.stateMachine().appliedIndex() < rs.index()) {
            throw violation("read-linearizability", node.id() + " serves read " + rs + " at applied index "
                + node.stateMachine().appliedIndex());
        }
        readsServed++;
        if (r != null && r.lease()) {
            leaseReadsServed++;
        }
    }

    // ----- after every event ---------------------------------------------------------------------------------------

    /** Checks the per-event invariants over every running node. */
    public void afterEvent(Collection<SimulatedNode> nodes) {
        for (SimulatedNode n : nodes) {
            RaftNode raft = n.raft();
            if (raft == null) {
                continue;
            }
            String id = n.id();
            Track t = track(id);
            SimulatedLogStore log = n.log();
            long c = raft.commitIndex();
            if (c < t.lifetimeCommit) {
                throw violation("commit-monotonic", id + ": commit index goes back from " + t.lifetimeCommit + " to "
                    + c);
            }
            if (c < log.snapshot().index()) {
                throw violation("commit-below-snapshot", id + ": commit index " + c + " below its snapshot at "
                    + log.snapshot().index());
            }
            if (c > log.lastIndex()) {
                throw violation("commit-beyond-log", id + ": commit index " + c + " beyond its last index "
                    + log.lastIndex());
            }
            long applied = n.stateMachine().appliedIndex();
            if (applied > c || raft.appliedIndex() > c) {
                throw violation("applied-le-committed", id + ": applied " + applied + " (core says "
                    + raft.appliedIndex() + ") beyond commit index " + c);
            }
            if (c > t.checkedCommit) {
                recordCommitted(n, Math.max(t.checkedCommit + 1, log.firstIndex()), c);
                t.checkedCommit = c;
            }
            t.lifetimeCommit = c;
            t.maxCommitEver = Math.max(t.maxCommitEver, c);
            if (raft.role() == Role.LEADER) {
                checkLeader(id, raft.term());
                if (t.leaderTermChecked != raft.term()) {
                    checkLeaderCompleteness(n, raft.term());
                    t.leaderTermChecked = raft.term();
                }
            }
        }
    }

    private void checkLeader(String id, long term) {
        String other = leaderOfTerm.putIfAbsent(term, id);
        if (other != null && !other.equals(id)) {
            throw violation("election-safety", id + " and " + other + " are both leaders of term " + term);
        }
    }

    private void recordCommitted(SimulatedNode n, long from, long to) {
        SimulatedLogStore log = n.log();
        long term = n.raft().term();
        for (long i = from; i <= to; i++) {
            Entry e = log.entry(i);
            if (e == null) {
                throw violation("commit-beyond-log", n.id() + ": commit index " + to + " covers " + i
                    + " which its log " + log + " does not hold");
            }
            if (i < committed.size()) {
                if (!committed.get((int) i).equals(e)) {
                    throw violation("committed-mismatch", n.id() + " holds " + e + " at or below its commit index "
                        + to + " where the group committed " + committed.get((int) i));
                }
            } else if (i == committed.size()) {
                committed.add(e);
                committedObservedTerm.add(term);
            } else {
                throw violation("harness", n.id() + ": commit " + to + " leaves a gap after "
                    + (committed.size() - 1) + " in the known committed entries");
            }
        }
    }

    private void checkLeaderCompleteness(SimulatedNode n, long term) {
        SimulatedLogStore log = n.log();
        for (long i = log.firstIndex(); i < committed.size(); i++) {
            if (committedObservedTerm.get((int) i) >= term) {
                continue;
            }
            Entry mine = log.entry(i);
            if (!committed.get((int) i).equals(mine)) {
                throw violation("leader-completeness", n.id() + " leads term " + term + " without the entry "
                    + committed.get((int) i) + " committed by term " + committedObservedTerm.get((int) i)
                    + "; its log holds " + mine + ", " + log);
            }
        }
        for (Acked a : acked.tailMap(log.firstIndex()).values()) {
            if (a.ackTerm() >= term) {
                continue;
            }
            Entry mine = log.entry(a.entry().index());
            if (!a.entry().equals(mine)) {
                throw violation("acked-lost", n.id() + " leads term " + term + " without " + a.entry()
                    + " acknowledged by " + a.node() + " in term " + a.ackTerm() + "; its log holds " + mine);
            }
        }
    }

    /**
     * Checks log matching pairwise over whole logs (running or down nodes alike) and that every acknowledged entry is
     * the committed one. Costs O(nodes^2 * log length): run it now and then and at the end.
     */
    public void fullCheck(Collection<SimulatedNode> nodes) {
        List<SimulatedNode> list = new ArrayList<>(nodes);
        for (int a = 0; a < list.size(); a++) {
            for (int b = a + 1; b < list.size(); b++) {
                checkPair(list.get(a), list.get(b));
            }
        }
        for (Acked a : acked.values()) {
            int i = (int) a.entry().index();
            if (i >= committed.size() || !committed.get(i).equals(a.entry())) {
                throw violation("acked-lost", a.entry() + " acknowledged by " + a.node() + " is not the committed "
                    + "entry " + (i < committed.size() ? committed.get(i) : "(none)"));
            }
        }
    }

    private static void checkPair(SimulatedNode x, SimulatedNode y) {
        SimulatedLogStore a = x.log();
        SimulatedLogStore b = y.log();
        long lo = Math.max(a.firstIndex(), b.firstIndex());
        long hi = Math.min(a.lastIndex(), b.lastIndex());
        long match = -1;
        for (long i = hi; i >= lo; i--) {
            if (a.term(i) == b.term(i)) {
                match = i;
                break;
            }
        }
        for (long i = lo; i <= match; i++) {
            if (!Objects.equals(a.entry(i), b.entry(i))) {
                throw violation("log-matching", x.id() + " and " + y.id() + " agree on the entry at " + match
                    + " but differ at " + i + ": " + a.entry(i) + " vs " + b.entry(i));
            }
        }
    }

    // ----- figures ----------------------------------------------------------------------------------------------------

    /** The highest index acknowledged to a client, or -1. */
    public long maxAckedIndex() {
        return maxAckedIndex;
    }

    /** Proposals acknowledged to clients. */
    public long ackCount() {
        return acks;
    }

    /** Reads served (both kinds). */
    public long readsServed() {
        return readsServed;
    }

    /** Lease reads served. */
    public long leaseReadsServed() {
        return leaseReadsServed;
    }

    /** Entries known committed. */
    public int committedCount() {
        return committed.size();
    }

    /** The number of distinct terms that had a leader. */
    public int leaderTerms() {
        return leaderOfTerm.size();
    }
}
