package dev.dledger.raft.sim;

import dev.dledger.raft.core.AppendEntriesResponse;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.InitialState;
import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.InstallSnapshotResponse;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.RaftConfig;
import dev.dledger.raft.core.RaftNode;
import dev.dledger.raft.core.ReadState;
import dev.dledger.raft.core.Ready;
import dev.dledger.raft.core.SnapshotMeta;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;

/**
 * The simulated driver of one node: it owns the node's stores, state machine and {@link RaftNode}, feeds the core its
 * inputs (ticks on the node's own period, delivered messages, client calls) and handles each {@link Ready} in the
 * order of the contract: persist (term/vote, snapshot, truncation, entries, each synced), then send, then apply and
 * serve reads, then {@code advance}. With {@link Settings#backgroundSync()} it drives the core as the production
 * driver does in sync flush mode: log writes are synced by a later event ({@code advance(rd, false)}, then
 * {@code logDurable}), and acknowledgements of entries not yet durable wait for that event. It injects the
 * {@link DiskFault} armed on it at the matching step, and after applying it may take a snapshot and compact its log.
 *
 * <p>A crash drops everything volatile (the core, the state machine, pending reads, received snapshot bytes) and
 * whatever was not synced; {@link #restart()} rebuilds the core from the durable stores. All randomness comes from
 * the run's {@link Random}. Not thread-safe: everything runs on the simulation thread.
 */
public final class SimulatedNode {

    /**
     * How the driver behaves.
     *
     * @param snapshotEveryEntries       take a snapshot once this many entries were applied since the last one
     * @param snapshotFailureProbability probability that sending a snapshot fails (reported to the core)
     * @param restartFromCheckpoint      pass the commit checkpoint to the core at restart (else -1)
     * @param backgroundSync             sync log writes in a later event, up to {@code maxSyncDelay} clock units
     *                                   after the write, instead of before the Ready's messages
     * @param maxSyncDelay               the longest a background sync takes (at least 1)
     */
    public record Settings(int snapshotEveryEntries, double snapshotFailureProbability,
                           boolean restartFromCheckpoint, boolean backgroundSync, int maxSyncDelay) {

        /** Settings that sync every Ready's log writes before its messages. */
        public Settings(int snapshotEveryEntries, double snapshotFailureProbability, boolean restartFromCheckpoint) {
            this(snapshotEveryEntries, snapshotFailureProbability, restartFromCheckpoint, false, 1);
        }
    }

    private final String id;
    private final RaftConfig config;
    private final Membership bootstrap;
    private final long tickPeriod;
    private final SimulatedScheduler scheduler;
    private final SimulatedNetwork network;
    private final Random random;
    private final NodeObserver observer;
    private final BufferedCoreLog coreLog;
    private final Settings settings;

    private final SimulatedLogStore log = new SimulatedLogStore();
    private final SimulatedMetaStore meta = new SimulatedMetaStore();
    private final SimulatedSnapshotStore snapshots = new SimulatedSnapshotStore();

    private RaftNode raft;
    private HashStateMachine stateMachine;
    private final List<ReadState> pendingReads = new ArrayList<>();
    private final TreeMap<Long, byte[]> receivedSnapshots = new TreeMap<>();
    private DiskFault armedFault = DiskFault.NONE;
    private int incarnation;
    private boolean shutDown;
    private boolean inReady;
    private double snapshotFailureProbability;
    /** With background sync: the last index known durable here, and acknowledgements waiting for it to grow. */
    private long durableIndex = -1;
    private final List<Message> heldAcks = new ArrayList<>();

