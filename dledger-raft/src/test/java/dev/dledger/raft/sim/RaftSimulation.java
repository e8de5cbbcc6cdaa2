package dev.dledger.raft.sim;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.ProposeResult;
import dev.dledger.raft.core.RaftConfig;
import dev.dledger.raft.core.RaftNode;
import dev.dledger.raft.core.ReadState;
import dev.dledger.raft.core.Ready;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.core.TimeoutNow;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * One deterministic simulation run of a Raft group: everything (group size, timeouts, flow-control limits, network
 * fault rates, clock skew, the fault schedule, client traffic and the core's election jitter) comes from one
 * {@link Random} seeded with the run's seed, so {@code new RaftSimulation(seed, settings).run()} replays a run
 * exactly.
 *
 * <p>A run has two phases. In the fault phase ({@link SimulationSettings#faultTicks()} nominal ticks) clients propose
 * and read throughout while a chaos schedule crashes and restarts nodes, partitions the network (both ways and one
 * way), arms disk faults (fsync failures, torn writes, crashes between persisting and sending or applying), changes
 * the membership (adds a fresh node, removes a voter and shuts it down once its removal commits) and transfers
 * leadership. Then everything is healed and restarted, and within {@link SimulationSettings#livenessTicks()} a leader
 * must commit a new proposal that every voter applies. The {@link InvariantChecker} runs after every event.
 *
 * <p>Not thread-safe; runs of different seeds are independent and may run on different threads.
 */
public final class RaftSimulation implements NodeObserver {

    private static final long TICK = SimulatedClock.UNITS_PER_TICK;
    private static final int MAX_NODES_CREATED = 9;

    private enum Phase {
        FAULTS, LIVENESS, DONE
    }

    private final long seed;
    private final SimulationSettings settings;
    private final Random random;
    private final SimulatedClock clock = new SimulatedClock();
    private final SimulatedScheduler scheduler = new SimulatedScheduler(clock);
    private final SimulatedNetwork network;
    private final InvariantChecker checker = new InvariantChecker(clock);
    private final TraceRecorder trace;
    private final Coverage coverage = new Coverage();
    private final TreeMap<String, SimulatedNode> nodes = new TreeMap<>();
    private final TreeMap<String, String> observed = new TreeMap<>();
    private final String profile;

    private final int initialNodes;
    private final int electionTicks;
    private final int heartbeatTicks;
    private final boolean preVote;
    private final boolean checkQuorum;
    private final String preferredLeader;
    private final int maxEntriesPerMessage;
    private final long maxBytesPerMessage;
    private final int maxInflightMessages;
    private final long maxInflightBytes;
    private final long maxApplyBytes;
    private final SimulatedNode.Settings nodeSettings;
    private final double snapshotFailure;

    private Phase phase = Phase.FAULTS;
    private int createdNodes;
    private long proposalSeq;
    private long readSeq;
    private long events;
    private TreeSet<String> committedVoters;
    private long lastCommittedConfig = -1;
    private long livenessStart;
    private Marker marker;

    private record Marker(String node, int incarnation, long index, long term) {
    }

    /** A run of {@code seed}; nothing happens before {@link #run()}. */
    public RaftSimulation(long seed, SimulationSettings settings) {
        this.seed = seed;
        this.settings = settings;
        this.random = new Random(seed);
        this.trace = new TraceRecorder(settings.traceLines());
        this.network = new SimulatedNetwork(scheduler, random, this::deliver);

        initialNodes = random.nextInt(4) == 0 ? 5 : 3;
        electionTicks = 8 + random.nextInt(5);
        heartbeatTicks = 1 + random.nextInt(2);
        preVote = random.nextInt(5) != 0 || settings.forcePreVote();
        checkQuorum = random.nextInt(8) != 0;
        preferredLeader = random.nextInt(5) == 0 ? "n1" : null;
        maxEntriesPerMessage = new int[] {1, 2, 4, 16}[random.nextInt(4)];
        maxBytesPerMessage = new long[] {64, 200, 1000, 1 << 16}[random.nextInt(4)];
        maxInflightMessages = new int[] {1, 2, 4, 64}[random.nextInt(4)];
        maxInflightBytes = new long[] {100, 400, 4000, 1 << 20}[random.nextInt(4)];
        maxApplyBytes = new long[] {60, 300, 1 << 20}[random.nextInt(3)];
        double drop = new double[] {0, 0.01, 0.03, 0.1}[random.nextInt(4)];
        double dup = new double[] {0, 0.01, 0.05}[random.nextInt(3)];
        double slow = new double[] {0, 0.02, 0.1}[random.nextInt(3)];
        network.setFaults(drop, dup, slow);
        // Slow messages take up to a few ticks, or in some runs up to several election timeouts (stale terms).
        long maxDelay = 10 + random.nextInt(60);
        long slowMaxDelay = random.nextInt(4) == 0 ? 1000 + random.nextInt(3000) : 300 + random.nextInt(500);
        network.setDelays(2, maxDelay, slowMaxDelay);
        snapshotFailure = new double[] {0, 0, 0.2}[random.nextInt(3)];
        int snapshotEvery = new int[] {2, 4, 8, 16, 64}[random.nextInt(5)];
        boolean fromCheckpoint = random.nextBoolean();
        // A third of the runs sync log writes in the background, as the production driver in sync flush mode.
        boolean backgroundSync = random.nextInt(3) == 0;
        int maxSyncDelay = new int[] {1, 5, 30, 200}[random.nextInt(4)];
        nodeSettings = new SimulatedNode.Settings(snapshotEvery, snapshotFailure, fromCheckpoint, backgroundSync,
            maxSyncDelay);
        profile = "nodes=" + initialNodes + " election=" + electionTicks + " heartbeat=" + heartbeatTicks
            + " preVote=" + preVote + " checkQuorum=" + checkQuorum + " preferred=" + preferredLeader
            + " perMsg=" + maxEntriesPerMessage + "/" + maxBytesPerMessage + "B inflight=" + maxInflightMessages
            + "/" + maxInflightBytes + "B apply=" + maxApplyBytes + "B delay<=" + maxDelay + " drop=" + drop
            + " dup=" + dup + " slow=" + slow + "(<=" + slowMaxDelay + ")"
            + " snapshotEvery=" + nodeSettings.snapshotEveryEntries() + " snapshotFailure=" + snapshotFailure
            + " checkpoint=" + nodeSettings.restartFromCheckpoint()
            + (backgroundSync ? " backgroundSync<=" + maxSyncDelay : "");
        for (String f : new String[] {"elections", "transfers", "config-changes", "snapshots-installed",
            "reads-served", "lease-reads-served", "crashes", "torn-writes", "fsync-failures", "crash-mid-ready",
            "partitions", "one-way-partitions", "truncations", "snapshot-failures", "background-sync",
            "leaders-forgotten"}) {
            coverage.declare(f);
        }
        if (backgroundSync) {
            coverage.hit("background-sync");
        }
    }

    /** The parameters drawn from the seed, for reports. */
    public String profile() {
        return profile;
    }

    /** Runs the simulation to the end of the liveness phase or to the first violation. */
    public SimulationResult run() {
        String invariant = null;
        String detail = null;
        try {
            setUp();
            while (phase != Phase.DONE) {
                if (!scheduler.hasNext()) {
                    throw new InvariantViolation("harness", "no event left to run");
                }
                SimulatedScheduler.Event e = scheduler.poll();
                String line = e.describe();
                if (e.subject() == null && ("TICK".equals(e.kind()) || "LIVENESS".equals(e.kind()))) {
                    // A routine event: hashed always, shown in the tail only when it made the node send something.
                    long sentBefore = network.sentCount();
                    long linesBefore = trace.lineCount();
                    trace.hashOnly(e.time(), line);
                    e.action().run();
                    if (network.sentCount() != sentBefore || trace.lineCount() != linesBefore + 1) {
                        trace.keepInTail(e.time(), line);
                    }
                } else {
                    trace.record(e.time(), line);
                    e.action().run();
                }
                observeRoles();
                checker.afterEvent(nodes.values());
                events++;
                if (events % 256 == 0) {
                    checker.fullCheck(nodes.values());
                }
                if (events > settings.maxEvents()) {
                    throw new InvariantViolation("harness", "more than " + settings.maxEvents() + " events");
                }
            }
            checker.fullCheck(nodes.values());
        } catch (InvariantViolation v) {
            invariant = v.invariant();
            detail = v.getMessage();
        } catch (Throwable t) {
            invariant = "exception";
            StringWriter sw = new StringWriter();
            t.printStackTrace(new PrintWriter(sw));
            detail = "exception while running " + describeLastEvent() + ": " + sw;
        }
        if (checker.leaderTerms() > 1) {
            coverage.hit("elections");
        }
        if (checker.leaseReadsServed() > 0) {
            coverage.hit("lease-reads-served");
        }
        String report = invariant == null ? null : report(invariant, detail);
        return new SimulationResult(seed, invariant, detail, trace.hash(), events, clock.now(), coverage, report);
    }

    private String describeLastEvent() {
        List<String> tail = trace.tail();
        return tail.isEmpty() ? "(no event)" : tail.get(tail.size() - 1).trim();
    }

    // ----- set-up and the fault phase --------------------------------------------------------------------------------

    private void setUp() {
        List<String> ids = new ArrayList<>();
        for (int i = 1; i <= initialNodes; i++) {
            ids.add("n" + i);
        }
        Membership bootstrap = new Membership(ids);
        committedVoters = new TreeSet<>(ids);
        for (String id : ids) {
            createNode(id, bootstrap);
        }
        for (SimulatedNode n : new ArrayList<>(nodes.values())) {
            n.start();
        }
        long end = settings.faultTicks() * TICK;
        scheduleClient(TICK);
        scheduleReads(2 * TICK);
        scheduleChaos(10 * TICK);
        scheduler.schedule(end, "HEAL", "-", null, this::startLiveness);
    }

    private SimulatedNode createNode(String id, Membership bootstrap) {
        createdNodes++;
        RaftConfig config = new RaftConfig(id, electionTicks, heartbeatTicks, preVote, checkQuorum, electionTicks / 2,
            maxEntriesPerMessage, maxBytesPerMessage, maxInflightMessages, maxInflightBytes, maxApplyBytes,
            preferredLeader, 2 * heartbeatTicks);
        long period = TICK + random.nextInt((int) (TICK * 2 / 5) + 1) - TICK / 5;
        BufferedCoreLog log = new BufferedCoreLog(id, clock, settings.debugLogs(), settings.logLines());
        SimulatedNode n = new SimulatedNode(id, config, bootstrap, period, scheduler, network, random, this, log,
            nodeSettings);
        nodes.put(id, n);
        observed.put(id, "");
        return n;
    }

    private void deliver(Message m) {
        SimulatedNode n = nodes.get(m.to());
        if (n == null || !n.isUp()) {
            return;
        }
        if (m instanceof TimeoutNow) {
            coverage.hit("transfers");
        }
        n.receive(m);
    }

    private SimulatedNode leader() {
        SimulatedNode best = null;
        for (SimulatedNode n : nodes.values()) {
            RaftNode r = n.raft();
            if (r != null && r.role() == Role.LEADER && (best == null || r.term() > best.raft().term())) {
                best = n;
            }
        }
        return best;
    }

    /** A node that believes it leads, any term (a deposed leader may not know yet), or null. */
    private SimulatedNode randomLeader() {
        List<SimulatedNode> leaders = new ArrayList<>();
        for (SimulatedNode n : nodes.values()) {
            if (n.isUp() && n.raft().role() == Role.LEADER) {
                leaders.add(n);
            }
        }
        return leaders.isEmpty() ? null : leaders.get(random.nextInt(leaders.size()));
    }

    /** Where a client sends a request: mostly the newest leader, sometimes a stale one or any node. */
    private SimulatedNode clientTarget(int newestPercent, int anyLeaderPercent) {
        int pick = random.nextInt(100);
        SimulatedNode target = null;
        if (pick < newestPercent) {
            target = leader();
        } else if (pick < newestPercent + anyLeaderPercent) {
            target = randomLeader();
        }
        return target != null ? target : randomUpNode();
    }

    private SimulatedNode randomUpNode() {
        List<SimulatedNode> up = new ArrayList<>();
        for (SimulatedNode n : nodes.values()) {
            if (n.isUp()) {
                up.add(n);
            }
        }
        return up.isEmpty() ? null : up.get(random.nextInt(up.size()));
    }

    private byte[] payload() {
        long id = ++proposalSeq;
        byte[] b = new byte[8 + random.nextInt(40)];
        random.nextBytes(b);
        ByteBuffer.wrap(b).putLong(id);
        return b;
    }

    private void scheduleClient(long delay) {
        scheduler.schedule(delay, "PROPOSE", "-", null, () -> {
            if (phase != Phase.FAULTS) {
                return;
            }
            SimulatedNode target = clientTarget(75, 15);
            if (target != null) {
                propose(target, 1 + (random.nextInt(4) == 0 ? random.nextInt(4) : 0));
            }
            scheduleClient(TICK / 2 + random.nextInt((int) (3 * TICK)));
        });
    }

    private ProposeResult propose(SimulatedNode target, int count) {
        List<byte[]> batch = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            batch.add(payload());
        }
        ProposeResult r = count == 1 ? target.raft().propose(batch.get(0)) : target.raft().propose(batch);
        trace.record(clock.now(), "  " + target.id() + " propose x" + count + " -> " + r);
        if (r.accepted()) {
            checker.onProposalAccepted(target, r.index(), r.term(), batch);
        }
        target.processReady();
        return r;
    }

    private void scheduleReads(long delay) {
        scheduler.schedule(delay, "READ", "-", null, () -> {
            if (phase != Phase.FAULTS) {
                return;
            }
            SimulatedNode target = clientTarget(45, 45);
            if (target != null) {
                long id = ++readSeq;
                boolean lease = checkQuorum && random.nextBoolean();
                checker.onReadIssued(target, id, lease);
                ProposeResult r = target.raft().readIndex(id, lease);
                trace.record(clock.now(), "  " + target.id() + " read " + id + (lease ? " lease" : "") + " -> " + r);
                target.processReady();
            }
            scheduleReads(TICK + random.nextInt((int) (6 * TICK)));
        });
    }

    private void scheduleChaos(long delay) {
        scheduler.schedule(delay, "CHAOS", "-", null, () -> {
            if (phase != Phase.FAULTS) {
                return;
            }
            chaos();
            scheduleChaos(2 * TICK + random.nextInt((int) (15 * TICK)));
        });
    }

    /**
     * What a production transport reports when a process dies (its port refuses the reconnect): some of the live
     * nodes hear that {@code gone} is gone, each a few ticks later, and forget it if it was their leader.
     */
    private void reportGone(String gone) {
        for (SimulatedNode m : new ArrayList<>(nodes.values())) {
            if (m.id().equals(gone) || random.nextInt(2) == 0) {
                continue;
            }
            String id = m.id();
            scheduler.schedule((1 + random.nextInt(3)) * TICK, "PEER-DOWN", id, null, () -> {
                SimulatedNode to = nodes.get(id);
                SimulatedNode dead = nodes.get(gone);
                if (to.isUp() && to.raft() != null && dead != null && !dead.isUp()
                    && gone.equals(to.raft().leaderId())) {
                    coverage.hit("leaders-forgotten");
                    trace.record(clock.now(), "  " + id + " told " + gone + " is gone");
                    to.raft().forgetLeader(gone);
                    to.processReady();
                }
            });
        }
    }

    private void chaos() {
        int pick = random.nextInt(100);
        if (pick < 22) {
            SimulatedNode n = randomUpNode();
            if (n != null) {
                coverage.hit("crashes");
                trace.record(clock.now(), "  crash " + n.id());
                n.crash("crash");
                reportGone(n.id());
            }
        } else if (pick < 44) {
            partition();
        } else if (pick < 62) {
            SimulatedNode n = randomUpNode();
            if (n != null) {
                DiskFault[] faults = {DiskFault.META_FSYNC_FAILURE, DiskFault.LOG_FSYNC_FAILURE, DiskFault.TORN_WRITE,
                    DiskFault.TORN_WRITE, DiskFault.CRASH_BEFORE_SEND, DiskFault.CRASH_BEFORE_APPLY};
                DiskFault f = faults[random.nextInt(faults.length)];
                trace.record(clock.now(), "  arm " + f + " on " + n.id());
                n.arm(f);
            }
        } else if (pick < 80) {
            changeMembership();
        } else {
            SimulatedNode l = leader();
            if (l != null) {
                List<String> voters = new ArrayList<>(l.raft().membership().voters());
                voters.remove(l.id());
                if (!voters.isEmpty()) {
                    String target = voters.get(random.nextInt(voters.size()));
                    ProposeResult r = l.raft().transferLeadership(target);
                    trace.record(clock.now(), "  " + l.id() + " transfer to " + target + " -> " + r);
                    l.processReady();
                }
            }
        }
    }

    private void partition() {
        List<String> ids = new ArrayList<>();
        for (SimulatedNode n : nodes.values()) {
            if (!n.isShutDown()) {
                ids.add(n.id());
            }
        }
        if (ids.size() < 2) {
            return;
        }
        List<String[]> cut = new ArrayList<>();
        int kind = random.nextInt(4);
        if (kind == 0 || kind == 1) {
            String victim;
            SimulatedNode l = leader();
            victim = kind == 1 && l != null ? l.id() : ids.get(random.nextInt(ids.size()));
            for (String o : ids) {
                if (!o.equals(victim)) {
                    cut.add(new String[] {victim, o});
                    cut.add(new String[] {o, victim});
                }
            }
        } else if (kind == 2) {
            List<String> left = new ArrayList<>();
            List<String> right = new ArrayList<>();
            for (String id : ids) {
                (random.nextBoolean() ? left : right).add(id);
            }
            for (String a : left) {
                for (String b : right) {
                    cut.add(new String[] {a, b});
                    cut.add(new String[] {b, a});
                }
            }
        } else {
            coverage.hit("one-way-partitions");
            int links = 1 + random.nextInt(3);
            for (int i = 0; i < links; i++) {
                String a = ids.get(random.nextInt(ids.size()));
                String b = ids.get(random.nextInt(ids.size()));
                if (!a.equals(b)) {
                    cut.add(new String[] {a, b});
                }
            }
        }
        if (cut.isEmpty()) {
            return;
        }
        coverage.hit("partitions");
        StringBuilder sb = new StringBuilder("  cut");
        for (String[] c : cut) {
            network.cut(c[0], c[1]);
            sb.append(' ').append(c[0]).append('>').append(c[1]);
        }
        trace.record(clock.now(), sb.toString());
        scheduler.schedule((10 + random.nextInt(150)) * TICK, "HEAL_LINKS", "-", null, () -> {
            for (String[] c : cut) {
                network.heal(c[0], c[1]);
            }
        });
    }

    private void changeMembership() {
        SimulatedNode l = leader();
        if (l == null) {
            return;
        }
        List<String> voters = l.raft().membership().voters();
        boolean add = voters.size() <= 2 || (voters.size() < 5 && random.nextBoolean());
        if (add) {
            if (createdNodes >= MAX_NODES_CREATED) {
                return;
            }
            String id = "n" + (createdNodes + 1);
            SimulatedNode fresh = createNode(id, Membership.EMPTY);
            fresh.start();
            // Every other new node joins the way an operator replaces a broker: caught up first, then made a voter by
            // the leader itself (stageVoter); the others are added at once (addVoter). No extra randomness is drawn,
            // so the runs of the other events stay as they were.
            boolean staged = createdNodes % 2 == 0;
            ProposeResult r = staged ? l.raft().stageVoter(id, "sim-" + id + ":1") : l.raft().addVoter(id);
            trace.record(clock.now(), "  " + l.id() + (staged ? " stage " : " add ") + id + " -> " + r);
            if (r.status() == ProposeResult.Status.CATCHING_UP) {
                coverage.hit("voters-staged");
            } else if (!r.accepted()) {
                fresh.shutDown();
            }
            if (l.isUp()) {
                l.processReady();
            }
        } else {
            String victim = voters.get(random.nextInt(voters.size()));
            ProposeResult r = l.raft().removeVoter(victim);
            trace.record(clock.now(), "  " + l.id() + " remove " + victim + " -> " + r);
            l.processReady();
        }
    }

    // ----- the liveness phase ----------------------------------------------------------------------------------------

    private void startLiveness() {
        phase = Phase.LIVENESS;
        livenessStart = clock.now();
        network.healAll();
        network.setFaults(0, 0, 0);
        for (SimulatedNode n : nodes.values()) {
            n.arm(DiskFault.NONE);
            n.setSnapshotFailureProbability(0);
            if (!n.isUp() && !n.isShutDown()) {
                n.restart();
            }
        }
        scheduler.schedule(TICK, "LIVENESS", "-", null, this::livenessProbe);
    }

    private void livenessProbe() {
        if (clock.now() - livenessStart > settings.livenessTicks() * TICK) {
            throw new InvariantViolation("liveness", "no leader committed a new proposal applied by every voter within "
                + settings.livenessTicks() + " ticks after healing; marker=" + marker + "; nodes: " + nodes.values());
        }
        if (marker != null) {
            SimulatedNode n = nodes.get(marker.node());
            if (!n.isUp() || n.incarnation() != marker.incarnation()) {
                marker = null;
            } else if (checker.isAcked(marker.index(), marker.term())) {
                SimulatedNode l = leader();
                if (l != null && allVotersApplied(l.raft().membership(), marker.index())) {
                    phase = Phase.DONE;
                    trace.record(clock.now(), "  converged after " + (clock.now() - livenessStart) / TICK + " ticks");
                    return;
                }
            } else if (n.stateMachine().appliedIndex() >= marker.index()
                || n.log().term(marker.index()) != marker.term()) {
                // Applied with another term, or truncated away: the proposal is lost; propose again.
                marker = null;
            }
        }
        if (marker == null) {
            SimulatedNode l = leader();
            if (l != null) {
                ProposeResult r = propose(l, 1);
                if (r.accepted() && l.isUp()) {
                    marker = new Marker(l.id(), l.incarnation(), r.index(), r.term());
                }
            }
        }
        scheduler.schedule(TICK, "LIVENESS", "-", null, this::livenessProbe);
    }

    private boolean allVotersApplied(Membership m, long index) {
        for (String v : m.voters()) {
            SimulatedNode n = nodes.get(v);
            if (n == null || !n.isUp() || n.stateMachine().appliedIndex() < index) {
                return false;
            }
        }
        return true;
    }

    // ----- observation ----------------------------------------------------------------------------------------------

    private void observeRoles() {
        for (Map.Entry<String, SimulatedNode> e : nodes.entrySet()) {
            RaftNode r = e.getValue().raft();
            String now = r == null ? "DOWN" : r.role() + " t" + r.term() + " leader=" + r.leaderId();
            String before = observed.put(e.getKey(), now);
            if (!now.equals(before)) {
                trace.record(clock.now(), "  " + e.getKey() + " is " + now);
            }
        }
    }

    @Override
    public void onReady(SimulatedNode node, Ready rd) {
        if (rd.truncateFrom() >= 0 && rd.truncateFrom() <= node.log().lastIndex()) {
            coverage.hit("truncations");
        }
        checker.onReady(node, rd);
    }

    @Override
    public void onSnapshotInstalled(SimulatedNode node, SnapshotMeta meta, byte[] data) {
        coverage.hit("snapshots-installed");
        trace.record(clock.now(), "  " + node.id() + " installs snapshot " + meta.index() + "@" + meta.term());
        checker.onSnapshotInstalled(node, meta, data);
    }

    @Override
    public void onPersisted(SimulatedNode node, Ready rd) {
        checker.onPersisted(node, rd);
    }

    @Override
    public void onSend(SimulatedNode node, Message m) {
        checker.onSend(node, m);
    }

    @Override
    public void onApplied(SimulatedNode node, Entry e) {
        checker.onApplied(node, e);
        if (e.type() == EntryType.CONFIG && e.index() > lastCommittedConfig) {
            lastCommittedConfig = e.index();
            coverage.hit("config-changes");
            TreeSet<String> next = new TreeSet<>(Membership.decode(e.data()).voters());
            trace.record(clock.now(), "  committed config " + next + " at " + e.index());
            for (String gone : committedVoters) {
                if (!next.contains(gone)) {
                    scheduler.schedule((5 + random.nextInt(40)) * TICK, "SHUTDOWN", gone, null, () -> {
                        SimulatedNode n = nodes.get(gone);
                        if (n != null && !n.isShutDown()) {
                            n.shutDown();
                        }
                    });
                }
            }
            committedVoters = next;
        }
    }

    @Override
    public void onReadState(SimulatedNode node, ReadState rs) {
        checker.onReadState(node, rs);
    }

    @Override
    public void onReadServed(SimulatedNode node, ReadState rs) {
        checker.onReadServed(node, rs);
        coverage.hit("reads-served");
    }

    @Override
    public void onSnapshotTaken(SimulatedNode node, SnapshotMeta meta) {
        coverage.hit("snapshots-taken");
    }

    @Override
    public void onSnapshotSendFailed(SimulatedNode node, String peer) {
        coverage.hit("snapshot-failures");
    }

    @Override
    public void onCrash(SimulatedNode node, String why) {
        checker.onCrash(node, why);
        if (why.contains(DiskFault.TORN_WRITE.name())) {
            coverage.hit("torn-writes");
        } else if (why.contains("FSYNC")) {
            coverage.hit("fsync-failures");
        } else if (why.contains("CRASH_BEFORE")) {
            coverage.hit("crash-mid-ready");
        }
        if (!node.isShutDown()) {
            String id = node.id();
            // Mostly a slow restart; sometimes a supervisor restarts the process almost at once, so that a follower
            // comes back within a leader's lease having forgotten which leader it heard from.
            long delay = random.nextInt(4) == 0 ? 1 + random.nextInt(4) : 5 + random.nextInt(80);
            scheduler.schedule(delay * TICK, "RESTART", id, null, () -> {
                SimulatedNode n = nodes.get(id);
                if (!n.isUp() && !n.isShutDown()) {
                    n.restart();
                }
            });
        }
    }

    @Override
    public void onRestart(SimulatedNode node) {
        checker.onRestart(node);
    }

    // ----- reporting --------------------------------------------------------------------------------------------------

    private String report(String invariant, String detail) {
        StringBuilder sb = new StringBuilder();
        sb.append("seed ").append(seed).append(" broke ").append(invariant).append(" at t=").append(clock.now())
            .append(" after ").append(events).append(" events\n");
        sb.append("  ").append(detail).append('\n');
        sb.append("  replay: mvn -q -pl dledger-raft test -Dtest=RaftSimulationTest -Dsim.runs=1 -Dsim.seed=")
            .append(seed).append('\n');
        sb.append("  profile: ").append(profile).append('\n');
        sb.append("  network cuts: ").append(network.describeCuts()).append('\n');
        sb.append("  nodes:\n");
        for (SimulatedNode n : nodes.values()) {
            sb.append("    ").append(n).append('\n');
        }
        sb.append("  last events:\n");
        for (String line : trace.tail()) {
            sb.append("    ").append(line).append('\n');
        }
        for (SimulatedNode n : nodes.values()) {
            sb.append("  log of ").append(n.id()).append(":\n");
            for (String line : n.coreLog().lines()) {
                sb.append("    ").append(line).append('\n');
            }
        }
        return sb.toString();
    }

    /** The coverage counts of this run so far. */
    public Coverage coverage() {
        return coverage;
    }

    /** The group's invariant checker (figures: acks, reads, committed entries). */
    public InvariantChecker checker() {
        return checker;
    }
}
