package dev.dledger.raft.core;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * A tiny, single-threaded driver for a group of {@link RaftNode}s: the test decides every tick and every delivery.
 * Each node's Ready is handled exactly as {@link Ready} prescribes (persist, then send, then apply, then advance),
 * and after each Ready the cluster checks a few safety properties, so every scenario also checks them:
 *
 * <ul>
 *   <li>at most one leader per term;</li>
 *   <li>a granted vote leaves the node only once the vote is durable;</li>
 *   <li>a successful AppendEntries answer never claims more than the durable log holds;</li>
 *   <li>an entry is applied only when it is durable on a quorum, in index order, and every node applies the same
 *   entry at an index.</li>
 * </ul>
 */
final class TestCluster {

    /** The base election timeout of the scenarios, in ticks. */
    static final int ELECTION_TICKS = 10;
    /** The heartbeat interval of the scenarios, in ticks. */
    static final int HEARTBEAT_TICKS = 2;

    private static final boolean TRACE = Boolean.getBoolean("coretests.trace");

    /** One member: its core and what its driver holds durably. */
    static final class Node {
        final String id;
        final RaftConfig config;
        final InMemoryLogView log;
        final ScriptedRandom random;
        final Membership startMembership;
        HardState hardState;
        RaftNode raft;
        boolean up = true;
        byte[] receivedSnapshotData;
        long appliedIndex;
        final List<Ready> readies = new ArrayList<>();
        final List<Entry> applied = new ArrayList<>();
        final List<ReadState> readStates = new ArrayList<>();

        private Node(String id, RaftConfig config, InMemoryLogView log, ScriptedRandom random,
                     Membership startMembership, HardState hardState) {
            this.id = id;
            this.config = config;
            this.log = log;
            this.random = random;
            this.startMembership = startMembership;
            this.hardState = hardState;
            this.appliedIndex = log.snapshot().index();
        }

        /** The ids of the read states served so far. */
        List<Long> readIds() {
            List<Long> out = new ArrayList<>();
            for (ReadState rs : readStates) {
                out.add(rs.requestId());
            }
            return out;
        }

        /** The payloads applied so far, as strings. */
        List<String> appliedPayloads() {
            List<String> out = new ArrayList<>();
            for (Entry e : applied) {
                if (e.type() == EntryType.NORMAL) {
                    out.add(new String(e.data(), StandardCharsets.UTF_8));
                }
            }
            return out;
        }
    }

    private final Map<String, Node> nodes = new LinkedHashMap<>();
    private final Net net = new Net();
    private final UnaryOperator<RaftConfig> tune;
    private final Map<Long, String> leaderOfTerm = new HashMap<>();
    private final Map<Long, Entry> appliedAt = new HashMap<>();
    private final List<String> trace = new ArrayList<>();

    private TestCluster(UnaryOperator<RaftConfig> tune) {
        this.tune = tune;
    }

    /** A new group of {@code ids} with the scenario timeouts; earlier ids time out first. */
    static TestCluster of(String... ids) {
        return of(c -> c, ids);
    }

    /** As {@link #of(String...)}, with each node's config adjusted by {@code tune}. */
    static TestCluster of(UnaryOperator<RaftConfig> tune, String... ids) {
        TestCluster cluster = new TestCluster(tune);
        Membership voters = Membership.of(ids);
        for (String id : ids) {
            cluster.add(id, voters, new InMemoryLogView(), HardState.INITIAL);
        }
        return cluster;
    }

    /** An empty group, filled with {@link #add}. */
    static TestCluster empty(UnaryOperator<RaftConfig> tune) {
        return new TestCluster(tune);
    }

    /**
     * Adds a node that recovers from {@code log} and {@code hardState}, with {@code start} as the configuration at the
     * start of its log. Its election jitter is {@code 2 * (number of nodes before it)}.
     */
    Node add(String id, Membership start, InMemoryLogView log, HardState hardState) {
        RaftConfig config = tune.apply(RaftConfig.defaults(id).withTimeouts(ELECTION_TICKS, HEARTBEAT_TICKS));
        Node n = new Node(id, config, log, new ScriptedRandom(2 * nodes.size()), start, hardState);
        nodes.put(id, n);
        n.raft = newCore(n, 0);
        return n;
    }

    private RaftNode newCore(Node n, int leaseQuietTicks) {
        List<Entry> configEntries = new ArrayList<>();
        for (Entry e : n.log.entries()) {
            if (e.type() == EntryType.CONFIG) {
                configEntries.add(e);
            }
        }
        InitialState initial = new InitialState(n.hardState, n.startMembership, configEntries, -1, n.appliedIndex,
            leaseQuietTicks);
        CoreLog out = new CoreLog() {
            @Override
            public boolean debugEnabled() {
                return TRACE;
            }

            @Override
            public void info(String line) {
                record(n.id, line);
            }

            @Override
            public void debug(String line) {
                record(n.id, line);
            }
        };
        return new RaftNode(n.config, n.log, initial, n.random, out);
    }