    /**
     * A node that has never run. Call {@link #start()} to create its core.
     *
     * @param bootstrap  the configuration it starts with when it has no snapshot: the group's initial voters, or
     *                   {@link Membership#EMPTY} for a node being added
     * @param tickPeriod the clock units between two ticks of this node (clock skew between nodes)
     */
    public SimulatedNode(String id, RaftConfig config, Membership bootstrap, long tickPeriod,
                         SimulatedScheduler scheduler, SimulatedNetwork network, Random random, NodeObserver observer,
                         BufferedCoreLog coreLog, Settings settings) {
        this.id = id;
        this.config = config;
        this.bootstrap = bootstrap;
        this.tickPeriod = tickPeriod;
        this.scheduler = scheduler;
        this.network = network;
        this.random = random;
        this.observer = observer;
        this.coreLog = coreLog;
        this.settings = settings;
        this.snapshotFailureProbability = settings.snapshotFailureProbability();
    }

    /** Creates the core from the durable state (empty on first start) and starts ticking. */
    public void start() {
        restart();
    }

    /**
     * Rebuilds the core from the durable stores: term and vote, the snapshot (restored into a fresh state machine),
     * the CONFIG entries after it, and the commit checkpoint if the settings say so.
     *
     * @throws IllegalStateException if the node is running or shut down
     */
    public void restart() {
        if (raft != null || shutDown) {
            throw new IllegalStateException(id + " is " + (shutDown ? "shut down" : "running"));
        }
        stateMachine = new HashStateMachine();
        SnapshotMeta snap = log.snapshot();
        if (snap.index() >= 0) {
            if (!snapshots.meta().equals(snap)) {
                throw new InvariantViolation("harness", id + ": snapshot store " + snapshots.meta()
                    + " does not match the log's snapshot " + snap);
            }
            stateMachine.restore(snapshots.data());
        }
        Membership membership = snap.index() >= 0 ? snap.membership() : bootstrap;
        List<Entry> configs = new ArrayList<>();
        for (Entry e : log.allEntries()) {
            if (e.type() == EntryType.CONFIG) {
                configs.add(e);
            }
        }
        long commit = -1;
        if (settings.restartFromCheckpoint() && meta.checkpoint() >= 0) {
            if (meta.checkpoint() > log.lastIndex()) {
                throw new InvariantViolation("durable-commit", id + ": commit checkpoint " + meta.checkpoint()
                    + " is beyond the durable log " + log);
            }
            commit = meta.checkpoint();
        }
        // A restarted node keeps quiet for an election timeout, as the production driver does (leader leases).
        InitialState initial = new InitialState(meta.hardState(), membership, configs, commit, snap.index(),
            meta.hardState().term() > 0 ? config.electionTimeoutTicks() : 0);
        coreLog.driver("start incarnation " + (incarnation + 1) + " from " + initial.hardState() + " " + log
            + " membership=" + membership.voters() + " commit=" + commit);
        incarnation++;
        if (log.pendingOps() > 0) {
            throw new InvariantViolation("harness", id + " restarts with unsynced log writes " + log);
        }
        durableIndex = log.lastIndex();
        heldAcks.clear();
        raft = new RaftNode(config, log, initial, random::nextInt, coreLog);
        long durableCommit = Math.max(commit, snap.index());
        if (raft.commitIndex() < durableCommit) {
            throw new InvariantViolation("commit-below-durable", id + " restarts with commit index "
                + raft.commitIndex() + " below what its durable state proves committed (" + durableCommit + ")");
        }
        observer.onRestart(this);
        int inc = incarnation;
        scheduler.schedule(random.nextInt((int) tickPeriod) + 1, "TICK", id, null, () -> tick(inc));
        processReady();
    }

    private void tick(int inc) {
        if (raft == null || inc != incarnation) {
            return;
        }
        scheduler.schedule(tickPeriod, "TICK", id, null, () -> tick(inc));
        raft.tick();
        processReady();
    }

