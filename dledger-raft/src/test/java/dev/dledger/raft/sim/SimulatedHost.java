package dev.dledger.raft.sim;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.server.Clock;
import dev.dledger.raft.server.DriverPorts;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.server.LogSyncer;
import dev.dledger.raft.server.NodeOptions;
import dev.dledger.raft.server.NodeStatus;
import dev.dledger.raft.server.NodeStorage;
import dev.dledger.raft.server.RaftGroupNode;
import dev.dledger.raft.server.StorageException;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.IoThread;
import dev.dledger.raft.transport.RequestHandler;
import dev.dledger.raft.transport.SnapshotChunk;
import dev.dledger.raft.transport.Transport;

import java.io.IOException;
import org.slf4j.LoggerFactory;
import org.slf4j.helpers.NOPLogger;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * One simulated machine running the production driver, {@link RaftGroupNode}, unchanged: only its ports are
 * simulated, and every one of them runs on the simulation's single thread as scheduled events.
 * <ul>
 *   <li>Disk ({@link NodeStorage}): {@link SimulatedLogStore}, {@link SimulatedMetaStore} and
 *   {@link SimulatedSnapshotStore}. With {@link FlushMode#SYNC} log writes stay volatile until a sync (a crash loses
 *   them, or keeps a random prefix: a torn write); with {@link FlushMode#ASYNC} a write is in the page cache, which a
 *   process crash keeps. Armed {@link DiskFault}s fail a term/vote fsync, fail a log sync, tear the last write.</li>
 *   <li>Clock ({@link Clock}): the simulated time, at this machine's own rate (skew) and origin.</li>
 *   <li>Threads: the driver's event loop is this machine's {@link IoThread} (offered through
 *   {@link Transport#driverThread()}); the blocking-work executor (issue 16, B7) and the background syncer run their
 *   work as later events, after a simulated disk delay. While the machine is paused (a GC, a SIGSTOP) none of them
 *   runs; the clock goes on, so the driver finds its ticks late afterwards, as in production.</li>
 *   <li>Network ({@link Transport}): messages and snapshot chunks go through the {@link SimulatedNetwork}: lost,
 *   delayed, duplicated, reordered, cut.</li>
 * </ul>
 * The state machine is a {@link HashStateMachine}. Each hook reports to the {@link NodeObserver} (the invariant
 * checker): what is written, sent, applied and restored.
 *
 * <p>A crash drops the process (the driver, the state machine, everything queued) and what the disk did not sync;
 * {@link #restart()} starts a new driver on the same disk. Not thread-safe: everything runs on the simulation thread.
 */
public final class SimulatedHost {

    /**
     * How the machine runs its node.
     *
     * @param flush              the node's flush mode
     * @param maxDiskDelay       the longest a sync or a blocking pass waits for the disk, in clock units (at least 1)
     * @param tickMs             the node's tick in (simulated) milliseconds
     */
    public record Settings(FlushMode flush, int maxDiskDelay, int tickMs) {
    }

    private static final String GROUP = "g";

    private final String id;
    private final Membership bootstrap;
    private final NodeOptions baseOptions;
    private final long tickPeriod;
    private final long clockOrigin;
    private final SimulatedScheduler scheduler;
    private final SimulatedNetwork network;
    private final Random random;
    private final NodeObserver observer;
    private final BufferedCoreLog events;
    private final Settings settings;

    private final SimulatedLogStore log = new SimulatedLogStore();
    private final SimulatedMetaStore meta = new SimulatedMetaStore();
    private final SimulatedSnapshotStore snapshots = new SimulatedSnapshotStore();

    /** The running process, or null while down. */
    private Process process;
    private int incarnation;
    private boolean shutDown;
    private DiskFault armedFault = DiskFault.NONE;
    private DiskFault firedFault = DiskFault.NONE;
    /** Simulated time until which the process stands still (a pause); 0 when it runs. */
    private long pausedUntil;

    /**
     * A machine that has never run; {@link #start()} starts its node.
     *
     * @param bootstrap  the voters of a new group, or {@link Membership#EMPTY} for a node being added
     * @param options    the node's options (its random seed is redrawn at each start)
     * @param tickPeriod the clock units of one tick of this machine's clock (clock skew between machines)
     */
    public SimulatedHost(String id, Membership bootstrap, NodeOptions options, long tickPeriod,
                         SimulatedScheduler scheduler, SimulatedNetwork network, Random random, NodeObserver observer,
                         BufferedCoreLog events, Settings settings) {
        this.id = id;
        this.bootstrap = bootstrap;
        this.baseOptions = options;
        this.tickPeriod = tickPeriod;
        this.clockOrigin = (random.nextInt(1 << 20) + 1L) * 1_000_000L;
        this.scheduler = scheduler;
        this.network = network;
        this.random = random;
        this.observer = observer;
        this.events = events;
        this.settings = settings;
    }

    // ----- life cycle ----------------------------------------------------------------------------------------------

    /** Starts the node for the first time. */
    public void start() {
        restart();
    }

    /**
     * Starts a new process on this machine's disk: a fresh state machine and a production driver.
     *
     * @throws IllegalStateException if the node is running or was shut down
     */
    public void restart() {
        if (process != null || shutDown) {
            throw new IllegalStateException(id + " is " + (shutDown ? "shut down" : "running"));
        }
        incarnation++;
        firedFault = DiskFault.NONE;
        pausedUntil = 0;
        events.driver("start incarnation " + incarnation + " from " + meta.hardState() + " " + log);
        Process p = new Process(incarnation);
        process = p;
        NodeOptions options = new NodeOptions(GROUP, baseOptions.raft(), baseOptions.tickMs(), settings.flush(),
            baseOptions.appendTimeoutMs(), baseOptions.maxPendingAppends(), baseOptions.maxQueuedInputs(),
            baseOptions.snapshotThreshold(), baseOptions.snapshotChunkBytes(), random.nextLong());
        observer.onRestart(this);
        // The drivers' logs stay quiet, except in the replay of a failing seed with debug logs (SLF4J's, as set).
        DriverPorts ports = new DriverPorts(p.clock, p::startSyncer, name -> p.blockingWork,
            events.debugEnabled() ? LoggerFactory::getLogger : name -> NOPLogger.NOP_LOGGER);
        p.node = new RaftGroupNode(options, bootstrap, p.storage, p.stateMachine, p.transport, null, ports);
    }

    /**
     * Takes the process down: the driver and everything volatile go, the disk loses what it did not sync (keeping a
     * random prefix of it, as after a torn write). A no-op while down.
     */
    public void crash(String why) {
        Process p = process;
        if (p == null) {
            return;
        }
        observer.onCrashing(this);
        process = null;
        p.dead = true;
        // The driver's close completes what waits on it (clients see STOPPED) and unregisters it; nothing of it runs
        // any more: its queued tasks, syncs and blocking passes are dropped as the events come.
        p.node.close();
        log.crash(random);
        meta.crash(random);
        pausedUntil = 0;
        armedFault = DiskFault.NONE;
        events.driver("down: " + why + "; durable " + meta.hardState() + " " + log);
        observer.onCrash(this, why);
    }

    /** Crashes the node for good (it was removed from the group); it never restarts. */
    public void shutDown() {
        shutDown = true;
        crash("shut down");
    }

    /** Stops the process for {@code units} of simulated time (a GC pause, a SIGSTOP); its clock goes on. */
    public void pause(long units) {
        if (process != null) {
            pausedUntil = Math.max(pausedUntil, scheduler.clock().now() + units);
            events.driver("paused until t=" + pausedUntil);
        }
    }

    /** The simulated time until which the process stands still, or 0. */
    public long pausedUntil() {
        return pausedUntil > scheduler.clock().now() ? pausedUntil : 0;
    }

    /** Arms {@code fault}: it fires at the next disk operation (or send, or apply) it applies to. */
    public void arm(DiskFault fault) {
        armedFault = fault;
    }

    /** The fault that stopped the running process, or {@link DiskFault#NONE}. */
    public DiskFault firedFault() {
        return firedFault;
    }

    /** Whether the process stopped itself (its driver failed): for an injected fault, or for a bug. */
    public boolean failed() {
        return process != null && process.node != null && process.node.status().failed();
    }

    private void fire(DiskFault fault) {
        if (armedFault == fault) {
            armedFault = DiskFault.NONE;
            firedFault = fault;
            if (fault == DiskFault.TORN_WRITE && log.pendingOps() > 0) {
                // A strict prefix of the writes reaches the disk.
                log.crash(random.nextInt(log.pendingOps()));
            }
            throw new StorageException("injected " + fault + " on " + id);
        }
    }

    // ----- what the simulation reads ---------------------------------------------------------------------------

    /** The node's id. */
    public String id() {
        return id;
    }

    /** The production driver, or null while down. */
    public RaftGroupNode node() {
        return process == null ? null : process.node;
    }

    /** The driver's last published status, or null while down. */
    public NodeStatus status() {
        return process == null || process.node == null ? null : process.node.status();
    }

    /** Whether the process runs. */
    public boolean isUp() {
        return process != null;
    }

    /** Whether the node was shut down for good. */
    public boolean isShutDown() {
        return shutDown;
    }

    /** Bumped at every start: callbacks of an older process are ignored. */
    public int incarnation() {
        return incarnation;
    }

    /** The log on disk (the view the driver reads). */
    public SimulatedLogStore log() {
        return log;
    }

    /** The term, vote and commit checkpoint on disk. */
    public SimulatedMetaStore meta() {
        return meta;
    }

    /** The snapshot on disk. */
    public SimulatedSnapshotStore snapshots() {
        return snapshots;
    }

    /** The state machine of the running process, or null while down. */
    public HashStateMachine stateMachine() {
        return process == null ? null : process.stateMachine.state;
    }

    /** The machine's notes (starts, crashes, pauses). */
    public BufferedCoreLog events() {
        return events;
    }

    /** The configuration the node starts from when it has no snapshot. */
    public Membership bootstrap() {
        return bootstrap;
    }

    /** The flush mode of the node. */
    public FlushMode flush() {
        return settings.flush();
    }

    /** Delivers a message or snapshot chunk from the network; dropped while down. */
    public void deliver(Object payload) {
        Process p = process;
        if (p == null) {
            return;
        }
        if (payload instanceof Message m && p.transport.inbound != null) {
            p.transport.inbound.accept(m);
        } else if (payload instanceof SnapshotChunk c && p.transport.chunks != null) {
            p.transport.chunks.accept(c);
        }
    }

    /** What a production transport tells the driver when {@code peer}'s process is gone (its port refuses). */
    public void peerDown(String peer) {
        Process p = process;
        if (p != null && p.transport.peerDown != null) {
            p.transport.peerDown.accept(peer);
        }
    }

    @Override
    public String toString() {
        NodeStatus s = status();
        if (s == null) {
            return id + "[" + (shutDown ? "shut down" : "down") + " " + meta.hardState() + " " + log + "]";
        }
        return id + "[" + s.role() + " t" + s.term() + " leader=" + s.leaderId() + " commit=" + s.commitIndex()
            + " applied=" + s.appliedIndex() + (s.failed() ? " FAILED" : "") + " " + log + " voters=" + s.voters()
            + (pausedUntil() > 0 ? " paused<" + pausedUntil : "") + "]";
    }

    // ----- the ports of one process ------------------------------------------------------------------------------

    /** One process on this machine: its driver and the simulated ports it runs on. */
    private final class Process {
        final int incarnation;
        boolean dead;
        /** A blocking-work task runs now: the driver is off its event loop. */
        boolean inBlockingTask;
        RaftGroupNode node;
        final SimClock clock = new SimClock();
        final SimStorage storage = new SimStorage(this);
        final SimStateMachine stateMachine = new SimStateMachine(this);
        final SimTransport transport = new SimTransport(this);
        final SimLoop loop = new SimLoop(this);
        final SimBlockingWork blockingWork = new SimBlockingWork(this);

        Process(int incarnation) {
            this.incarnation = incarnation;
        }

        LogSyncer startSyncer(String name, NodeStorage storage, Runnable wake) {
            return new SimSyncer(this, storage, wake);
        }

        /**
         * Runs {@code task} as a later event of this process: {@code delay} units from now, or when a pause ends;
         * never once the process is dead.
         */
        void later(long delay, String kind, Runnable task) {
            scheduler.schedule(delay, kind, id, null, () -> runWhenAwake(kind, task));
        }

        private void runWhenAwake(String kind, Runnable task) {
            if (dead) {
                return;
            }
            long until = pausedUntil();
            if (until > 0) {
                // Stood still: the task runs when the process goes on (in the order the tasks came due).
                scheduler.schedule(until - scheduler.clock().now(), kind, id, null, () -> runWhenAwake(kind, task));
                return;
            }
            task.run();
        }

        long diskDelay() {
            return 1 + random.nextInt(settings.maxDiskDelay());
        }
    }

    /** This machine's clock: simulated time at the machine's rate, from its own origin. */
    private final class SimClock implements Clock {
        @Override
        public long nanoTime() {
            return clockOrigin + nanos(scheduler.clock().now());
        }
    }

    /** Nanoseconds of this machine's clock in {@code units} of simulated time. */
    private long nanos(long units) {
        return units * TimeUnit.MILLISECONDS.toNanos(baseOptions.tickMs()) / tickPeriod;
    }

    /** Simulated time units for {@code nanos} of this machine's clock, rounded up. */
    private long units(long nanos) {
        long tickNanos = TimeUnit.MILLISECONDS.toNanos(baseOptions.tickMs());
        return (nanos * tickPeriod + tickNanos - 1) / tickNanos;
    }

    /** The driver's event loop: tasks are events of this process, at once or after a delay. */
    private final class SimLoop implements IoThread {
        private final Process p;

        SimLoop(Process p) {
            this.p = p;
        }

        @Override
        public boolean inThread() {
            // The simulation thread is the event loop, except while it runs a pass handed to the blocking-work thread.
            return !p.inBlockingTask;
        }

        @Override
        public boolean execute(Runnable task) {
            if (p.dead) {
                return false;
            }
            p.later(0, "RUN", task);
            return true;
        }

        @Override
        public boolean schedule(Runnable task, long delayNanos) {
            if (p.dead) {
                return false;
            }
            p.later(Math.max(0, units(delayNanos)), "TIMER", task);
            return true;
        }
    }

    /** The blocking-work thread (issue 16, B7): a pass handed to it runs after a disk delay, off the event loop. */
    private final class SimBlockingWork extends AbstractExecutorService {
        private final Process p;
        private boolean shut;

        SimBlockingWork(Process p) {
            this.p = p;
        }

        @Override
        public void execute(Runnable command) {
            if (shut || p.dead) {
                throw new java.util.concurrent.RejectedExecutionException(id + " blocking work is shut down");
            }
            p.later(p.diskDelay(), "BLOCKING", () -> {
                p.inBlockingTask = true;
                try {
                    command.run();
                } finally {
                    p.inBlockingTask = false;
                }
            });
        }

        @Override
        public void shutdown() {
            shut = true;
        }

        @Override
        public List<Runnable> shutdownNow() {
            shut = true;
            return Collections.emptyList();
        }

        @Override
        public boolean isShutdown() {
            return shut;
        }

        @Override
        public boolean isTerminated() {
            return shut;
        }

        @Override
        public boolean awaitTermination(long timeout, TimeUnit unit) {
            return true;
        }
    }

    /** The background fsync of {@link FlushMode#SYNC}: one sync at a time, each after a disk delay. */
    private final class SimSyncer implements LogSyncer {
        private final Process p;
        private final NodeStorage storage;
        private final Runnable wake;
        private long requested;
        private long synced;
        private boolean inFlight;
        private RuntimeException failure;
        private boolean closed;

        SimSyncer(Process p, NodeStorage storage, Runnable wake) {
            this.p = p;
            this.storage = storage;
            this.wake = wake;
        }

        @Override
        public void request(long write) {
            requested = Math.max(requested, write);
            startSync();
        }

        private void startSync() {
            if (inFlight || closed || failure != null || requested <= synced) {
                return;
            }
            inFlight = true;
            // The sync covers the writes asked for before it starts.
            long target = requested;
            p.later(p.diskDelay(), "SYNC", () -> {
                inFlight = false;
                if (closed) {
                    return;
                }
                try {
                    storage.sync();
                } catch (RuntimeException e) {
                    failure = e;
                    wake.run();
                    return;
                }
                synced = Math.max(synced, target);
                wake.run();
                startSync();
            });
        }

        @Override
        public long synced() {
            return synced;
        }

        @Override
        public RuntimeException failure() {
            return failure;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    /** The disk, as the driver's {@link NodeStorage}. */
    private final class SimStorage implements NodeStorage {
        private final Process p;

        SimStorage(Process p) {
            this.p = p;
        }

        private void checkOpen() {
            if (p.dead) {
                throw new IllegalStateException(id + ": storage of a dead process used");
            }
        }

        @Override
        public LogView log() {
            return log;
        }

        @Override
        public HardState hardState() {
            return meta.hardState();
        }

        @Override
        public void saveHardState(HardState hardState) {
            checkOpen();
            observer.onHardState(SimulatedHost.this, hardState);
            meta.write(hardState);
            fire(DiskFault.META_FSYNC_FAILURE);
            meta.sync();
        }

        @Override
        public void truncateSuffix(long fromIndex) {
            checkOpen();
            observer.onTruncate(SimulatedHost.this, fromIndex);
            log.truncateFrom(fromIndex);
            if (settings.flush() == FlushMode.ASYNC) {
                log.sync();
            }
        }

        @Override
        public long[] append(List<Entry> entries) {
            checkOpen();
            if (entries.get(0).index() != log.lastIndex() + 1) {
                throw new IllegalStateException(id + ": append at " + entries.get(0).index() + " but the log ends at "
                    + log.lastIndex());
            }
            observer.onAppend(SimulatedHost.this, entries);
            log.append(entries);
            if (settings.flush() == FlushMode.ASYNC) {
                // In the page cache: a process crash keeps it, unless it dies in the middle of this write.
                fire(DiskFault.TORN_WRITE);
                log.sync();
            }
            long[] pos = new long[entries.size()];
            for (int i = 0; i < pos.length; i++) {
                pos[i] = entries.get(i).index() * 64;
            }
            return pos;
        }

        @Override
        public void sync() {
            checkOpen();
            if (log.pendingOps() > 0) {
                fire(DiskFault.TORN_WRITE);
            }
            fire(DiskFault.LOG_FSYNC_FAILURE);
            log.sync();
        }

        @Override
        public List<Entry> configEntries() {
            List<Entry> configs = new ArrayList<>();
            for (Entry e : log.allEntries()) {
                if (e.type() == EntryType.CONFIG) {
                    configs.add(e);
                }
            }
            return configs;
        }

        @Override
        public byte[] snapshotData() {
            return snapshots.data();
        }

        @Override
        public void dropBodiesThrough(long index) {
            checkOpen();
            observer.onDropBodies(SimulatedHost.this, index);
            log.dropBodiesThrough(index);
        }

        @Override
        public void saveSnapshot(SnapshotMeta snapshotMeta, byte[] data) {
            checkOpen();
            snapshots.save(snapshotMeta, data);
            log.compactTo(snapshotMeta);
            log.sync();
            observer.onSnapshotTaken(SimulatedHost.this, snapshotMeta);
        }

        @Override
        public void installSnapshot(SnapshotMeta snapshotMeta, byte[] data) {
            checkOpen();
            observer.onInstall(SimulatedHost.this, snapshotMeta);
            snapshots.save(snapshotMeta, data);
            log.installSnapshot(snapshotMeta);
            log.sync();
        }

        @Override
        public long committedCheckpoint() {
            return meta.checkpoint();
        }

        @Override
        public void checkpointCommit(long commitIndex) {
            checkOpen();
            observer.onCheckpoint(SimulatedHost.this, commitIndex);
            meta.writeCheckpoint(commitIndex);
        }

        @Override
        public void close() {
        }
    }

    /** The application: a {@link HashStateMachine}, reported to the observer as it applies and restores. */
    private final class SimStateMachine implements StateMachine {
        private final Process p;
        final HashStateMachine state = new HashStateMachine();

        SimStateMachine(Process p) {
            this.p = p;
        }

        @Override
        public List<byte[]> apply(List<Entry> committed) {
            fire(DiskFault.CRASH_BEFORE_APPLY);
            for (Entry e : committed) {
                state.apply(e);
                observer.onApplied(SimulatedHost.this, e);
            }
            return Collections.nCopies(committed.size(), null);
        }

        @Override
        public void snapshot(long lastIndex, OutputStream out) throws IOException {
            if (lastIndex != state.appliedIndex()) {
                throw new IllegalStateException(id + ": snapshot at " + lastIndex + " asked of a state at "
                    + state.appliedIndex());
            }
            out.write(state.snapshot());
        }

        @Override
        public void restore(long lastIndex, InputStream in) throws IOException {
            byte[] bytes = in.readAllBytes();
            state.restore(bytes);
            observer.onRestored(SimulatedHost.this, lastIndex, bytes);
        }

        @Override
        public boolean canSnapshot() {
            return true;
        }
    }

    /** The network, as the driver's {@link Transport}; its driver thread is the process's {@link SimLoop}. */
    private final class SimTransport implements Transport {
        private final Process p;
        Consumer<Message> inbound;
        Consumer<SnapshotChunk> chunks;
        Consumer<String> peerDown;

        SimTransport(Process p) {
            this.p = p;
        }

        @Override
        public void send(String group, Message m) {
            if (p.dead) {
                return;
            }
            fire(DiskFault.CRASH_BEFORE_SEND);
            observer.onSend(SimulatedHost.this, m);
            network.send(m.from(), m.to(), m);
        }

        @Override
        public void register(String group, String selfId, Consumer<Message> in) {
            this.inbound = in;
        }

        @Override
        public void sendChunk(String group, SnapshotChunk chunk) {
            if (p.dead) {
                return;
            }
            observer.onChunk(SimulatedHost.this, chunk);
            network.send(chunk.from(), chunk.to(), chunk);
        }

        @Override
        public void onChunks(String group, Consumer<SnapshotChunk> in) {
            this.chunks = in;
        }

        @Override
        public void serveRequests(String group, RequestHandler handler) {
        }

        @Override
        public void onPeerDown(String group, Consumer<String> listener) {
            this.peerDown = listener;
        }

        @Override
        public void unregister(String group) {
            inbound = null;
            chunks = null;
            peerDown = null;
        }

        @Override
        public IoThread driverThread() {
            return p.loop;
        }

        @Override
        public void close() {
        }
    }
}