    private void record(String id, String line) {
        trace.add("[" + id + "] " + line);
        if (TRACE) {
            System.out.println("[" + id + "] " + line);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Access

    Node node(String id) {
        Node n = nodes.get(id);
        if (n == null) {
            throw new IllegalArgumentException("no node " + id);
        }
        return n;
    }

    RaftNode raft(String id) {
        return node(id).raft;
    }

    Net net() {
        return net;
    }

    /** The core's log lines so far, each prefixed with its node. */
    List<String> trace() {
        return List.copyOf(trace);
    }

    /** The ids of the nodes that are up and believe they lead. */
    List<String> leaders() {
        List<String> out = new ArrayList<>();
        for (Node n : nodes.values()) {
            if (n.up && n.raft.role() == Role.LEADER) {
                out.add(n.id);
            }
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Inputs

    /** Runs {@code input} on a node's core and handles the Readys it produced. */
    <T> T on(String id, Function<RaftNode, T> input) {
        Node n = requireUp(id);
        T result = input.apply(n.raft);
        process(n);
        return result;
    }

    /** Proposes a payload on {@code id} and handles its Readys. */
    ProposeResult propose(String id, String payload) {
        return on(id, r -> r.propose(payload.getBytes(StandardCharsets.UTF_8)));
    }

    /** Ticks one node once and handles its Readys (nothing is delivered). */
    void tick(String id) {
        Node n = requireUp(id);
        n.raft.tick();
        process(n);
    }

    void tick(String id, int times) {
        for (int i = 0; i < times; i++) {
            tick(id);
        }
    }

    /** Ticks every node that is up once (nothing is delivered). */
    void tickAll() {
        for (Node n : nodes.values()) {
            if (n.up) {
                n.raft.tick();
                process(n);
            }
        }
    }

    /** {@code rounds} times: tick every node that is up, then deliver until the network is quiet. */
    void run(int rounds) {
        for (int i = 0; i < rounds; i++) {
            tickAll();
            deliverAll();
        }
    }

    /**
     * Ticks {@code id} alone, delivering every message after each tick, until it leads (it may need more than one
     * campaign, e.g. to learn the group's term from a rejection first). Fails if it does not lead within ten election
     * timeouts.
     */
    RaftNode elect(String id) {
        Node n = requireUp(id);
        deliverAll();
        for (int i = 0; i < 10 * n.config.electionTimeoutTicks() && n.raft.role() != Role.LEADER; i++) {
            tick(id);
            deliverAll();
        }
        if (n.raft.role() != Role.LEADER) {
            throw new AssertionError(id + " did not win: " + n.raft.role() + " at term " + n.raft.term()
                + "\n" + String.join("\n", trace));
        }
        return n.raft;
    }

    /** Delivers waiting messages, and those they cause, until none is left. */
    void deliverAll() {
        deliverWhere(m -> true);
    }

    /** Delivers the waiting messages that match, and those they cause that match, until none is left. */
    void deliverWhere(Predicate<Message> which) {
        int delivered = 0;
        for (Message m = net.poll(which); m != null; m = net.poll(which)) {
            deliver(m);
            if (++delivered > 200_000) {
                throw new AssertionError("the network does not quiet down");
            }
        }
    }

    /** Delivers one message now (it need not be waiting: a duplicate or a forged one works too). */
    void deliver(Message m) {
        Node to = nodes.get(m.to());
        if (to == null || !to.up || !net.admit(m)) {
            return;
        }
        Message msg = m;
        if (msg instanceof InstallSnapshotRequest r && r.data() == null) {
            // The drivers move the snapshot bytes; the cores only name the snapshot.
            msg = r.withData(node(r.from()).log.snapshotData());
        }
        if (msg instanceof InstallSnapshotRequest r) {
            to.receivedSnapshotData = r.data();
        }
        to.raft.step(msg);
        process(to);
    }

    /** Stops a node: it keeps its durable log and vote; messages to it are lost. */
    void crash(String id) {
        node(id).up = false;
    }

    /**
     * Restarts a node from its durable log and vote, with an in-memory state machine rebuilt from the snapshot. Like
     * the production driver, a node restarted with a term keeps quiet for an election timeout (leader leases).
     */
    void restart(String id) {
        Node n = node(id);
        n.up = true;
        n.appliedIndex = n.log.snapshot().index();
        n.applied.clear();
        n.raft = newCore(n, n.hardState.term() > 0 ? n.raft.config().electionTimeoutTicks() : 0);
        process(n);
    }

    /** Compacts a node's durable log up to {@code index} (which it must have applied) into a snapshot. */
    void compact(String id, long index) {
        Node n = node(id);
        if (index > n.appliedIndex) {
            throw new IllegalArgumentException(id + " has applied only up to " + n.appliedIndex);
        }
        n.log.compact(index, n.raft.membershipAt(index), ("snapshot of " + id + " at " + index)
            .getBytes(StandardCharsets.UTF_8));
    }

    private Node requireUp(String id) {
        Node n = node(id);
        if (!n.up) {
            throw new IllegalStateException(id + " is down");
        }
        return n;
    }

    // ------------------------------------------------------------------------------------------------------------
    // The driver loop

    /**
     * Handles a Ready the test took from a node's core itself (persist, send, apply), advances the core past it, then
     * handles whatever else the core has.
     */
    void complete(String id, Ready rd) {
        Node n = requireUp(id);
        ReadyHandler.handle(n.raft, rd, new Handler(n), true);
        process(n);
    }

    /** Handles every Ready of a node, in order, as the Ready contract says. */
    void process(Node n) {
        int batches = 0;
        while (n.raft.hasReady()) {
            Ready rd = n.raft.ready();
            ReadyHandler.handle(n.raft, rd, new Handler(n), true);
            if (++batches > 10_000) {
                throw new AssertionError(n.id + " never runs out of Ready batches");
            }
        }
        checkOneLeaderPerTerm(n.id, n.raft.role(), n.raft.term());
    }

    /** This harness's steps of the Ready sequence: the in-memory log, and checks of what each step may do. */
    private final class Handler implements ReadyHandler {
        private final Node n;

        Handler(Node n) {
            this.n = n;
        }

        @Override
        public void begin(Ready rd) {
            n.readies.add(rd);
            checkOneLeaderPerTerm(n.id, rd.role(), rd.hardState() != null ? rd.hardState().term() : n.raft.term());
        }

        @Override
        public void saveHardState(HardState hs) {
            if (hs.term() < n.hardState.term()) {
                throw new AssertionError(n.id + " asked to persist a lower term: " + hs);
            }
            n.hardState = hs;
        }

        @Override
        public void installSnapshot(SnapshotMeta snapshot) {
            n.log.install(snapshot, Objects.requireNonNull(n.receivedSnapshotData, "snapshot bytes"));
            n.appliedIndex = snapshot.index();
        }

        @Override
        public void truncateFrom(long index) {
            n.log.truncateFrom(index);
        }

        @Override
        public void append(List<Entry> entries) {
            n.log.append(entries);
        }

        /** Checks that each message only claims what is now durable. */
        @Override
        public void send(Message m) {
            if (m instanceof VoteResponse vr && vr.granted() && !vr.preVote()) {
                if (n.hardState.term() != vr.term() || !vr.to().equals(n.hardState.votedFor())) {
                    throw new AssertionError(n.id + " grants a vote to " + vr.to() + " at term " + vr.term()
                        + " but its durable state is " + n.hardState);
                }
            }
            if (m instanceof AppendEntriesResponse ar && ar.success() && ar.matchIndex() > n.log.lastIndex()) {
                throw new AssertionError(n.id + " acknowledges " + ar.matchIndex() + " but holds up to "
                    + n.log.lastIndex());
            }
            net.send(m);
        }

        @Override
        public void apply(List<Entry> committed) {
            for (Entry e : committed) {
                TestCluster.this.apply(n, e);
            }
        }

        @Override
        public void readsConfirmed(List<ReadState> reads) {
            n.readStates.addAll(reads);
        }
    }

    private void apply(Node n, Entry e) {
        if (e.index() != n.appliedIndex + 1) {
            throw new AssertionError(n.id + " applies " + e + " after " + n.appliedIndex);
        }
        if (e.index() > n.raft.commitIndex()) {
            throw new AssertionError(n.id + " applies " + e + " beyond its commit index " + n.raft.commitIndex());
        }
        if (!n.log.entry(e.index()).equals(e)) {
            throw new AssertionError(n.id + " applies " + e + " but its log holds " + n.log.entry(e.index()));
        }
        int holders = 0;
        for (Node other : nodes.values()) {
            if (other.log.holds(e.index(), e.term())) {
                holders++;
            }
        }
        int quorum = n.raft.membershipAt(e.index()).quorum();
        if (holders < quorum) {
            throw new AssertionError(n.id + " applies " + e + " stored on " + holders + " nodes only, quorum "
                + quorum);
        }
        Entry first = appliedAt.putIfAbsent(e.index(), e);
        if (first != null && !first.equals(e)) {
            throw new AssertionError(n.id + " applies " + e + " where " + first + " was applied before");
        }
        n.applied.add(e);
        n.appliedIndex = e.index();
    }

    private void checkOneLeaderPerTerm(String id, Role role, long term) {
        if (role != Role.LEADER) {
            return;
        }
        String known = leaderOfTerm.putIfAbsent(term, id);
        if (known != null && !known.equals(id)) {
            throw new AssertionError("two leaders in term " + term + ": " + known + " and " + id);
        }
    }
}