    /**
     * Delivers a message from the network: dropped if the node is down; a snapshot's bytes are kept so that the
     * install that the core may ask for can use them.
     */
    public void receive(Message m) {
        if (raft == null) {
            return;
        }
        if (m instanceof InstallSnapshotRequest r && r.data() != null) {
            receivedSnapshots.put(r.snapshot().index(), r.data());
            while (receivedSnapshots.size() > 4) {
                receivedSnapshots.pollFirstEntry();
            }
        }
        raft.step(m);
        processReady();
    }

    /**
     * Handles every pending Ready of the core, in order, as the contract on {@link Ready} says. Stops early if an
     * armed fault takes the node down.
     */
    public void processReady() {
        if (inReady) {
            throw new IllegalStateException(id + ": re-entrant Ready handling");
        }
        inReady = true;
        try {
            while (raft != null && raft.hasReady()) {
                handle(raft.ready());
            }
        } finally {
            inReady = false;
        }
    }

    private void handle(Ready rd) {
        observer.onReady(this, rd);
        // 1. Persist: term and vote, then the snapshot, then truncation and entries; each synced before step 2.
        if (rd.hardState() != null) {
            meta.write(rd.hardState());
            if (fire(DiskFault.META_FSYNC_FAILURE)) {
                return;
            }
            meta.sync();
        }
        if (rd.snapshot() != null) {
            installSnapshot(rd.snapshot());
        }
        if (rd.snapshot() != null) {
            durableIndex = rd.snapshot().index();
            dropHeldAcksAbove(durableIndex);
        }
        if (rd.truncateFrom() >= 0) {
            log.truncateFrom(rd.truncateFrom());
            durableIndex = Math.min(durableIndex, rd.truncateFrom() - 1);
            dropHeldAcksAbove(durableIndex);
        }
        if (!rd.entries().isEmpty()) {
            if (rd.entries().get(0).index() != log.lastIndex() + 1) {
                throw new InvariantViolation("ready-contract", id + ": Ready entries start at "
                    + rd.entries().get(0).index() + " but the log ends at " + log.lastIndex() + " (truncateFrom="
                    + rd.truncateFrom() + ")");
            }
            log.append(rd.entries());
        }
        boolean wrote = rd.truncateFrom() >= 0 || !rd.entries().isEmpty();
        if (settings.backgroundSync()) {
            if (wrote) {
                long last = log.lastIndex();
                syncLater(last, last >= 0 ? log.term(last) : 0);
            }
        } else {
            if (log.pendingOps() > 0) {
                if (!rd.entries().isEmpty() && fire(DiskFault.TORN_WRITE)) {
                    return;
                }
                if (fire(DiskFault.LOG_FSYNC_FAILURE)) {
                    return;
                }
                log.sync();
            }
            durableIndex = log.lastIndex();
        }
        observer.onPersisted(this, rd);
        if (!rd.messages().isEmpty() && fire(DiskFault.CRASH_BEFORE_SEND)) {
            return;
        }
        // 2. Send what the durable state allows; with background sync, acknowledgements beyond it wait for a sync.
        for (Message m : rd.messages()) {
            if (ackIndex(m) > durableIndex) {
                heldAcks.add(m);
            } else {
                send(m);
            }
        }
        if (!rd.committedEntries().isEmpty() && fire(DiskFault.CRASH_BEFORE_APPLY)) {
            return;
        }
        // 3. Apply committed entries, then serve reads whose index is applied.
        for (Entry e : rd.committedEntries()) {
            if (e.index() > rd.commitIndex()) {
                throw new InvariantViolation("ready-contract", id + ": Ready hands out " + e
                    + " beyond its commitIndex " + rd.commitIndex());
            }
            stateMachine.apply(e);
            observer.onApplied(this, e);
        }
        // The checkpoint never covers entries that are not durable here: a crash could bring back older ones.
        long checkpoint = Math.min(rd.commitIndex(), durableIndex);
        if (checkpoint >= 0 && checkpoint > meta.checkpoint()) {
            meta.writeCheckpoint(checkpoint);
        }
        for (ReadState rs : rd.readStates()) {
            observer.onReadState(this, rs);
            pendingReads.add(rs);
        }
        serveReads();
        // 4. Hand the batch back.
        raft.advance(rd, !settings.backgroundSync());
        maybeSnapshot();
    }

