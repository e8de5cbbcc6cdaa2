package dev.dledger.raft.server;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.InitialState;
import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.ProposeResult;
import dev.dledger.raft.core.RaftNode;
import dev.dledger.raft.core.Ready;
import dev.dledger.raft.core.ReadyHandler;
import dev.dledger.raft.core.ReadState;
import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.IoThread;
import dev.dledger.raft.transport.SnapshotChunk;
import dev.dledger.raft.transport.Transport;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
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
 *
 * <p>This class owns the thread, the inbox and the pass ({@link #pass}); each concern lives in a package-private
 * collaborator with its own contract, all touched on the driver thread only:
 * <ul>
 *   <li>the Ready sequence: {@link ReadyHandler#handle} runs this driver's steps (an inner class) in the contract's
 *   order;</li>
 *   <li>{@link DurableLog}: how far the log is durable with a background sync, and the acknowledgements held until
 *   then;</li>
 *   <li>{@link ClientAppends}: the client request path, refusals and retries judged against the request table
 *   ({@link RequestDedup}) before a proposal;</li>
 *   <li>{@link PendingAppends}: the appends taken and not answered yet, answered once applied;</li>
 *   <li>{@link PendingReads}: linearizable reads from asked to served;</li>
 *   <li>{@link StateSnapshots}: snapshots of the applied state, taken, restored, installed and sent, with
 *   {@link SnapshotTransfers} moving them in chunks;</li>
 *   <li>{@link PeerAddresses}: the peers the transport must know (membership commands go to the core);</li>
 *   <li>{@link StatusPublisher} and {@link NodeCounters}: status, role listeners and counts.</li>
 * </ul>
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
    /** The appends taken and not answered yet (client request path). */
    private final PendingAppends pending;
    /** The linearizable reads on their way. */
    private final PendingReads reads = new PendingReads();
    /** The snapshots of the applied state: taken, restored, installed from a leader, sent to followers. */
    private final StateSnapshots stateSnapshots;
    private long lastCheckpoint = -1;
    /** Whether the application could serve at once if this node led ({@link #leadReadiness}); asked at each tick. */
    private volatile BooleanSupplier leadReadiness;
    /** Whether proposals are on their way that an announced transfer should wait for ({@link #handOverHold}). */
    private volatile BooleanSupplier handOverHold;
    private volatile boolean running = true;
    /** Set by {@link #close()}: the next pass stops the node, whatever its queue holds. */
    private volatile boolean closeRequested;
    /** Set by the first {@link #close()}: a second one does nothing. */
    private final java.util.concurrent.atomic.AtomicBoolean closing = new java.util.concurrent.atomic.AtomicBoolean();
    /** Held by a pass: a close() on another thread stops the node only between passes. */
    private final java.util.concurrent.locks.ReentrantLock passLock = new java.util.concurrent.locks.ReentrantLock();
    /** The thread running a pass of this node now (the loop's, or the blocking-work one's), or null. */
    private volatile Thread passThread;
    /** Set by a {@link #close()} called inside a pass: the pass releases the storage when it returns. */
    private boolean releaseAfterPass;
    /** Counted down once the node stopped on its driver: from then on no pass touches the storage. */
    private final java.util.concurrent.CountDownLatch stoppedOnDriver = new java.util.concurrent.CountDownLatch(1);
    private volatile boolean failed;
    private volatile boolean stopped;
    /** The published status and the role listeners. */
    private final StatusPublisher statusPublisher;
    /** The peers this node talks to, for the transport's owner. */
    private final PeerAddresses peerAddresses = new PeerAddresses();
    /** Elections this node started (it became a candidate), snapshots it sent and installed; see {@link #counters}. */
    private final NodeCounters counters;
    /** How far the log is durable (the background fsync of {@link FlushMode#SYNC}) and the acks that wait for it. */
    private final DurableLog durable;
    /** Client request ids applied here and in the log here: how a leader recognizes a retried append. */
    private final RequestDedup dedup = new RequestDedup();
    /** The client request path: refusals, retries judged against the request table, proposals. */
    private final ClientAppends clientAppends;
    /** This driver's steps of the Ready sequence. */
    private final ReadyHandler readyHandler = new DriverReadyHandler();

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
     * Creates and starts a node on shared driver threads (multi-raft); with {@link FlushMode#SYNC} its syncs run on the
     * loops' shared fsync threads when they have them ({@link RaftLoops#ports()}).
     *
     * @param loops the shared driver threads, or null for a thread of its own
     */
    public RaftGroupNode(NodeOptions options, Membership bootstrap, NodeStorage storage, StateMachine stateMachine,
                         Transport transport, RaftLoops loops) {
        this(options, bootstrap, storage, stateMachine, transport, loops,
            loops == null ? DriverPorts.production() : loops.ports());
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
        this.statusPublisher = new StatusPublisher(group, id, log);
        this.pending = new PendingAppends(clock);
        this.counters = new NodeCounters(id, storage.hardState().term());
        this.storage = storage;
        this.stateMachine = stateMachine;
        this.transport = transport;
        this.inbox = new ArrayBlockingQueue<>(options.maxQueuedInputs());
        if (options.flush() == FlushMode.SYNC) {
            // What the log holds at start counts as durable (the core assumes so): make it true.
            storage.sync();
        }
        long durableAtStart = storage.log().lastIndex();
        SnapshotMeta snap = storage.log().snapshot();
        this.stateSnapshots = new StateSnapshots(storage, stateMachine, dedup, clock, options.snapshotThreshold());
        // The state machine and the request table as of the snapshot.
        stateSnapshots.restoreAtStart();
        // A state machine that keeps its own state is replayed from where it holds it (the core bounds this by the
        // commit index): a broker's commit log, whose messages are in their files, need not read its history again.
        long appliedAtStart = Math.max(snap.index(), stateMachine.durableThrough());
        // After a restart (a term on disk) the node keeps quiet for an election timeout: see leaseQuietTicks.
        InitialState initial = new InitialState(storage.hardState(), bootstrap, storage.configEntries(),
            storage.committedCheckpoint(), appliedAtStart,
            storage.hardState().term() > 0 ? options.raft().electionTimeoutTicks() : 0);
        SplittableRandom random = new SplittableRandom(options.randomSeed());
        this.node = new RaftNode(options.raft(), storage.log(), initial, random::nextInt,
            new Slf4jCoreLog(ports.loggers().apply(Slf4jCoreLog.CORE_LOGGER), group, id,
                () -> statusPublisher.status() == null ? 0 : statusPublisher.status().term()));
        this.clientAppends = new ClientAppends(node, storage, options, clock, pending, dedup);
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
        LogSyncer syncer = options.flush() == FlushMode.SYNC
            ? ports.syncers().start("sync-" + group + "-" + id, storage, loop::wake) : null;
        this.durable = new DurableLog(syncer, durableAtStart);
        this.snapshots = new SnapshotTransfers(group, id, transport, options.snapshotChunkBytes(), clock::nanoTime,
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
        pending.recordCommitLatency(seconds);
    }

    /**
     * Receives, on the node's thread, the seconds from each append's arrival at the leader until its entries are
     * written to the leader's own log (before the quorum and before any fsync of {@code flush=sync}); must not block.
     */
    public void recordAppendLatency(java.util.function.DoubleConsumer seconds) {
        pending.recordStoreLatency(seconds);
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
        return counters.snapshot();
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
        return statusPublisher.status();
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
            // Only the bytes of the request the core accepted, bound to its snapshot: a stale one (a deposed
            // leader's) or one the core answered without installing never takes the slot (issue 16, B1).
            stateSnapshots.offered(s, before, node.pendingSnapshot());
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
        String wrong = ClientAppends.checkBodies(bodies, storage.maxEntryBytes());
        if (wrong != null) {
            f.completeExceptionally(new IllegalArgumentException(wrong));
            return f;
        }
        submit(f, deadline -> clientAppends.proposeNow(bodies, firstId, f, deadline));
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
        submit(f, deadline -> clientAppends.proposeBuilt(builder, f, deadline));
        return f;
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
                long rid = reads.nextId();
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
                reads.asked(rid, deadline, f);
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
        return readIndex(lease).thenCompose(index -> callForFuture(() -> {
            try {
                return CompletableFuture.completedFuture(stateMachine.query(query));
            } catch (UnsupportedOperationException | IllegalArgumentException e) {
                // A refused query fails its caller, not the node; anything else is a state machine bug and stops it.
                return CompletableFuture.<byte[]>failedFuture(e);
            }
        }));
    }

    /**
     * Hands leadership to {@code target}, announced a heartbeat interval before the transfer starts
     * ({@link dev.dledger.raft.core.RaftNode#announceTransfer}); completes with the core's answer.
     */
    public CompletableFuture<ProposeResult> transferLeadership(String target) {
        return call(() -> node.announceTransfer(target));
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

    /**
     * Turns a witness into a data member online ({@link RaftNode#promoteWitness}, issue 19): it is removed from the
     * voters, its log replaced by a snapshot taken for it and caught up, then added back as a data member; ask again
     * until ACCEPTED. Refused (INVALID_CONFIG_CHANGE) where the state machine takes no snapshots: the witness's log
     * lacks the bodies it dropped, and only a snapshot replaces them.
     */
    public CompletableFuture<ProposeResult> promoteWitness(String peer) {
        return call(() -> {
            if (!canPromoteWitnesses()) {
                log.warn("[{} {}] witness {} not promoted: this node's state machine takes no snapshots, and only a "
                    + "snapshot replaces the bodies a witness dropped", group, id, peer);
                return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, node.term(), null);
            }
            return node.promoteWitness(peer);
        });
    }

    /** Whether this node's state machine takes snapshots, without which no witness can be promoted here. */
    public boolean canPromoteWitnesses() {
        return stateSnapshots.canSnapshot();
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
            peerAddresses.listen(listener);
            publishPeerAddresses();
            return null;
        });
    }

    /** The voters now in force (may include ones whose removal has not committed yet). */
    public CompletableFuture<Membership> membership() {
        return call(node::membership);
    }

    private void publishPeerAddresses() {
        peerAddresses.publish(node);
    }

    /**
     * Sets what tells whether the application could serve at once if this node led now (a broker: nothing left to
     * dispatch). Asked on the driver at each tick while this node is its group's preferred leader and follows; the
     * leader hands it the leadership only while it says yes (issue 18). Unset, only the core's own test counts (its
     * applied index within a message of its commit index). Must be quick and must not block.
     */
    public void leadReadiness(BooleanSupplier readiness) {
        this.leadReadiness = readiness;
    }

    /**
     * Tells this node whether proposals are on their way from clients that were let through before a hand-over was
     * announced (asked at the start of each pass while it leads, on the driver's thread; a cheap, non-blocking read):
     * an announced transfer waits for them, an election timeout at most ({@link RaftNode#setHandOverHeld}). A broker
     * counts the sends it let through as master until their puts are proposed. Null (the default): never held.
     */
    public void handOverHold(BooleanSupplier onTheirWay) {
        handOverHold = onTheirWay;
    }

    private void askLeadReadiness() {
        BooleanSupplier readiness = leadReadiness;
        if (readiness != null && id.equals(options.raft().preferredLeader()) && node.role() != Role.LEADER) {
            node.setLeadReady(readiness.getAsBoolean());
        }
    }

    /** Proposes removing a voter (one change at a time). */
    public CompletableFuture<ProposeResult> removeVoter(String peer) {
        return call(() -> node.removeVoter(peer));
    }

    /**
     * Reads the entry at {@code index} from this node's log, committed or not; null when not held. On a witness, a
     * NORMAL entry whose body it dropped fails the future with {@link IllegalStateException} ("body dropped on
     * witness"), never with other bytes.
     */
    public CompletableFuture<Entry> get(long index) {
        return callForFuture(() -> {
            if (index < storage.log().firstIndex() || index > storage.log().lastIndex()) {
                return CompletableFuture.<Entry>completedFuture(null);
            }
            Entry e = storage.log().entries(index, index + 1, Long.MAX_VALUE).get(0);
            if (e.type() == EntryType.NORMAL && index <= storage.log().droppedBodiesThrough()) {
                // Fails the caller, not the node: a witness asked for a body it no longer keeps.
                return CompletableFuture.<Entry>failedFuture(new IllegalStateException("[" + group + " " + id
                    + "] entry " + index + ": body dropped on witness (bodies through "
                    + storage.log().droppedBodiesThrough() + " may be gone; a data member holds them)"));
            }
            return CompletableFuture.completedFuture(e);
        });
    }

    /** {@link #call} for work that answers with a future of its own: a refusal fails that future, not the node. */
    private <T> CompletableFuture<T> callForFuture(java.util.function.Supplier<CompletableFuture<T>> work) {
        return call(work).thenCompose(answer -> answer);
    }

    private <T> CompletableFuture<T> call(java.util.function.Supplier<T> work) {
        CompletableFuture<T> f = new CompletableFuture<>();
        Input in = new Input() {
            @Override
            public void run() {
                T result;
                try {
                    result = work.get();
                } catch (RuntimeException | Error e) {
                    // The driver fails and the node stops (the input is out of the inbox, so its stop would not abort
                    // it): the caller learns why instead of waiting for ever.
                    f.completeExceptionally(e);
                    throw e;
                }
                f.complete(result);
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
            if (stopped && inbox.remove(r)) {
                // The node stopped between the check and the offer, after its stop drained the queue: nobody would
                // ever take or abort this input. Refused here instead (when the drain took it, it was aborted).
                return false;
            }
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
        passLock.lock();
        try {
            passThread = Thread.currentThread();
            return passOnce(now);
        } finally {
            passThread = null;
            passLock.unlock();
            if (releaseAfterPass) {
                // close() was called inside this pass (a role listener, the state machine): the resources it left
                // open are released now that nothing of the pass touches them any more.
                releaseAfterPass = false;
                release(true);
            }
        }
    }

    private boolean passOnce(long now) {
        if (stopped) {
            return false;
        }
        if (closeRequested) {
            stop(failed);
            return true;
        }
        boolean worked = false;
        blockingPassWanted = false;
        try {
            catchUpClock(now);
            worked = durable.collect(storage.log(), node, this::send);
            // Asked before the inbox is drained: a proposal whose client was done by then is in the inbox now, and is
            // taken below, before the tick that may start an announced transfer.
            BooleanSupplier hold = handOverHold;
            boolean held = hold != null && node.role() == Role.LEADER && hold.getAsBoolean();
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
                askLeadReadiness();
                if (hold != null) {
                    // Inputs left in the inbox may hold such proposals too.
                    node.setHandOverHeld(held || taken >= 4096);
                }
                node.tick();
                nextTick += tickNanos;
                expire(now);
                snapshots.resendStalled(now, options.raft().electionTimeoutTicks() * tickNanos, node::progress);
                worked = true;
            }
            if (now - nextRetain >= 0) {
                nextRetain = now + RETAIN_INTERVAL_NANOS;
                // With snapshots the log must keep what the last one does not cover; without, what is not applied.
                storage.retain(stateSnapshots.enabled() ? stateSnapshots.lastIndex() : node.appliedIndex(),
                    node::membershipAt);
            }
            if (onEventLoopWithBlockingWork() && node.hasReady() && blockingWorkDue()) {
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
            clientAppends.releaseWaitingAppends();
            if (!yielded && node.hasReady()) {
                handleReady();
            }
            if (blockingWork != null && !loop.onLoopThread()) {
                // The pass on the blocking-work thread that a snapshot due after an apply on the event loop asked for.
                maybeSnapshot();
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
        return node.hardStateChanged() || snapshotDue();
    }

    /**
     * Whether a snapshot is to be taken at the applied index: by the threshold, or because the core asked for one
     * there. Judged by what is applied, not by what is committed: a node with a backlog to apply (one that restarted
     * far behind its commit index) applies it on the event loop, batch by batch, and only the pass that takes a
     * snapshot goes to the blocking-work thread.
     */
    private boolean snapshotDue() {
        long wanted = node.snapshotWanted();
        return stateSnapshots.dueAt(node.appliedIndex()) || (wanted >= 0 && node.appliedIndex() >= wanted);
    }

    /** Whether blocking work must wait for a pass on the blocking-work thread instead of running on this one. */
    private boolean onEventLoopWithBlockingWork() {
        return blockingWork != null && loop.onLoopThread();
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
        stoppedOnDriver.countDown();
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
            ReadyHandler.handle(node, rd, readyHandler, durable.durableOnWrite());
            if (!rd.committedEntries().isEmpty() && node.appliedIndex() < node.commitIndex()) {
                return true;
            }
        }
        return false;
    }

    /** This driver's steps of the Ready sequence ({@link ReadyHandler#handle} runs them in the contract's order). */
    private final class DriverReadyHandler implements ReadyHandler {

        /** The role the Ready being handled was made in. */
        private Role role;

        @Override
        public void begin(Ready rd) {
            role = rd.role();
            // The peers' addresses before any message of this Ready leaves: a configuration entry appended or received
            // since the last pass may name a peer the transport does not know yet.
            publishPeerAddresses();
            if (rd.role() == Role.LEADER) {
                clientAppends.judgesRetries();
            } else {
                // Transfers of a leadership that ended are dropped with it.
                snapshots.reset();
            }
        }

        @Override
        public void saveHardState(HardState hs) {
            counters.hardStateSaved(hs);
            storage.saveHardState(hs);
        }

        @Override
        public void installSnapshot(SnapshotMeta snapshot) {
            counters.snapshotInstalled();
            stateSnapshots.install(snapshot);
            pending.snapshotInstalled();
            durable.snapshotInstalled(snapshot.index());
        }

        @Override
        public void truncateFrom(long index) {
            storage.truncateSuffix(index);
            dedup.truncated(index);
            pending.truncated(index);
            // Acknowledgements of removed entries can never be honoured: the entries will not become durable.
            durable.truncated(index);
        }

        @Override
        public void append(List<Entry> entries) {
            long[] pos = storage.append(entries);
            dedup.logged(entries);
            pending.written(entries, pos, role == Role.LEADER);
        }

        @Override
        public void persisted(Ready rd) {
            if (rd.truncateFrom() >= 0 || !rd.entries().isEmpty()) {
                durable.written(storage.log());
            }
        }

        @Override
        public void send(Message m) {
            // Acknowledgements of what is not durable yet wait for the sync.
            durable.sendOrHold(m, RaftGroupNode.this::send);
        }

        @Override
        public void apply(List<Entry> committed) {
            RaftGroupNode.this.apply(committed);
        }

        @Override
        public void readsConfirmed(List<ReadState> confirmed) {
            reads.confirmed(confirmed);
        }

        @Override
        public void advanced(Ready rd) {
            // A witness drops the bodies every data member holds (issue 19, the drop rule on Membership), once applied.
            long drop = Math.min(node.witnessDropIndex(), node.appliedIndex());
            if (drop > storage.log().droppedBodiesThrough()) {
                storage.dropBodiesThrough(drop);
            }
            reads.serve(node.appliedIndex());
            // The checkpoint never covers entries not durable here: after a power loss the log could hold older
            // entries at those indexes (their truncation unsynced too), and a restart would apply them as committed.
            long checkpoint = Math.min(rd.commitIndex(), durable.durableIndex());
            if (checkpoint > lastCheckpoint) {
                storage.checkpointCommit(checkpoint);
                lastCheckpoint = checkpoint;
            }
            maybeSnapshot();
        }
    }

    private void send(Message m) {
        if (m instanceof InstallSnapshotRequest s) {
            byte[] data = stateSnapshots.dataToSend(s.snapshot());
            if (data == null) {
                SnapshotMeta held = storage.log().snapshot();
                log.info("[{} {} t{}] snapshot {}@{} not sent to {}: this node holds snapshot {}@{} since the request",
                    group, id, node.term(), s.snapshot().index(), s.snapshot().term(), s.to(), held.index(),
                    held.term());
                return;
            }
            counters.snapshotSent();
            snapshots.send(s, data);
        } else {
            transport.send(group, m);
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
        if (pending.waitsUpTo(last)) {
            // Whoever sees an append acknowledged sees a status with it committed.
            publishStatus();
        }
        pending.applied(committed, storage.log(), node.leaderId());
    }

    private void maybeSnapshot() {
        if (node.membership().isWitness(id) && node.appliedIndex() > node.witnessDropIndex()) {
            // A witness compacts only what every data member holds (issue 19): it never sends a snapshot (its state
            // saw dropped bodies), so a data member behind it must find the entries in its log.
            return;
        }
        if (onEventLoopWithBlockingWork()) {
            // Taking a snapshot blocks (the state machine's bytes, a file written and synced): the next pass, on the
            // blocking-work thread, takes it. The event loop goes on meanwhile.
            blockingPassWanted |= snapshotDue();
            return;
        }
        SnapshotMeta taken = stateSnapshots.takeIfDue(node);
        if (taken == null) {
            taken = stateSnapshots.takeIfWanted(node, node.snapshotWanted());
        }
        if (taken == null) {
            return;
        }
        durable.snapshotSaved(taken.index(), taken.term(), node, this::send);
        log.info("[{} {} t{}] snapshot at {}", group, id, node.term(), taken.index());
    }

    private void expire(long now) {
        pending.expire(now, node.leaderId());
        clientAppends.expireWaiting(now);
        reads.expire(now);
    }

    private void failAll() {
        pending.failAll();
        clientAppends.failWaiting();
        reads.failAll(id);
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
        statusPublisher.onRoleChange(listener);
    }

    private void publishStatus() {
        statusPublisher.publish(new NodeStatus(group, id, node.role(), node.term(), node.leaderId(), node.lastIndex(),
            node.commitIndex(), node.appliedIndex(), node.membership().voters(), node.progress(), failed,
            node.leadTransferee()));
    }

    /**
     * Takes this node out of its group's work ahead of its {@link #close()} (its broker is being removed from the
     * process, a stop that takes a while): it never campaigns again, and it leaves the transport, so its peers stop
     * hearing from it at once. They then neither count it caught up nor hand it the leadership, which it would take
     * only to lose it again when it stops. Hand the leadership over first ({@link #transferLeadership}) when it leads.
     */
    public void leave() {
        CompletableFuture<Object> left = call(() -> {
            node.leave();
            return null;
        });
        try {
            left.get(5, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            log.warn("[{} {}] did not take the leave in time ({}); leaving the transport anyway", group, id,
                e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        transport.unregister(group);
    }

    /**
     * Stops the node and unregisters it from the transport; pending appends complete with STOPPED. The storage is
     * closed once the driver let go of it: called inside a pass of this node (a role listener, the state machine), the
     * node stops at once and the pass closes the storage when it returns. A second call does nothing.
     */
    @Override
    public void close() {
        if (!closing.compareAndSet(false, true)) {
            return;
        }
        transport.unregister(group);
        closeRequested = true;
        if (Thread.currentThread() == passThread) {
            stop(failed);
            releaseAfterPass = true;
            return;
        }
        boolean driverLetGo;
        if (loop.onLoopThread() || loop.dead()) {
            // No pass on the loop now (this is its thread, or a dead loop, its transport closed first, runs none); a
            // pass handed to the blocking-work thread may still run: the stop comes after it.
            driverLetGo = stopBetweenPasses();
        } else {
            // A flag rather than a queued input: a full queue must neither block the stop nor be overtaken by it.
            loop.wake();
            driverLetGo = awaitDriverStop();
        }
        release(driverLetGo);
    }

    /** What close() gives back once the driver stopped (or gave up waiting for it). */
    private void release(boolean driverLetGo) {
        running = false;
        if (blockingWork != null) {
            blockingWork.shutdown();
        }
        durable.close();
        if (!driverLetGo) {
            // Closing the files under a driver that may still write to them could tear what it writes; they stay
            // open (and the folder locked) until the process ends, which is safe, and the log says so.
            log.error("[{} {}] driver did not stop within 30 s: the store stays open until the process exits", group,
                id);
        } else {
            storage.close();
        }
        if (ownLoops != null) {
            ownLoops.close();
        }
    }

    /** Stops the node here once no pass runs (waiting up to 30 s for one on another thread); whether it did. */
    private boolean stopBetweenPasses() {
        try {
            if (!passLock.tryLock(30, TimeUnit.SECONDS)) {
                return false;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
        try {
            stop(failed);
        } finally {
            passLock.unlock();
        }
        return true;
    }

    /** Waits for the driver to stop the node, up to 30 s, warning every 5 s; whether it did. */
    private boolean awaitDriverStop() {
        try {
            for (int waited = 0; waited < 30; waited += 5) {
                if (loop.dead()) {
                    return stopBetweenPasses();
                }
                if (stoppedOnDriver.await(5, TimeUnit.SECONDS)) {
                    return true;
                }
                log.warn("[{} {}] driver has not stopped after {} s", group, id, waited + 5);
                loop.wake();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return stoppedOnDriver.getCount() == 0;
    }
}
