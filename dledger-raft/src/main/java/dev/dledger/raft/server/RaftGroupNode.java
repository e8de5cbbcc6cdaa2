package dev.dledger.raft.server;

import dev.dledger.raft.core.AppendEntriesResponse;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.InitialState;
import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.InstallSnapshotResponse;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.ProposeResult;
import dev.dledger.raft.core.RaftNode;
import dev.dledger.raft.core.Ready;
import dev.dledger.raft.core.ReadState;
import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.IoThread;
import dev.dledger.raft.transport.SnapshotChunk;
import dev.dledger.raft.transport.Transport;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;
import org.slf4j.Logger;

/**
 * The driver of one node of one group: runs the {@link RaftNode} on its own thread, turns milliseconds into ticks,
 * persists what each {@link Ready} says before sending what depends on it, and applies committed entries to the
 * {@link StateMachine}.
 *
 * <p>Group commit: every input that arrives while the driver handles a Ready is taken in the next pass, so the
 * proposals of many clients share one log write and one message per follower.
 *
 * <p>With {@link FlushMode#SYNC} the fsync runs off the driver thread, on a {@link LogSyncer}: the driver writes the
 * entries and goes on (a leader sends them to the followers at once); one fsync covers every write that arrived while
 * the previous one ran. An entry counts toward the quorum only once fsynced on that node: the core counts the leader's
 * own log only up to what the syncer reported durable ({@link RaftNode#logDurable}), and a follower's acknowledgement
 * of an index is held back until that index is durable here. The term and vote are saved synchronously.
 *
 * <p>Public methods are thread-safe: they post work to the driver thread and return futures, completed on the driver
 * thread. A storage failure stops the node: it completes every pending future with {@code STOPPED}, stops acking and
 * voting, and reports through {@link #status()}.
 */
public final class RaftGroupNode implements AutoCloseable {

