package dev.dledger.raft.sim;

import dev.dledger.raft.core.AppendEntriesRequest;
import dev.dledger.raft.core.AppendEntriesResponse;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.InstallSnapshotResponse;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.server.NodeStatus;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.core.VoteRequest;
import dev.dledger.raft.core.VoteResponse;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Checks the safety properties of Raft on a simulated group, incrementally at each step of the production drivers (as a
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
 *   <li>{@code applied-uncommitted}: an entry is applied only when a majority holds it durably (in its log with its
 *   term, or under a durable snapshot): the driver never applies beyond what is committed.</li>
 *   <li>{@code exactly-once}: a client request (its payload id) is committed at one index only, however often it was
 *   retried; {@code acked-mismatch}: an append acknowledged OK names the index and term where its payload committed.
 *   </li>
 *   <li>{@code snapshot-state}: a state machine restored from a snapshot (at start or install) holds the committed
 *   state at the index the log's snapshot names.</li>
 * </ul>
 *
 * <p>Not thread-safe: it runs on the simulation thread.
 */
public final class InvariantChecker implements NodeObserver {

    private record IndexTerm(long index, long term) {
    }

    private record Known(Entry entry, long prevTerm, String firstSeenOn) {
    }

    private record Acked(Entry entry, long ackTerm, String node) {
    }

    private record ReadRequest(String node, long minIndex, boolean lease, long issuedAt) {
    }

    /** The first violation found, also when the driver caught it (a hook throws inside the driver's pass). */
    private InvariantViolation first;
    /** Payload id to the index where the group committed it (exactly-once). */
    private final Map<Long, Long> committedIds = new HashMap<>();
    /** The smallest voter count of any configuration seen (the least majority a commit may have had). */
    private int minVoters = Integer.MAX_VALUE;
    /** Every host of the run, for the majority check on applied entries. */
    private Collection<SimulatedHost> hosts = List.of();

    /** What the checker remembers of one node. */
    private static final class Track {
        long lifetimeCommit = -1;
        long maxCommitEver = -1;
        long checkedCommit = -1;
        long leaderTermChecked = -1;
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
    /** The witness of a witness run (issue 19), or null. */
    private String witness;
    /**
     * Hosts whose state machine is not compared: the witness, whose state saw entries without the bodies it dropped,
     * until a data member's snapshot replaced its log and state (its promotion, issue 19).
     */
    private final java.util.Set<String> stateUnchecked = new java.util.HashSet<>();
    private long refills;
    /** Per host: the log it was read from ({@link #latestMembership}) and its last configuration. */
    private final Map<String, Map.Entry<String, Membership>> configSeen = new HashMap<>();
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

    private InvariantViolation violation(String invariant, String detail) {
        InvariantViolation v = new InvariantViolation(invariant, detail);
        if (first == null) {
            first = v;
        }
        return v;
    }

    /** Names the run's witness (null for none): its state machine is not compared, its dropped bodies are headers. */
    public void setWitness(String id) {
        witness = id;
        if (id != null) {
            stateUnchecked.add(id);
        }
    }

    /** Witness promotions whose snapshot replaced the witness's log (issue 19). */
    public long refills() {
        return refills;
    }

    /** The configuration of the last CONFIG entry of {@code log}, or of its snapshot; read again when the log changed. */
    private Membership latestMembership(String id, SimulatedLogStore log) {
        String key = log.firstIndex() + "/" + log.lastIndex() + "@" + log.term(log.lastIndex());
        Map.Entry<String, Membership> cached = configSeen.get(id);
        if (cached != null && cached.getKey().equals(key)) {
            return cached.getValue();
        }
        Membership m = log.snapshot().membership();
        for (long i = log.lastIndex(); i >= log.firstIndex(); i--) {
            Entry e = log.entry(i);
            if (e != null && e.type() == EntryType.CONFIG) {
                m = Membership.decode(e.data());
                break;
            }
        }
        configSeen.put(id, Map.entry(key, m));
        return m;
    }

    /** Same index, term, type and request id: all a witness keeps of an entry whose body it dropped. */
    private static boolean sameHeader(Entry a, Entry b) {
        return a != null && b != null && a.index() == b.index() && a.term() == b.term() && a.type() == b.type()
            && Objects.equals(a.requestId(), b.requestId());
    }

    private static boolean dropped(SimulatedLogStore log, long index) {
        Entry e = log.entry(index);
        return index <= log.droppedBodiesThrough() && e != null && e.type() == EntryType.NORMAL;
    }

    /** Whether {@code log} holds {@code expected} at {@code index}: in full, or its header where the body was dropped. */
    private static boolean holds(SimulatedLogStore log, long index, Entry expected) {
        Entry mine = log.entry(index);
        if (dropped(log, index)) {
            return sameHeader(mine, expected);
        }
        return Objects.equals(expected, mine);
    }

    /**
     * The full entry {@code e} read on {@code node}: itself, or, where the node dropped its body, the same entry from a
     * host that still has the body. None means a witness was the sole holder of a body it dropped.
     */
    private Entry fullBody(SimulatedHost node, Entry e) {
        if (!dropped(node.log(), e.index())) {
            return e;
        }
        for (SimulatedHost h : hosts) {
            Entry other = h.log().entry(e.index());
            if (!dropped(h.log(), e.index()) && sameHeader(other, e)) {
                return other;
            }
        }
        throw violation("witness-sole-holder", node.id() + " dropped the body of " + e
            + " and no other node holds it");
    }

    /**
     * The drop rule (issue 19): a witness drops the body of an entry only when every data member of the group's
     * committed configuration ({@code voters}, as the simulation saw it applied) holds that entry durably. A witness
     * the committed configuration no longer names is judged by no rule here: its permission was computed over the
     * members of the configuration that still named it, members added since may not hold what it drops, and nothing
     * of the group depends on its log any more (the sole-holder check still applies to it).
     */
    public void onDropBodies(SimulatedHost host, long index, Collection<String> voters) {
        if (!voters.contains(host.id())) {
            return;
        }
        SimulatedLogStore log = host.log();
        for (long i = Math.max(log.droppedBodiesThrough() + 1, log.firstIndex()); i <= Math.min(index, log.lastIndex());
             i++) {
            Entry e = log.entry(i);
            if (e.type() != EntryType.NORMAL) {
                continue;
            }
            for (String v : voters) {
                if (v.equals(host.id()) || v.equals(witness)) {
                    continue;
                }
                SimulatedHost d = null;
                for (SimulatedHost h : hosts) {
                    if (h.id().equals(v)) {
                        d = h;
                    }
                }
                if (d != null && (d.isShutDown()
                    || (d.log().durableSnapshot().index() < 0 && d.log().durableLastIndex() < 0))) {
                    // Lost for good, or a new member that has received nothing yet: it will get the log from a data
                    // member that leads, never from this witness.
                    continue;
                }
                if (d == null || (d.log().durableSnapshot().index() < i && d.log().durableTerm(i) != e.term())) {
                    throw violation("witness-drop-rule", host.id() + " drops the body of " + e + " (through " + index
                        + ") which data member " + v + " does not hold durably"
                        + (d == null ? "" : ": " + d.log()));
                }
            }
        }
    }

    /**
     * The voters of the newest configuration the group committed: the newest CONFIG entry among the committed entries
     * this checker knows (every commit a node reports is known at once), or {@code initial} while none is.
     */
    public Collection<String> committedVoters(Collection<String> initial) {
        for (int i = committed.size() - 1; i >= 0; i--) {
            Entry e = committed.get(i);
            if (e.type() == EntryType.CONFIG) {
                return Membership.decode(e.data()).voters();
            }
        }
        return initial;
    }

    /** The first violation found so far, or null. */
    public InvariantViolation firstViolation() {
        return first;
    }

    /** The run's hosts (for the majority check on applied entries) and the voters the group starts with. */
    public void setHosts(Collection<SimulatedHost> all, int initialVoters) {
        this.hosts = all;
        this.minVoters = initialVoters;
    }

    // ----- client side ------------------------------------------------------------------------------------------

    /**
     * An append of {@code payloads} was acknowledged OK by {@code host} at {@code index} (first entry) in {@code term}:
     * each payload must be the committed entry there.
     */
    public void onAcked(SimulatedHost host, long index, long term, List<byte[]> payloads) {
        for (int k = 0; k < payloads.size(); k++) {
            long i = index + k;
            Entry e = i < committed.size() ? committed.get((int) i) : null;
            if (e == null || e.term() != term || !Arrays.equals(e.data(), payloads.get(k))) {
                throw violation("acked-mismatch", host.id() + " acknowledged an append at " + index + "@" + term
                    + " (entry " + k + ") but the group committed " + (e == null ? "nothing yet" : e.toString())
                    + " there" + (e != null && e.term() == term ? " with another payload" : ""));
            }
            acked.put(i, new Acked(e, host.meta().hardState().term(), host.id()));
            maxAckedIndex = Math.max(maxAckedIndex, i);
            acks++;
        }
    }

    /** A read {@code requestId} was issued at {@code host}; its answer must cover every ack so far. */
    public void onReadIssued(SimulatedHost host, long requestId, boolean lease) {
        reads.put(requestId, new ReadRequest(host.id(), maxAckedIndex, lease, clock.now()));
    }

    /**
     * Read {@code requestId} completed at {@code host} with read index {@code index}: the index and the state the
     * host serves from must cover every index acknowledged before the read was issued.
     */
    public void onReadDone(SimulatedHost host, long requestId, long index) {
        ReadRequest r = reads.remove(requestId);
        if (r == null || !r.node().equals(host.id())) {
            throw violation("read-linearizability", host.id() + " answers read " + requestId + " issued "
                + (r == null ? "nowhere" : "at " + r.node()));
        }
        long applied = host.stateMachine().appliedIndex();
        if (index < r.minIndex() || applied < r.minIndex() || applied < index) {
            throw violation("read-linearizability", host.id() + " serves " + (r.lease() ? "lease" : "read-index")
                + " read " + requestId + " (issued at t=" + r.issuedAt() + ") at index " + index + " from applied "
                + applied + " but index " + r.minIndex() + " was acknowledged to a client before it was issued");
        }
        readsServed++;
        if (r.lease()) {
            leaseReadsServed++;
        }
    }

    /** A read failed or timed out: nothing to check. */
    public void onReadFailed(long requestId) {
        reads.remove(requestId);
    }

    /** Whether the proposal at {@code index} was acknowledged. */
    public boolean isAcked(long index, long term) {
        Acked a = acked.get(index);
        return a != null && a.entry().term() == term;
    }

    // ----- driver hooks -------------------------------------------------------------------------------------------

    @Override
    public void onHardState(SimulatedHost host, HardState hs) {
        String id = host.id();
        HardState prev = host.meta().hardState();
        if (hs.term() < prev.term()) {
            throw violation("term-monotonic", id + ": term goes from " + prev.term() + " to " + hs.term());
        }
        if (hs.term() == prev.term() && prev.votedFor() != null && !prev.votedFor().equals(hs.votedFor())) {
            throw violation("single-vote", id + ": vote in term " + hs.term() + " changes from " + prev.votedFor()
                + " to " + hs.votedFor());
        }
    }

    @Override
    public void onInstall(SimulatedHost host, SnapshotMeta snap) {
        String id = host.id();
        Track t = track(id);
        SimulatedLogStore log = host.log();
        if (log.droppedBodiesThrough() >= 0 && !snap.membership().isWitness(id)) {
            // A witness being promoted (issue 19): no voter now, its log and state are replaced by a data member's
            // snapshot, rolled back to it if need be. The snapshot must cover every body it dropped; from then on its
            // log and state are checked like any data member's (the restore that follows checks the snapshot's state).
            if (snap.index() < log.droppedBodiesThrough()) {
                throw violation("refill-covers-drops", id + ": snapshot " + snap.index() + "@" + snap.term()
                    + " replaces a log whose bodies through " + log.droppedBodiesThrough() + " were dropped");
            }
            stateUnchecked.remove(id);
            t.lifetimeCommit = snap.index();
            t.maxCommitEver = snap.index();
            t.checkedCommit = snap.index();
            refills++;
            return;
        }
        if (snap.index() < host.stateMachine().appliedIndex()) {
            throw violation("state-machine-safety", id + ": installing snapshot " + snap.index() + "@" + snap.term()
                + " would roll the state machine back from applied index " + host.stateMachine().appliedIndex());
        }
        long lost = Math.min(t.lifetimeCommit, log.lastIndex());
        if (lost > snap.index()) {
            throw violation("committed-discarded", id + ": installing snapshot " + snap.index() + "@" + snap.term()
                + " discards entries up to " + lost + " that it knows committed");
        }
    }

    @Override
    public void onTruncate(SimulatedHost host, long from) {
        String id = host.id();
        Track t = track(id);
        SimulatedLogStore log = host.log();
        if (from < log.firstIndex()) {
            throw violation("ready-contract", id + ": truncation from " + from + " before the first index "
                + log.firstIndex());
        }
        if (from <= log.lastIndex() && from <= t.maxCommitEver) {
            throw violation("committed-truncated", id + ": truncation from " + from + " removes entries up to "
                + log.lastIndex() + " but the node knew index " + t.maxCommitEver + " committed");
        }
    }

    @Override
    public void onAppend(SimulatedHost host, List<Entry> entries) {
        SimulatedLogStore log = host.log();
        Track t = track(host.id());
        long prevTerm = log.term(entries.get(0).index() - 1);
        for (Entry e : entries) {
            IndexTerm key = new IndexTerm(e.index(), e.term());
            Known k = known.get(key);
            if (k == null) {
                known.put(key, new Known(e, prevTerm, host.id()));
            } else if (!k.entry().equals(e) || k.prevTerm() != prevTerm) {
                throw violation("log-matching", host.id() + " appended " + e + " after term " + prevTerm + " but "
                    + k.firstSeenOn() + " holds " + k.entry() + " after term " + k.prevTerm());
            }
            if (e.index() <= t.maxCommitEver && e.index() < committed.size()
                && !committed.get((int) e.index()).equals(e)) {
                throw violation("committed-mismatch", host.id() + " appended " + e + " at an index it knew "
                    + "committed, where the group committed " + committed.get((int) e.index()));
            }
            if (e.type() == EntryType.CONFIG) {
                minVoters = Math.min(minVoters, Membership.decode(e.data()).voters().size());
            }
            prevTerm = e.term();
        }
    }

    @Override
    public void onRestored(SimulatedHost host, long index, byte[] stateBytes) {
        SnapshotMeta meta = host.log().snapshot();
        if (index != meta.index()) {
            throw violation("snapshot-state", host.id() + " restored its state machine as of " + index
                + " but its log's snapshot is " + meta.index() + "@" + meta.term());
        }
        checkSnapshotState(host.id(), "restored", meta, stateBytes);
    }

    @Override
    public void onRestart(SimulatedHost host) {
        Track t = track(host.id());
        t.lifetimeCommit = -1;
        t.checkedCommit = -1;
        t.leaderTermChecked = -1;
    }

    @Override
    public void onCrash(SimulatedHost node, String why) {
        Track t = track(node.id());
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
        if (stateUnchecked.contains(node)) {
            // A witness's own snapshots hold a state that saw dropped bodies; it never sends them (RaftNode).
            return;
        }
        long idx = HashStateMachine.snapshotIndex(data);
        if (idx != meta.index()) {
            throw violation("snapshot-state", node + " " + how + " snapshot " + meta + " whose bytes hold "
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
    public void onSend(SimulatedHost node, Message m) {
        if (m instanceof AppendEntriesRequest a) {
            learnCommitted(node, a.leaderCommit(), a.term());
        }
        HardState durable = node.meta().durableHardState();
        SimulatedLogStore log = node.log();
        String id = node.id();
        boolean echoesOtherTerm = (m instanceof VoteRequest v && v.preVote())
            || (m instanceof VoteResponse r && r.preVote());
        if (!echoesOtherTerm && m.term() > durable.term()) {
            throw violation("persist-before-send", id + " sends " + m + " in term " + m.term()
                + " but its durable term is " + durable.term());
        }
        // A durable term above the message's is as good as its vote: the node never votes in that term again.
        if (m instanceof VoteRequest v && !v.preVote()
            && (durable.term() < v.term() || durable.term() == v.term() && !id.equals(durable.votedFor()))) {
            throw violation("persist-before-send", id + " asks for votes with " + m + " before its own vote is "
                + "durable: " + durable);
        }
        if (m instanceof VoteResponse r && !r.preVote() && r.granted()
            && (durable.term() < r.term() || durable.term() == r.term() && !r.to().equals(durable.votedFor()))) {
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
    public void onApplied(SimulatedHost node, Entry e) {
        String id = node.id();
        Entry inLog = node.log().entry(e.index());
        if (!e.equals(inLog)) {
            throw violation("ready-contract", id + " was told to apply " + e + " but its log holds " + inLog);
        }
        checkDurableOnMajority(node, e);
        int i = (int) e.index();
        if (i < committed.size()) {
            if (!committed.get(i).equals(e) && !(dropped(node.log(), i) && sameHeader(committed.get(i), e))) {
                throw violation("state-machine-safety", id + " applies " + e + " where the group committed "
                    + committed.get(i));
            }
        } else if (i == committed.size()) {
            addCommitted(fullBody(node, e), node.meta().hardState().term());
        } else {
            throw violation("harness", id + " applies " + e + " but only " + committed.size()
                + " committed entries are known");
        }
        if (stateUnchecked.contains(id)) {
            // A witness's state machine sees empty bodies where it dropped them: nothing to compare.
            return;
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
    }

    /** An entry applied must be committed: durable on a majority of the smallest configuration the run had. */
    private void checkDurableOnMajority(SimulatedHost node, Entry e) {
        int holders = 0;
        for (SimulatedHost h : hosts) {
            SimulatedLogStore log = h.log();
            if (log.durableSnapshot().index() >= e.index() || log.durableTerm(e.index()) == e.term()) {
                holders++;
            }
        }
        int majority = minVoters / 2 + 1;
        if (holders < majority) {
            throw violation("applied-uncommitted", node.id() + " applies " + e + " held durably by " + holders
                + " node(s), fewer than a majority (" + majority + ") of any configuration");
        }
    }

    /**
     * A leader sends its commit index: every entry of its log through it is committed. Recorded at once, not after the
     * event as the nodes' published commit indexes are: a leader that crashes in the pass that advanced its commit
     * index never publishes it, while a witness that reads the index may drop bodies in its next pass, judged (by
     * {@link #onDropBodies}) on the configuration committed through it. Entries the leader compacted or dropped the
     * body of are left to the other reports.
     */
    private void learnCommitted(SimulatedHost leader, long commit, long term) {
        SimulatedLogStore log = leader.log();
        long to = Math.min(commit, log.lastIndex());
        for (long i = committed.size(); i <= to; i++) {
            if (i < log.firstIndex() || dropped(log, i)) {
                return;
            }
            addCommitted(log.entry(i), term);
        }
    }

    /** Records the group's committed entry at the next index; a payload id committed twice breaks exactly-once. */
    private void addCommitted(Entry e, long observedTerm) {
        committed.add(e);
        committedObservedTerm.add(observedTerm);
        if (e.type() == EntryType.NORMAL && e.data().length >= 8) {
            long payloadId = ByteBuffer.wrap(e.data()).getLong();
            Long before = committedIds.putIfAbsent(payloadId, e.index());
            if (before != null) {
                throw violation("exactly-once", "client request " + payloadId + " (" + e + ") committed twice, at "
                    + before + " and at " + e.index());
            }
        }
    }

    // ----- after every event ---------------------------------------------------------------------------------------

    /** Checks the per-event invariants over every running node. */
    public void afterEvent(Collection<SimulatedHost> nodes) {
        for (SimulatedHost n : nodes) {
            NodeStatus s = n.status();
            if (s == null || s.failed()) {
                continue;
            }
            String id = n.id();
            Track t = track(id);
            SimulatedLogStore log = n.log();
            long c = s.commitIndex();
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
            if (log.droppedBodiesThrough() >= 0 || stateUnchecked.contains(id)) {
                Membership m = latestMembership(id, log);
                boolean dataMember = m.voters().contains(id) && !m.isWitness(id);
                if (dataMember && log.droppedBodiesThrough() >= 0) {
                    throw violation("data-member-complete", id + " is a data member in its configuration " + m
                        + " but dropped bodies through " + log.droppedBodiesThrough());
                }
                if (dataMember) {
                    // A witness that never dropped a body is promoted without a snapshot: its state saw every body,
                    // and from now on it is compared like any data member's.
                    stateUnchecked.remove(id);
                }
            }
            long applied = n.stateMachine().appliedIndex();
            if (applied > c || s.appliedIndex() > c) {
                throw violation("applied-le-committed", id + ": applied " + applied + " (driver says "
                    + s.appliedIndex() + ") beyond commit index " + c);
            }
            if (c > t.checkedCommit) {
                recordCommitted(n, Math.max(t.checkedCommit + 1, log.firstIndex()), c);
                t.checkedCommit = c;
            }
            t.lifetimeCommit = c;
            t.maxCommitEver = Math.max(t.maxCommitEver, c);
            if (s.role() == Role.LEADER) {
                checkLeader(id, s.term());
                if (t.leaderTermChecked != s.term()) {
                    checkLeaderCompleteness(n, s.term());
                    t.leaderTermChecked = s.term();
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

    private void recordCommitted(SimulatedHost n, long from, long to) {
        SimulatedLogStore log = n.log();
        long term = n.status().term();
        for (long i = from; i <= to; i++) {
            Entry e = log.entry(i);
            if (e == null) {
                throw violation("commit-beyond-log", n.id() + ": commit index " + to + " covers " + i
                    + " which its log " + log + " does not hold");
            }
            if (i < committed.size()) {
                if (!holds(log, i, committed.get((int) i))) {
                    throw violation("committed-mismatch", n.id() + " holds " + e + " at or below its commit index "
                        + to + " where the group committed " + committed.get((int) i));
                }
            } else if (i == committed.size()) {
                addCommitted(fullBody(n, e), term);
            } else {
                throw violation("harness", n.id() + ": commit " + to + " leaves a gap after "
                    + (committed.size() - 1) + " in the known committed entries");
            }
        }
    }

    private void checkLeaderCompleteness(SimulatedHost n, long term) {
        SimulatedLogStore log = n.log();
        for (long i = log.firstIndex(); i < committed.size(); i++) {
            if (committedObservedTerm.get((int) i) >= term) {
                continue;
            }
            Entry mine = log.entry(i);
            if (!holds(log, i, committed.get((int) i))) {
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
            if (!holds(log, a.entry().index(), a.entry())) {
                throw violation("acked-lost", n.id() + " leads term " + term + " without " + a.entry()
                    + " acknowledged by " + a.node() + " in term " + a.ackTerm() + "; its log holds " + mine);
            }
        }
    }

    /**
     * Checks log matching pairwise over whole logs (running or down nodes alike) and that every acknowledged entry is
     * the committed one. Costs O(nodes^2 * log length): run it now and then and at the end.
     */
    public void fullCheck(Collection<SimulatedHost> nodes) {
        List<SimulatedHost> list = new ArrayList<>(nodes);
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

    private void checkPair(SimulatedHost x, SimulatedHost y) {
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
            boolean same = dropped(a, i) || dropped(b, i) ? sameHeader(a.entry(i), b.entry(i))
                : Objects.equals(a.entry(i), b.entry(i));
            if (!same) {
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