    /**
     * With background sync: a sync of every log write so far, some time later, that then reports the write that ended
     * at {@code index} (with {@code term}) durable. Torn writes and fsync failures fire here.
     */
    private void syncLater(long index, long term) {
        int inc = incarnation;
        scheduler.schedule(1 + random.nextInt(settings.maxSyncDelay()), "SYNC", id, null, () -> {
            if (raft == null || inc != incarnation) {
                return;
            }
            if (log.pendingOps() > 0) {
                if (fire(DiskFault.TORN_WRITE) || fire(DiskFault.LOG_FSYNC_FAILURE)) {
                    return;
                }
                log.sync();
            }
            // Log matching: the write is still this log's only if its last entry is; a later sync reports the rest.
            if (index > durableIndex && index <= log.lastIndex() && index >= log.firstIndex()
                && log.term(index) == term) {
                durableIndex = index;
            }
            raft.logDurable(index, term);
            sendHeldAcks();
            processReady();
        });
    }

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

    /** The index a message tells its receiver is durable here, or -1 when it claims nothing. */
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

    private void installSnapshot(SnapshotMeta snap) {
        byte[] data = receivedSnapshots.get(snap.index());
        if (data == null) {
            throw new InvariantViolation("ready-contract", id + ": Ready installs snapshot " + snap
                + " but no InstallSnapshot with that index was received; received " + receivedSnapshots.keySet());
        }
        snapshots.save(snap, data);
        log.installSnapshot(snap);
        log.sync();
        stateMachine.restore(data);
        observer.onSnapshotInstalled(this, snap, data);
    }

    private void send(Message m) {
        if ((!settings.backgroundSync() && log.pendingOps() > 0) || meta.hasPending()) {
            throw new InvariantViolation("persist-before-send", id + " would send " + m + " with "
                + log.pendingOps() + " log writes and " + (meta.hasPending() ? "a" : "no") + " term/vote write not"
                + " yet durable");
        }
        Message out = m;
        if (m instanceof InstallSnapshotRequest r && r.data() == null) {
            SnapshotMeta held = snapshots.meta();
            if (held.index() != r.snapshot().index() || held.term() != r.snapshot().term()) {
                throw new InvariantViolation("ready-contract", id + ": InstallSnapshot of " + r.snapshot()
                    + " but the node holds snapshot " + held);
            }
            if (snapshotFailureProbability > 0 && random.nextDouble() < snapshotFailureProbability) {
                int inc = incarnation;
                String peer = r.to();
                coreLog.driver("snapshot transfer to " + peer + " fails");
                observer.onSnapshotSendFailed(this, peer);
                scheduler.schedule(1 + random.nextInt(200), "SNAPSHOT_FAILED", id, peer, () -> {
                    if (raft != null && inc == incarnation) {
                        raft.reportSnapshotFailed(peer);
                        processReady();
                    }
                });
                return;
            }
            out = r.withData(snapshots.data());
        }
        observer.onSend(this, out);
        network.send(out);
    }

    private void serveReads() {
        Iterator<ReadState> it = pendingReads.iterator();
        while (it.hasNext()) {
            ReadState rs = it.next();
            if (stateMachine.appliedIndex() >= rs.index()) {
                it.remove();
                observer.onReadServed(this, rs);
            }
        }
    }

    private void maybeSnapshot() {
        if (raft == null) {
            return;
        }
        long applied = stateMachine.appliedIndex();
        if (applied - log.snapshot().index() < settings.snapshotEveryEntries() || applied < log.firstIndex()
            || applied > log.lastIndex()) {
            return;
        }
        SnapshotMeta snap = new SnapshotMeta(applied, log.term(applied), raft.membershipAt(applied));
        snapshots.save(snap, stateMachine.snapshot());
        log.compactTo(snap);
        log.sync();
        observer.onSnapshotTaken(this, snap);
        if (applied > durableIndex) {
            // The durable snapshot replaces the log up to its index; a pending sync can no longer report that range.
            durableIndex = applied;
            raft.logDurable(applied, snap.term());
            sendHeldAcks();
        }
    }