    /** The driver's log (a port: SLF4J's logger of this class in production). */
    private final Logger log;
    /** How often the storage's housekeeping ({@link NodeStorage#retain}) runs: every second. */
    private static final long RETAIN_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);
    /** Ticks the driver may fall behind and then replay one per pass; more are skipped (see catchUpClock). */
    static final int MAX_LATE_TICKS = 10;

    private final String group;
    private final String id;
    private final NodeOptions options;
    private final NodeStorage storage;
    private final StateMachine stateMachine;
    private final Transport transport;
    private final RaftNode node;
    private final SnapshotTransfers snapshots;
    private final BlockingQueue<Input> inbox;
    private final RaftLoops ownLoops;
    private final DriverLoop loop;
    /**
     * With the driver on a transport's event loop: the thread that runs the passes whose Ready blocks (a term/vote
     * fsync, a snapshot to build), so that the event loop and the other groups on it never wait for a disk (issue 16,
     * B7). Null with a driver thread of its own.
     */
    private final java.util.concurrent.ExecutorService blockingWork;
    /** A pass asked to run off the event loop ({@link #wantsBlockingPass()}). */
    private volatile boolean blockingPassWanted;
    /** A pass runs on {@link #blockingWork}: the event loop leaves this node alone meanwhile. */
    private volatile boolean offLoop;
    private final long tickNanos;
    /** The time this driver reads (a port: the system clock in production). */
    private final Clock clock;
    private long nextTick;
    private long nextRetain;
    private final TreeMap<Long, Pending> pending = new TreeMap<>();
    private final Map<Long, PendingRead> reads = new TreeMap<>();
    private final List<PendingRead> confirmedReads = new ArrayList<>();
    private final TreeMap<Long, Long> positions = new TreeMap<>();
    private long nextReadId;
    private long lastSnapshotIndex;
    /** The bytes of the snapshot the core accepted and will hand out in a Ready, or null. */
    private ReceivedSnapshot receivedSnapshot;
    private long lastCheckpoint = -1;
    private volatile boolean running = true;
    private volatile boolean failed;
    private final List<java.util.function.Consumer<NodeStatus>> roleListeners =
        new java.util.concurrent.CopyOnWriteArrayList<>();
    private volatile boolean stopped;
    private volatile NodeStatus status;
    private volatile java.util.function.DoubleConsumer appendLatencySeconds = s -> { };
    /** Touched on the node's thread only. */
    private java.util.function.Consumer<Membership> peerListener;
    private Membership lastPeers;
    private volatile java.util.function.DoubleConsumer storeLatencySeconds = s -> { };
    /** Elections this node started (it became a candidate), snapshots it sent and installed; see {@link #counters}. */
    private final java.util.concurrent.atomic.AtomicLong electionsStarted = new java.util.concurrent.atomic.AtomicLong();
    /** The last term this node voted for itself in; node thread only. */
    private long electionTerm;
    private final java.util.concurrent.atomic.AtomicLong snapshotsSent = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong snapshotsInstalled =
        new java.util.concurrent.atomic.AtomicLong();
    /** The background fsync with {@link FlushMode#SYNC}; null with {@link FlushMode#ASYNC}. */
    private final LogSyncer syncer;
    /** With a syncer: the number of the last log write handed to it. */
    private long writes;
    /** With a syncer: the number of the last write whose sync the driver handled. */
    private long syncedWrites;
    /** With a syncer: each write not yet synced as {number, last index after it, that entry's term}. */
    private final ArrayDeque<long[]> unsynced = new ArrayDeque<>();
    /** With a syncer: the last index of the log known durable here (every index with {@link FlushMode#ASYNC}). */
    private long durableIndex;
    /** With a syncer: acknowledgements waiting for their match index to become durable, in the order made. */
    private final List<Message> heldAcks = new ArrayList<>();
    /** Client request ids applied here and in the log here: how a leader recognizes a retried append. */
    private final RequestDedup dedup = new RequestDedup();
    /** The term of the last leadership of this node that the driver saw, or -1. */
    private long leaderTerm = -1;
    /** The last index when that leadership was seen: retries are judged once it is applied. */
    private long leaderStartIndex;
    /** Appends with request ids that wait for this new leader to apply the entries of earlier terms. */
    private final List<WaitingAppend> waitingAppends = new ArrayList<>();

    private static final class Pending {
        final long firstIndex;
        final long lastIndex;
        final long term;
        final long startNanos;
        final long deadlineNanos;
        final CompletableFuture<AppendResult> future;

        Pending(long firstIndex, long lastIndex, long term, long startNanos, long deadlineNanos,
                CompletableFuture<AppendResult> f) {
            this.firstIndex = firstIndex;
            this.lastIndex = lastIndex;
            this.term = term;
            this.startNanos = startNanos;
            this.deadlineNanos = deadlineNanos;
            this.future = f;
        }
    }

    /** A snapshot's bytes, bound to the transfer (leader, term) and the exact snapshot the core accepted. */
    private record ReceivedSnapshot(String leader, long term, SnapshotMeta snapshot, byte[] data) {
    }

    private record PendingRead(long deadlineNanos, CompletableFuture<Long> future, long[] index) {
    }

    private record WaitingAppend(List<byte[]> bodies, RequestId id, long deadlineNanos,
                                 CompletableFuture<AppendResult> future) {
    }

    /** Work for the driver thread; {@link #abort()} completes its future when the node stops before running it. */
    private interface Input extends Runnable {
        default void abort() {
        }
    }

    /**
     * Creates and starts a node.
     *
     * @param options      the node's settings
     * @param bootstrap    the voters of the group when it is new (ignored once the log or a snapshot holds a
     *                     configuration); {@link Membership#EMPTY} for a node being added to a running group
     * @param storage      the node's durable state, opened
     * @param stateMachine the application
     * @param transport    the transport, on which this node registers its group
     */
    public RaftGroupNode(NodeOptions options, Membership bootstrap, NodeStorage storage, StateMachine stateMachine,
                         Transport transport) {
        this(options, bootstrap, storage, stateMachine, transport, null);
    }

    /**
     * Creates and starts a node on shared driver threads (multi-raft).
     *
     * @param loops the shared driver threads, or null for a thread of its own
     */
    public RaftGroupNode(NodeOptions options, Membership bootstrap, NodeStorage storage, StateMachine stateMachine,
                         Transport transport, RaftLoops loops) {
        this(options, bootstrap, storage, stateMachine, transport, loops, DriverPorts.production());
    }

    /**
     * Creates and starts a node on the given ports (the deterministic simulation passes simulated ones).
     *
     * @param loops the shared driver threads, or null for the transport's driver thread or a thread of its own
     * @param ports the clock, the background syncer and the blocking-work executor
     */
    public RaftGroupNode(NodeOptions options, Membership bootstrap, NodeStorage storage, StateMachine stateMachine,
                         Transport transport, RaftLoops loops, DriverPorts ports) {
        this.options = Objects.requireNonNull(options, "options");
        this.clock = ports.clock();
        this.log = ports.loggers().apply(RaftGroupNode.class.getName());
        this.group = options.group();
        this.id = options.raft().id();
        this.electionTerm = storage.hardState().term();
        this.storage = storage;
        this.stateMachine = stateMachine;
        this.transport = transport;
        this.inbox = new ArrayBlockingQueue<>(options.maxQueuedInputs());
        if (options.flush() == FlushMode.SYNC) {
            // What the log holds at start counts as durable (the core assumes so): make it true.
            storage.sync();
        }
        this.durableIndex = storage.log().lastIndex();
        SnapshotMeta snap = storage.log().snapshot();
        if (snap.index() >= 0) {
            // The state machine and the request table as of the snapshot; a position-only record (a log compacted
            // by retention) holds neither (issue 16, B2 and B6).
            restoreSnapshot(snap.index(), storage.snapshotData());
        }
        lastSnapshotIndex = snap.index();
        // After a restart (a term on disk) the node keeps quiet for an election timeout: see leaseQuietTicks.
        InitialState initial = new InitialState(storage.hardState(), bootstrap, storage.configEntries(),
            storage.committedCheckpoint(), snap.index(),
            storage.hardState().term() > 0 ? options.raft().electionTimeoutTicks() : 0);
        SplittableRandom random = new SplittableRandom(options.randomSeed());
        this.node = new RaftNode(options.raft(), storage.log(), initial, random::nextInt,
            new Slf4jCoreLog(ports.loggers().apply(Slf4jCoreLog.CORE_LOGGER), group, id,
                () -> status == null ? 0 : status.term()));
        publishStatus();
        this.tickNanos = TimeUnit.MILLISECONDS.toNanos(options.tickMs());
        this.nextTick = clock.nanoTime() + tickNanos;
        this.nextRetain = nextTick + RETAIN_INTERVAL_NANOS;
        // Without shared loops the driver runs on the transport's thread when it offers one (no hand-off between
        // reading a message and stepping it, nor between a pass and its sends), else on a thread of its own.
        IoThread io = loops == null ? transport.driverThread() : null;
        this.ownLoops = loops == null && io == null ? RaftLoops.dedicated("raft-" + group + "-" + id) : null;
        this.loop = io != null ? new IoThreadLoop(io, clock) : (loops == null ? ownLoops : loops).assign();
        this.blockingWork = io == null || !io.offloadsBlockingWork() ? null
            : ports.blockingWork().apply("raft-io-" + group + "-" + id);
        this.syncer = options.flush() == FlushMode.SYNC
            ? ports.syncers().start("sync-" + group + "-" + id, storage, loop::wake) : null;
        this.snapshots = new SnapshotTransfers(group, id, transport, options.snapshotChunkBytes(),
            ports.loggers().apply(SnapshotTransfers.class.getName()));
        transport.register(group, id, this::onMessage);
        transport.onPeerDown(group, this::onPeerDown);
        transport.serveRequests(group, new ClientService(this));
        transport.onChunks(group, c -> {
            if (inbox.offer(() -> receiveChunk(c))) {
                loop.wake();
            }
        });
        loop.add(this);
    }

    /**
     * Receives, on the node's thread, the seconds from each append's arrival at the leader until it is committed and
     * applied (when its client is answered); must not block.
     */
    public void recordCommitLatency(java.util.function.DoubleConsumer seconds) {
        this.appendLatencySeconds = seconds;
    }

    /**
     * Receives, on the node's thread, the seconds from each append's arrival at the leader until its entries are
     * written to the leader's own log (before the quorum and before any fsync of {@code flush=sync}); must not block.
     */
    public void recordAppendLatency(java.util.function.DoubleConsumer seconds) {
        this.storeLatencySeconds = seconds;
    }

    /**
     * Counts since this node started.
     *
     * @param electionsStarted   times it became a candidate (pre-votes that did not lead to one not counted)
     * @param snapshotsSent      InstallSnapshot transfers it started to a follower
     * @param snapshotsInstalled snapshots it received from a leader and installed
     */
    public record Counters(long electionsStarted, long snapshotsSent, long snapshotsInstalled) {
    }

    /** The node's counters; thread-safe. */
    public Counters counters() {
        return new Counters(electionsStarted.get(), snapshotsSent.get(), snapshotsInstalled.get());
    }

    /** This node's id. */
    public String id() {
        return id;
    }

    /** The group. */
    public String group() {
        return group;
    }

    /** The latest published status; never null. */
    public NodeStatus status() {
        return status;
    }

    /** Called by the transport for each inbound message; drops it when the node is overloaded. */
    private void onMessage(Message m) {
        if (!inbox.offer(() -> stepInbound(m))) {
            log.debug("[{} {}] inbox full, dropped {}", group, id, m);
        } else {
            loop.wake();
        }
    }

    /**
     * The transport saw peer {@code peer}'s process go (a connection closed and its port refuses): when it is our
     * leader, the core forgets it and campaigns soon instead of waiting out an election timeout.
     */
    private void onPeerDown(String peer) {
        if (inbox.offer(() -> node.forgetLeader(peer))) {
            loop.wake();
        }
    }

    private void stepInbound(Message m) {
        if (m instanceof InstallSnapshotRequest s && s.data() != null) {
            SnapshotMeta before = node.pendingSnapshot();
            node.step(m);
            SnapshotMeta accepted = node.pendingSnapshot();
            // Only the bytes of the request the core accepted, bound to its snapshot: a stale one (a deposed
            // leader's) or one the core answered without installing never takes the slot (issue 16, B1).
            if (accepted != before && accepted == s.snapshot()) {
                receivedSnapshot = new ReceivedSnapshot(s.from(), s.term(), accepted, s.data());
            }
        } else {
            node.step(m);
        }
    }

    /**
     * A snapshot chunk or acknowledgement from the network. Only the leader of the transfer's term goes on with a
     * transfer: a deposed leader drops its transfers and answers no acknowledgement (issue 16, B1).
     */
    private void receiveChunk(SnapshotChunk c) {
        if (c.ack() && (node.role() != Role.LEADER || c.request().term() != node.term())) {
            snapshots.reset();
            return;
        }
        snapshots.receive(c, this::stepInbound);
    }

    /**
     * Appends entries as one batch (consecutive indexes) and completes when they are committed and applied here.
     * Refusals (not leader, transferring, overloaded) complete at once; TIMEOUT after
     * {@link NodeOptions#appendTimeoutMs()}. The entries carry no request id: the DLedger format stays the stock one.
     */
    public CompletableFuture<AppendResult> append(List<byte[]> bodies) {
        return append(bodies, null);
    }

    /**
     * Appends entries that carry client request ids ({@code firstId} for the first entry, {@code firstId.plus(i)} for
     * the i-th), so that a retry of the same request, here or at a later leader, is taken once:
     * <ul>
     *   <li>already applied: completes OK at once with the original index and term (positions -1);</li>
     *   <li>in this leader's log, not yet committed: completes with the original's outcome;</li>
     *   <li>not matchable with certainty (the id is older than what the leader remembers of its client, or only the
     *   head of the batch is in the log): completes {@link AppendResult.Status#EXPIRED} and appends nothing.</li>
     * </ul>
     * A new leader judges retries only once it applied the entries of earlier terms; until then (at most
     * {@link NodeOptions#appendTimeoutMs()}) such appends wait, and complete OVERLOADED if it takes longer.
     *
     * @param firstId the id of the first entry, or null for entries without ids (as {@link #append(List)})
     */
    public CompletableFuture<AppendResult> append(List<byte[]> bodies, RequestId firstId) {
        CompletableFuture<AppendResult> f = new CompletableFuture<>();
        String wrong = checkBodies(bodies);
        if (wrong != null) {
            f.completeExceptionally(new IllegalArgumentException(wrong));
            return f;
        }
        submit(f, deadline -> proposeNow(bodies, firstId, f, deadline));
        return f;
    }

    /**
     * Appends entries built on the driver thread once it is certain they will be taken: this node leads, no
     * leadership transfer is under way, there is room for another pending append and the disk is not full. Only then
     * {@code builder} runs, once; an append refused (NOT_LEADER, TRANSFERRING, OVERLOADED, DISK_FULL, STOPPED,
     * completed as for {@link #append(List)}) never runs it. Builders run one at a time in log order, so a caller can
     * number its entries there without gaps. Completes as {@link #append(List)} once the entries are committed and
     * applied here; exceptionally with what the builder threw (nothing appended), or with an IllegalArgumentException
     * when what it built is empty or does not fit a data file (nothing appended either, but the builder ran). The
     * entries carry no request id.
     */
    public CompletableFuture<AppendResult> append(EntryBuilder builder) {
        Objects.requireNonNull(builder, "builder");
        CompletableFuture<AppendResult> f = new CompletableFuture<>();
        submit(f, deadline -> proposeBuilt(builder, f, deadline));
        return f;
    }

    /** Why {@code bodies} cannot be appended (empty, or an entry too large for a data file), or null. */
    private String checkBodies(List<byte[]> bodies) {
        if (bodies.isEmpty()) {
            return "empty append";
        }
        for (byte[] b : bodies) {
            if (b.length > storage.maxEntryBytes()) {
                return "an entry of " + b.length + " bytes is larger than the " + storage.maxEntryBytes()
                    + " bytes a data file can hold";
            }
        }
        return null;
    }

    /** Queues a proposal for the driver thread, which runs it with the append's deadline (nanoTime) from then. */
    private void submit(CompletableFuture<AppendResult> f, LongConsumer propose) {
        Input in = new Input() {
            @Override
            public void run() {
                propose.accept(clock.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.appendTimeoutMs()));
            }

            @Override
            public void abort() {
                f.complete(AppendResult.of(AppendResult.Status.STOPPED, null));
            }
        };
        if (!post(in)) {
            f.complete(AppendResult.of(running && !failed ? AppendResult.Status.OVERLOADED : AppendResult.Status.STOPPED, null));
        }
    }

    /** Refuses an append before anything else when too many are pending or the disk is full; whether it did. */
    private boolean refusedUpFront(CompletableFuture<AppendResult> f) {
        if (pending.size() >= options.maxPendingAppends()) {
            f.complete(AppendResult.of(AppendResult.Status.OVERLOADED, null));
            return true;
        }
        if (node.role() == Role.LEADER && storage.diskFull() != null) {
            f.complete(AppendResult.of(AppendResult.Status.DISK_FULL, null));
            return true;
        }
        return false;
    }

    private void proposeNow(List<byte[]> bodies, RequestId id, CompletableFuture<AppendResult> f, long deadline) {
        if (refusedUpFront(f)) {
            return;
        }
        if (id != null && node.role() == Role.LEADER) {
            if (!judgesRetries()) {
                waitingAppends.add(new WaitingAppend(bodies, id, deadline, f));
                return;
            }
            RequestDedup.Lookup seen = dedup.lookup(id, bodies.size(), clock.nanoTime());
            switch (seen.verdict()) {
                case APPLIED:
                    long[] unknown = new long[bodies.size()];
                    java.util.Arrays.fill(unknown, -1L);
                    f.complete(new AppendResult(AppendResult.Status.OK, seen.firstIndex(), seen.term(), unknown, null));
                    return;
                case IN_FLIGHT:
                    attach(seen.firstIndex(), seen.firstIndex() + bodies.size() - 1, seen.term(), f, deadline);
                    return;
                case UNKNOWN:
                    f.complete(AppendResult.of(AppendResult.Status.EXPIRED, node.leaderId()));
                    return;
                default:
                    break;
            }
        }
        ProposeResult r = node.propose(bodies, id);
        settle(r, bodies.size(), f, deadline);
        if (r.accepted() && id != null) {
            // Known at once, so that a retry taken in this same pass finds it.
            for (int i = 0; i < bodies.size(); i++) {
                dedup.logged(id.plus(i), r.index() + i, r.term());
            }
        }
    }

    private void proposeBuilt(EntryBuilder builder, CompletableFuture<AppendResult> f, long deadline) {
        if (refusedUpFront(f)) {
            return;
        }
        ProposeResult refused = node.proposalRefusal();
        if (refused != null) {
            settle(refused, 0, f, deadline);
            return;
        }
        List<byte[]> bodies;
        try {
            bodies = List.copyOf(builder.build(node.term()));
        } catch (RuntimeException e) {
            f.completeExceptionally(e);
            return;
        }
        String wrong = checkBodies(bodies);
        if (wrong != null) {
            f.completeExceptionally(new IllegalArgumentException(wrong));
            return;
        }
        ProposeResult r = node.propose(bodies, null);
        if (!r.accepted()) {
            // Nothing ran between the check and the proposal on this thread: the core broke its word.
            throw new IllegalStateException("a proposal the core would take was refused: " + r);
        }
        settle(r, bodies.size(), f, deadline);
    }

    /** An accepted proposal becomes pending until committed; a refused one completes with why. */
    private void settle(ProposeResult r, int count, CompletableFuture<AppendResult> f, long deadline) {
        switch (r.status()) {
            case ACCEPTED:
                pending.put(r.index(), new Pending(r.index(), r.index() + count - 1, r.term(), clock.nanoTime(),
                    deadline, f));
                break;
            case TRANSFERRING:
                f.complete(AppendResult.of(AppendResult.Status.TRANSFERRING, r.leaderHint()));
                break;
            default:
                f.complete(AppendResult.of(AppendResult.Status.NOT_LEADER, r.leaderHint()));
                break;
        }
    }

    /**
     * Whether this leader may judge retried appends: it applied every entry of earlier terms (everything up to where
     * its log ended when the driver first saw it lead), so the applied table knows all of them that will ever commit.
     */
    private boolean judgesRetries() {
        if (leaderTerm != node.term()) {
            leaderTerm = node.term();
            leaderStartIndex = node.lastIndex();
        }
        return node.appliedIndex() >= leaderStartIndex;
    }

    /** A retry of entries in the log at {@code [first, last]}: completes with the original's outcome. */
    private void attach(long first, long last, long term, CompletableFuture<AppendResult> f, long deadline) {
        Pending original = pending.get(first);
        if (original == null) {
            // The original's caller gave up (TIMEOUT) but the entries are still in the log: wait for them anew.
            pending.put(first, new Pending(first, last, term, clock.nanoTime(), deadline, f));
        } else if (original.lastIndex == last && original.term == term) {
            original.future.thenAccept(f::complete);
        } else {
            f.complete(AppendResult.of(AppendResult.Status.EXPIRED, node.leaderId()));
        }
    }

    /** Takes the appends that waited for this leader to catch up, or refuses them once it no longer leads. */
    private void releaseWaitingAppends() {
        if (waitingAppends.isEmpty()) {
            return;
        }
        if (node.role() != Role.LEADER) {
            for (WaitingAppend w : waitingAppends) {
                w.future().complete(AppendResult.of(AppendResult.Status.NOT_LEADER, node.leaderId()));
            }
            waitingAppends.clear();
        } else if (judgesRetries()) {
            List<WaitingAppend> ready = new ArrayList<>(waitingAppends);
            waitingAppends.clear();
            for (WaitingAppend w : ready) {
                proposeNow(w.bodies(), w.id(), w.future(), w.deadlineNanos());
            }
        }
    }

    /**
     * A linearizable read barrier: completes with an index once this node (the leader) confirmed its leadership and
     * applied everything committed before the call; state read afterwards is up to date. Fails with
     * {@link NotLeaderException} on a follower, and with a timeout after {@link NodeOptions#appendTimeoutMs()}.
     *
     * @param lease use the leader lease when it holds (no round trip; relies on bounded clock drift)
     */
    public CompletableFuture<Long> readIndex(boolean lease) {
        CompletableFuture<Long> f = new CompletableFuture<>();
        Input in = new Input() {
            @Override
            public void run() {
                long rid = nextReadId++;
                // The core's clock is behind real time by the ticks due and not replayed yet: its lease counts those
                // ticks too, or a leader late by a few ticks serves a read after a new leader may have been elected
                // (issue 16, B4). Otherwise the read takes a heartbeat round.
                boolean useLease = lease
                    && lateTicks(clock.nanoTime()) + options.raft().leaseTicks() < options.raft().electionTimeoutTicks();
                ProposeResult r = node.readIndex(rid, useLease);
                if (!r.accepted()) {
                    f.completeExceptionally(new NotLeaderException(r.leaderHint()));
                    return;
                }
                long deadline = clock.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.appendTimeoutMs());
                reads.put(rid, new PendingRead(deadline, f, new long[] {-1}));
            }

            @Override
            public void abort() {
                f.completeExceptionally(new IllegalStateException("node " + id + " stopped"));
            }
        };
        if (!post(in)) {
            f.completeExceptionally(new IllegalStateException("node " + id + " is overloaded or stopped"));
        }
        return f;
    }

    /**
     * A linearizable query: waits for a {@link #readIndex(boolean) read index}, then asks the state machine on the
     * driver thread, which by then applied everything committed before the call. Fails as {@link #readIndex} fails,
     * and with what {@link StateMachine#query(byte[])} throws.
     *
     * @param query the application's query
     * @param lease use the leader lease when it holds (see {@link #readIndex(boolean)})
     * @return the state machine's answer, possibly null
     */
    public CompletableFuture<byte[]> query(byte[] query, boolean lease) {
        return readIndex(lease).thenCompose(index -> call(() -> {
            try {
                return CompletableFuture.completedFuture(stateMachine.query(query));
            } catch (UnsupportedOperationException | IllegalArgumentException e) {
                // A refused query fails its caller, not the node; anything else is a state machine bug and stops it.
                return CompletableFuture.<byte[]>failedFuture(e);
            }
        })).thenCompose(answer -> answer);
    }

    /** Hands leadership to {@code target}; completes with the core's answer (ACCEPTED once TimeoutNow is due). */
    public CompletableFuture<ProposeResult> transferLeadership(String target) {
        return call(() -> node.transferLeadership(target));
    }

    /** Proposes adding a voter (one change at a time). The new peer's address must be known to the transport. */
    public CompletableFuture<ProposeResult> addVoter(String peer) {
        return call(() -> node.addVoter(peer));
    }

    /** Adds a voter once it has caught up ({@link RaftNode#stageVoter}); {@code address} is recorded, or null. */
    public CompletableFuture<ProposeResult> stageVoter(String peer, String address) {
        return call(() -> {
            ProposeResult r = node.stageVoter(peer, address);
            publishPeerAddresses();
            return r;
        });
    }

    /**
     * Adds a witness once it has caught up ({@link RaftNode#stageWitness}, issue 19); {@code address} is recorded, or
     * null.
     */
    public CompletableFuture<ProposeResult> stageWitness(String peer, String address) {
        return call(() -> {
            ProposeResult r = node.stageWitness(peer, address);
            publishPeerAddresses();
            return r;
        });
    }

    /** Turns a data member into a witness ({@link RaftNode#makeWitness}, issue 19). */
    public CompletableFuture<ProposeResult> makeWitness(String peer) {
        return call(() -> node.makeWitness(peer));
    }

    /** Removes a voter unless the reachable voters left would not form a quorum ({@link RaftNode#removeVoterKeepingQuorum}). */
    public CompletableFuture<ProposeResult> removeVoterKeepingQuorum(String peer) {
        return call(() -> node.removeVoterKeepingQuorum(peer));
    }

    /**
     * Receives, on the node's thread, every peer this node talks to whenever that changes, and once at once: the
     * voters in force ({@link RaftNode#membership()}, with the addresses the group recorded) plus, on a leader, the
     * peer being caught up ({@link RaftNode#stagedPeer()}). The transport's owner points its peer table at them before
     * any message to a new peer leaves. Must not block.
     */
    public void onPeers(java.util.function.Consumer<Membership> listener) {
        call(() -> {
            peerListener = listener;
            lastPeers = null;
            publishPeerAddresses();
            return null;
        });
    }

    /** The voters now in force (may include ones whose removal has not committed yet). */
    public CompletableFuture<Membership> membership() {
        return call(node::membership);
    }

    private void publishPeerAddresses() {
        java.util.function.Consumer<Membership> l = peerListener;
        if (l == null) {
            return;
        }
        Membership now = node.membership();
        if (node.stagedPeer() != null && !now.contains(node.stagedPeer())) {
            now = now.with(node.stagedPeer(), node.stagedAddress());
        }
        if (!now.equals(lastPeers)) {
            lastPeers = now;
            l.accept(now);
        }
    }

    /** Proposes removing a voter (one change at a time). */
    public CompletableFuture<ProposeResult> removeVoter(String peer) {
        return call(() -> node.removeVoter(peer));
    }

    /** Reads the entry at {@code index} from this node's log, committed or not; null when not held. */
    public CompletableFuture<Entry> get(long index) {
        return call(() -> {
            if (index < storage.log().firstIndex() || index > storage.log().lastIndex()) {
                return null;
            }
            return storage.log().entries(index, index + 1, Long.MAX_VALUE).get(0);
        });
    }

    private <T> CompletableFuture<T> call(java.util.function.Supplier<T> work) {
        CompletableFuture<T> f = new CompletableFuture<>();
        Input in = new Input() {
            @Override
            public void run() {
                f.complete(work.get());
            }

            @Override
            public void abort() {
                f.completeExceptionally(new IllegalStateException("node " + id + " stopped"));
            }
        };
        if (!post(in)) {
            f.completeExceptionally(new IllegalStateException("node " + id + " is overloaded or stopped"));
        }
        return f;
    }

    private boolean post(Input r) {
        if (running && !failed && inbox.offer(r)) {
            loop.wake();
            return true;
        }
        return false;
    }

    // ------------------------------------------------------------------------------------------------------------
    // The driver loop

    /**
     * One pass of the driver, on its loop thread: take queued inputs, tick when due, handle what the core made
     * ready.
     *
     * @return whether anything was done
     */
    boolean pass(long now) {
        if (stopped) {
            return false;
        }
        boolean worked = false;
        blockingPassWanted = false;
        try {
            catchUpClock(now);
            worked = collectSynced();
            Input in;
            int taken = 0;
            while (taken < 4096 && (in = inbox.poll()) != null) {
                // The process may have stood still since the pass began: an input that arrived after a pause
                // (a lease read, above all) must see the clock moved on.
                catchUpClock(clock.nanoTime());
                in.run();
                taken++;
                if (stopped) {
                    return true;
                }
            }
            worked |= taken > 0;
            if (now - nextTick >= 0) {
                node.tick();
                nextTick += tickNanos;
                expire(now);
                worked = true;
            }
            if (now - nextRetain >= 0) {
                nextRetain = now + RETAIN_INTERVAL_NANOS;
                // With snapshots the log must keep what the last one does not cover; without, what is not applied.
                boolean snapshots = stateMachine.canSnapshot() && options.snapshotThreshold() > 0;
                storage.retain(snapshots ? lastSnapshotIndex : node.appliedIndex(), node::membershipAt);
            }
            if (blockingWork != null && loop.onLoopThread() && node.hasReady() && blockingWorkDue()) {
                // The Ready blocks: the event loop hands this node's pass to its blocking-work thread and goes on
                // with its other work; the Ready is handled there in full, in order (persist, send, apply).
                blockingPassWanted = true;
                return true;
            }
            boolean yielded = false;
            if (node.hasReady()) {
                yielded = handleReady();
                worked = true;
            }
            releaseWaitingAppends();
            if (!yielded && node.hasReady()) {
                handleReady();
            }
            if (worked) {
                publishStatus();
            }
        } catch (StorageException e) {
            log.error("[{} {} t{}] storage failed, node stops: {}", group, id, node.term(), e.getMessage(), e);
            stop(true);
        } catch (RuntimeException | Error e) {
            log.error("[{} {} t{}] driver failed, node stops", group, id, node.term(), e);
            stop(true);
        }
        return worked;
    }

    /**
     * Keeps the core's clock within {@link #MAX_LATE_TICKS} ticks of real time, on the loop thread. Ticks late by more
     * than that (the loop thread was starved, or the process stood still: a long GC, SIGSTOP, a stalled disk) are
     * not replayed as a burst; the core is told that it skipped them ({@link RaftNode#skipTicks}), so that its
     * leader lease does not outlive the pause, and the next tick is due at once.
     */
    private void catchUpClock(long now) {
        long late = now - nextTick;
        if (late > MAX_LATE_TICKS * tickNanos) {
            long skipped = late / tickNanos;
            node.skipTicks(skipped);
            nextTick = now;
            if (skipped >= options.raft().electionTimeoutTicks()) {
                log.warn("[{} {} t{}] the node stood still for {} ms (a pause or a starved thread): {} ticks skipped",
                    group, id, node.term(), TimeUnit.NANOSECONDS.toMillis(late), skipped);
            }
        }
    }

    /** Whether the next Ready writes the term or vote, or may take a snapshot: work that blocks on a disk. */
    private boolean blockingWorkDue() {
        return node.hardStateChanged() || (stateMachine.canSnapshot() && options.snapshotThreshold() > 0
            && node.commitIndex() - lastSnapshotIndex >= options.snapshotThreshold());
    }

    /** Whether the last pass stopped before a Ready that blocks, to be handled by {@link #passOffLoop}. */
    boolean wantsBlockingPass() {
        return blockingPassWanted;
    }

    /** Whether a pass runs off the event loop now: the loop must not pass this node meanwhile. */
    boolean offLoop() {
        return offLoop;
    }

    /**
     * Runs the next pass on this node's blocking-work thread, then {@code after} (which wakes the event loop). Only
     * one pass of the node runs at a time: the loop skips the node while {@link #offLoop()}.
     */
    void passOffLoop(Runnable after) {
        offLoop = true;
        try {
            blockingWork.execute(() -> {
                try {
                    pass(clock.nanoTime());
                } finally {
                    offLoop = false;
                    after.run();
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // Closed: the node is stopping.
            offLoop = false;
        }
    }

    /** The ticks due at {@code now} and not given to the core yet (0 when none is due). */
    private long lateTicks(long now) {
        long late = now - nextTick;
        return late < 0 ? 0 : late / tickNanos + 1;
    }

    /** The time on this node's clock, for its loop's passes. */
    long now() {
        return clock.nanoTime();
    }

    /** Nanoseconds until this node's next tick is due. */
    long nanosToNextTick(long now) {
        return nextTick - now;
    }

    /** Stops on the loop thread: no more inputs, every pending future completed. */
    private void stop(boolean failure) {
        if (stopped) {
            return;
        }
        // Failure first, then the status, then the futures: whoever sees a future completed sees why.
        failed = failure;
        stopped = true;
        running = false;
        publishStatus();
        loop.remove(this);
        failAll();
    }

    /**
     * Hands the core's Readys in order, each in full, until none is left, or until one applied entries and more
     * committed entries wait to be applied. A Ready applies at most the core's maxApplyBytes; a backlog of many of
     * them (a restarted node applies its whole log again when it has no snapshot) is applied one batch per pass, so
     * that the node keeps ticking and answering in between instead of standing still until all is applied.
     *
     * @return whether it stopped with more to apply (the next pass, which comes at once, goes on)
     */
    private boolean handleReady() {
        while (node.hasReady()) {
            Ready rd = node.ready();
            // The peers' addresses before any message of this Ready leaves: a configuration entry appended or received
            // since the last pass may name a peer the transport does not know yet.
            publishPeerAddresses();
            // 1. Durable state first: nothing below is sent before it is stored (Ready's contract).
            if (rd.hardState() != null) {
                if (id.equals(rd.hardState().votedFor()) && rd.hardState().term() > electionTerm) {
                    // A candidate persists its new term with its vote for itself first (Raft §5.2): one election.
                    electionTerm = rd.hardState().term();
                    electionsStarted.incrementAndGet();
                }
                storage.saveHardState(rd.hardState());
            }
            if (rd.role() == Role.LEADER) {
                judgesRetries();
            } else {
                // Transfers of a leadership that ended are dropped with it.
                snapshots.reset();
            }
            if (rd.snapshot() != null) {
                snapshotsInstalled.incrementAndGet();
                ReceivedSnapshot received = receivedSnapshot;
                if (received == null || received.snapshot() != rd.snapshot()) {
                    throw new IllegalStateException("snapshot " + rd.snapshot().index() + "@" + rd.snapshot().term()
                        + " to install, but the bytes held are " + (received == null ? "none" : "those of "
                        + received.snapshot().index() + "@" + received.snapshot().term() + " from " + received.leader()
                        + " in term " + received.term()));
                }
                receivedSnapshot = null;
                byte[] bytes = received.data();
                storage.installSnapshot(rd.snapshot(), bytes);
                // A snapshot that only says where the log goes on holds the state machine's image, or nothing (it
                // then starts empty).
                restoreSnapshot(rd.snapshot().index(), bytes);
                lastSnapshotIndex = rd.snapshot().index();
                positions.clear();
                durableIndex = rd.snapshot().index();
                dropHeldAcksAbove(durableIndex);
            }
            if (rd.truncateFrom() >= 0) {
                storage.truncateSuffix(rd.truncateFrom());
                dedup.truncated(rd.truncateFrom());
                positions.keySet().removeIf(i -> i >= rd.truncateFrom());
                // Acknowledgements of removed entries can never be honoured: the entries will not become durable.
                durableIndex = Math.min(durableIndex, rd.truncateFrom() - 1);
                dropHeldAcksAbove(durableIndex);
            }
            if (!rd.entries().isEmpty()) {
                long[] pos = storage.append(rd.entries());
                dedup.logged(rd.entries());
                if (rd.role() == Role.LEADER || !pending.isEmpty()) {
                    for (int i = 0; i < pos.length; i++) {
                        positions.put(rd.entries().get(i).index(), pos[i]);
                    }
                }
                if (!pending.isEmpty()) {
                    long now = clock.nanoTime();
                    long lo = rd.entries().get(0).index();
                    long hi = rd.entries().get(rd.entries().size() - 1).index();
                    for (Pending p : pending.subMap(lo, true, hi, true).values()) {
                        storeLatencySeconds.accept((now - p.startNanos) / 1e9);
                    }
                }
            }
            if (rd.truncateFrom() >= 0 || !rd.entries().isEmpty()) {
                if (syncer != null) {
                    long last = storage.log().lastIndex();
                    unsynced.addLast(new long[] {++writes, last, storage.log().term(last)});
                    syncer.request(writes);
                } else {
                    durableIndex = storage.log().lastIndex();
                }
            }
            // 2. Then the messages that depend on it; acknowledgements of what is not durable yet wait for the sync.
            for (Message m : rd.messages()) {
                if (syncer != null && ackIndex(m) > durableIndex) {
                    heldAcks.add(m);
                } else {
                    send(m);
                }
            }
            // 3. Then apply.
            apply(rd.committedEntries());
            for (ReadState rs : rd.readStates()) {
                PendingRead r = reads.remove(rs.requestId());
                if (r != null) {
                    r.index()[0] = rs.index();
                    confirmedReads.add(r);
                }
            }
            node.advance(rd, syncer == null);
            // A witness drops the bodies every data member holds (issue 19, the drop rule on Membership), once applied.
            long drop = Math.min(node.witnessDropIndex(), node.appliedIndex());
            if (drop > storage.log().droppedBodiesThrough()) {
                storage.dropBodiesThrough(drop);
            }
            serveReads();
            // The checkpoint never covers entries not durable here: after a power loss the log could hold older
            // entries at those indexes (their truncation unsynced too), and a restart would apply them as committed.
            long checkpoint = Math.min(rd.commitIndex(), durableIndex);
            if (checkpoint > lastCheckpoint) {
                storage.checkpointCommit(checkpoint);
                lastCheckpoint = checkpoint;
            }
            maybeSnapshot();
            if (!rd.committedEntries().isEmpty() && node.appliedIndex() < node.commitIndex()) {
                return true;
            }
        }
        return false;
    }

    private void send(Message m) {
        if (m instanceof InstallSnapshotRequest s) {
            snapshotsSent.incrementAndGet();
            byte[] data = storage.snapshotData();
            if (SnapshotPosition.isPosition(data)) {
                // A log compacted by retention: the state machine's current image goes with the position (on the
                // apply thread, so it is the state after exactly what was applied).
                data = SnapshotPosition.encode(SnapshotPosition.decode(data), stateMachine.retainedImage());
            }
            snapshots.send(s, data);
        } else {
            transport.send(group, m);
        }
    }

    /** The index a message tells its receiver is stored here, or -1 when it claims nothing. */
    private static long ackIndex(Message m) {
        if (m instanceof AppendEntriesResponse r) {
            return r.success() ? r.matchIndex() : -1;
        }
        if (m instanceof InstallSnapshotResponse r) {
            return r.matchIndex();
        }
        return -1;
    }

    private void dropHeldAcksAbove(long index) {
        heldAcks.removeIf(m -> ackIndex(m) > index);
    }

    /**
     * Takes what the syncer finished: tells the core how far the log is durable and sends the acknowledgements that
     * waited for it.
     *
     * @return whether anything was done
     * @throws StorageException if a sync failed
     */
    private boolean collectSynced() {
        if (syncer == null) {
            return false;
        }
        RuntimeException failure = syncer.failure();
        if (failure != null) {
            throw failure instanceof StorageException se ? se
                : new StorageException("log sync failed: " + failure.getMessage(), failure);
        }
        long synced = syncer.synced();
        if (synced <= syncedWrites) {
            return false;
        }
        syncedWrites = synced;
        long[] last = null;
        while (!unsynced.isEmpty() && unsynced.peekFirst()[0] <= synced) {
            last = unsynced.pollFirst();
        }
        if (last == null) {
            return true;
        }
        long index = last[1];
        long term = last[2];
        // The write is still this log's only if the entry it ended with is still there (log matching); a later
        // truncation removed it otherwise, and the sync that covers the replacement reports it.
        if (index > durableIndex && index <= storage.log().lastIndex() && index >= storage.log().firstIndex()
            && storage.log().term(index) == term) {
            durableIndex = index;
        }
        node.logDurable(index, term);
        sendHeldAcks();
        return true;
    }

    /** Sends the held acknowledgements that the durable log now covers. */
    private void sendHeldAcks() {
        Iterator<Message> it = heldAcks.iterator();
        while (it.hasNext()) {
            Message m = it.next();
            if (ackIndex(m) <= durableIndex) {
                it.remove();
                send(m);
            }
        }
    }

    private void apply(List<Entry> committed) {
        if (committed.isEmpty()) {
            return;
        }
        stateMachine.apply(committed);
        long now = clock.nanoTime();
        for (Entry e : committed) {
            dedup.applied(e, now);
        }
        long last = committed.get(committed.size() - 1).index();
        if (!pending.isEmpty() && pending.firstKey() <= last) {
            // Whoever sees an append acknowledged sees a status with it committed.
            publishStatus();
        }
        Iterator<Map.Entry<Long, Pending>> it = pending.entrySet().iterator();
        while (it.hasNext()) {
            Pending p = it.next().getValue();
            if (p.firstIndex > last) {
                break;
            }
            if (p.lastIndex > last) {
                continue;
            }
            it.remove();
            // The batch's last entry decides for all of it: same index and term means the same leader's entries up
            // to there (log matching). It is in this batch when the append waited since before the previous apply;
            // a retry attached later may name entries applied before this batch: the log still has their term.
            long first = committed.get(0).index();
            long lastTerm = p.lastIndex >= first ? committed.get((int) (p.lastIndex - first)).term()
                : storage.log().term(p.lastIndex);
            if (lastTerm == -1) {
                // Compacted away: whether these were the entries committed there cannot be told any more.
                p.future.complete(AppendResult.of(AppendResult.Status.EXPIRED, node.leaderId()));
            } else if (lastTerm != p.term) {
                p.future.complete(AppendResult.of(AppendResult.Status.LOST, node.leaderId()));
            } else {
                long[] pos = new long[(int) (p.lastIndex - p.firstIndex + 1)];
                for (int i = 0; i < pos.length; i++) {
                    pos[i] = positions.getOrDefault(p.firstIndex + i, -1L);
                }
                appendLatencySeconds.accept((clock.nanoTime() - p.startNanos) / 1e9);
                p.future.complete(new AppendResult(AppendResult.Status.OK, p.firstIndex, p.term, pos, null));
            }
        }
        positions.headMap(last + 1).clear();
    }

    private void serveReads() {
        Iterator<PendingRead> it = confirmedReads.iterator();
        while (it.hasNext()) {
            PendingRead r = it.next();
            if (node.appliedIndex() >= r.index()[0]) {
                it.remove();
                r.future().complete(r.index()[0]);
            }
        }
    }

    private void maybeSnapshot() {
        if (!stateMachine.canSnapshot() || options.snapshotThreshold() <= 0
            || node.appliedIndex() - lastSnapshotIndex < options.snapshotThreshold()) {
            return;
        }
        if (node.membership().isWitness(id) && node.appliedIndex() > node.witnessDropIndex()) {
            // A witness compacts only what every data member holds (issue 19): it never sends a snapshot (its state
            // saw dropped bodies), so a data member behind it must find the entries in its log.
            return;
        }
        long index = node.appliedIndex();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            stateMachine.snapshot(index, out);
        } catch (IOException e) {
            throw new StorageException("snapshot at " + index + " failed: " + e.getMessage(), e);
        }
        long term = storage.log().term(index);
        // The request table goes with the state: a node that restarts from this snapshot, or installs it, still
        // recognizes retries of the entries it covers (issue 16, B2).
        storage.saveSnapshot(new SnapshotMeta(index, term, node.membershipAt(index)),
            NodeSnapshot.encode(dedup.encode(), out.toByteArray()));
        lastSnapshotIndex = index;
        if (syncer != null && index > durableIndex) {
            // Applied entries may not be synced here yet (a quorum of others committed them). The snapshot is durable
            // and replaces the log up to its index, so that much is durable now, and a sync of the dropped entries
            // can no longer report them.
            durableIndex = index;
            node.logDurable(index, term);
            sendHeldAcks();
        }
        log.info("[{} {} t{}] snapshot at {}", group, id, node.term(), index);
    }

    /** Restores the state machine and the request table from a node snapshot's bytes (see {@link NodeSnapshot}). */
    private void restoreSnapshot(long index, byte[] data) {
        NodeSnapshot snap;
        try {
            snap = NodeSnapshot.decode(data);
            dedup.restore(snap.table(), clock.nanoTime());
        } catch (IllegalArgumentException e) {
            throw new StorageException("restoring snapshot " + index + " failed: " + e.getMessage(), e);
        }
        try {
            stateMachine.restore(index, new ByteArrayInputStream(snap.stateMachine()));
        } catch (IOException e) {
            throw new StorageException("restoring snapshot " + index + " failed: " + e.getMessage(), e);
        }
    }

    private void expire(long now) {
        Iterator<Map.Entry<Long, Pending>> it = pending.entrySet().iterator();
        while (it.hasNext()) {
            Pending p = it.next().getValue();
            if (now - p.deadlineNanos >= 0) {
                it.remove();
                p.future.complete(AppendResult.of(AppendResult.Status.TIMEOUT, node.leaderId()));
            }
        }
        waitingAppends.removeIf(w -> {
            boolean late = now - w.deadlineNanos() >= 0;
            if (late) {
                // Nothing was appended: a definite refusal the client may retry.
                w.future().complete(AppendResult.of(AppendResult.Status.OVERLOADED, node.leaderId()));
            }
            return late;
        });
        reads.values().removeIf(r -> {
            boolean late = now - r.deadlineNanos() >= 0;
            if (late) {
                r.future().completeExceptionally(new java.util.concurrent.TimeoutException("read not confirmed"));
            }
            return late;
        });
    }

    private void failAll() {
        for (Pending p : pending.values()) {
            p.future.complete(AppendResult.of(AppendResult.Status.STOPPED, null));
        }
        pending.clear();
        for (WaitingAppend w : waitingAppends) {
            w.future().complete(AppendResult.of(AppendResult.Status.STOPPED, null));
        }
        waitingAppends.clear();
        for (PendingRead r : reads.values()) {
            r.future().completeExceptionally(new IllegalStateException("node " + id + " stopped"));
        }
        reads.clear();
        for (PendingRead r : confirmedReads) {
            r.future().completeExceptionally(new IllegalStateException("node " + id + " stopped"));
        }
        confirmedReads.clear();
        Input r;
        while ((r = inbox.poll()) != null) {
            // Inputs left in the queue were never taken: appends among them were not proposed.
            r.abort();
        }
    }

    /**
     * Calls {@code listener} with the new status whenever this node's role, term or leader changes (and once now).
     * It runs on the driver thread: it must return quickly and hand any real work to a thread of its own.
     */
    public void onRoleChange(java.util.function.Consumer<NodeStatus> listener) {
        roleListeners.add(listener);
        listener.accept(status);
    }

    private void publishStatus() {
        NodeStatus before = status;
        status = new NodeStatus(group, id, node.role(), node.term(), node.leaderId(), node.lastIndex(),
            node.commitIndex(), node.appliedIndex(), node.membership().voters(), node.progress(), failed);
        if (before != null && (before.role() != status.role() || before.term() != status.term()
            || !Objects.equals(before.leaderId(), status.leaderId()) || before.failed() != status.failed())) {
            for (java.util.function.Consumer<NodeStatus> l : roleListeners) {
                try {
                    l.accept(status);
                } catch (RuntimeException e) {
                    log.warn("[{} {}] role listener failed", group, id, e);
                }
            }
        }
    }

    /**
     * Stops the node and unregisters it from the transport; pending appends complete with STOPPED. The storage is
     * closed once the driver thread let go of it.
     */
    @Override
    public void close() {
        transport.unregister(group);
        java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
        Input shutdown = () -> {
            stop(failed);
            done.countDown();
        };
        if (loop.onLoopThread() || loop.dead()) {
            // A dead loop (its transport closed first, which waits for its threads to end) runs no pass any more.
            shutdown.run();
        } else if (!stopped) {
            // Not through post(): it refuses inputs of a stopped node, and a full queue must not block the stop.
            boolean queued = !stopped && inbox.offer(shutdown);
            loop.wake();
            try {
                if (loop.dead()) {
                    shutdown.run();
                } else if (!queued || !done.await(5, TimeUnit.SECONDS)) {
                    log.warn("[{} {}] driver did not stop in time", group, id);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        running = false;
        if (blockingWork != null) {
            blockingWork.shutdown();
        }
        if (syncer != null) {
            syncer.close();
        }
        storage.close();
        if (ownLoops != null) {
            ownLoops.close();
        }
    }
}