    /** If {@code fault} is armed, fires it: the node goes down at this point. */
    private boolean fire(DiskFault fault) {
        if (armedFault != fault) {
            return false;
        }
        armedFault = DiskFault.NONE;
        if (fault == DiskFault.TORN_WRITE) {
            // A strict prefix of the entries reaches the disk; crash() then finds nothing pending in the log.
            log.crash(random.nextInt(log.pendingOps()));
        }
        crash("fault " + fault);
        return true;
    }

    /**
     * Takes the node down: the core and everything volatile are dropped, unsynced writes are lost (a random prefix of
     * them may survive, as after a torn write), and ticks stop. A no-op when the node is down.
     */
    public void crash(String why) {
        if (raft == null) {
            return;
        }
        log.crash(random);
        meta.crash(random);
        raft = null;
        stateMachine = null;
        pendingReads.clear();
        receivedSnapshots.clear();
        heldAcks.clear();
        incarnation++;
        coreLog.driver("down: " + why + "; durable " + meta.hardState() + " " + log);
        observer.onCrash(this, why);
    }

    /** Crashes the node for good (it was removed from the group); it never restarts. */
    public void shutDown() {
        shutDown = true;
        crash("shut down");
    }

    /** Sets the probability that sending a snapshot fails (0 once faults stop). */
    public void setSnapshotFailureProbability(double p) {
        snapshotFailureProbability = p;
    }

    /** Arms {@code fault}: it fires at the next Ready that reaches its step. */
    public void arm(DiskFault fault) {
        armedFault = fault;
    }

    /** The fault armed and not yet fired. */
    public DiskFault armedFault() {
        return armedFault;
    }

    /** The node's id. */
    public String id() {
        return id;
    }

    /** The core, or null while the node is down. */
    public RaftNode raft() {
        return raft;
    }

    /** Whether the core is running. */
    public boolean isUp() {
        return raft != null;
    }

    /** Whether the node was shut down for good. */
    public boolean isShutDown() {
        return shutDown;
    }

    /** Bumped at every start and every crash: ticks and callbacks of an older incarnation are ignored. */
    public int incarnation() {
        return incarnation;
    }

    /** The log (the view the core reads; equal to the durable state between events). */
    public SimulatedLogStore log() {
        return log;
    }

    /** The term and vote store. */
    public SimulatedMetaStore meta() {
        return meta;
    }

    /** The snapshot store. */
    public SimulatedSnapshotStore snapshots() {
        return snapshots;
    }

    /** The state machine, or null while the node is down. */
    public HashStateMachine stateMachine() {
        return stateMachine;
    }

    /** The configuration the node starts from when it has no snapshot. */
    public Membership bootstrap() {
        return bootstrap;
    }

    /** The node's log sink. */
    public BufferedCoreLog coreLog() {
        return coreLog;
    }

    /** The clock units between two ticks of this node. */
    public long tickPeriod() {
        return tickPeriod;
    }

    /** Reads confirmed by the core and not yet served. */
    public int pendingReadCount() {
        return pendingReads.size();
    }

    @Override
    public String toString() {
        if (raft == null) {
            return id + "[" + (shutDown ? "shut down" : "down") + " " + meta.hardState() + " " + log + "]";
        }
        return id + "[" + raft.role() + " t" + raft.term() + " leader=" + raft.leaderId() + " commit="
            + raft.commitIndex() + " applied=" + stateMachine.appliedIndex() + " " + log + " voters="
            + raft.membership().voters() + "]";
    }
}
