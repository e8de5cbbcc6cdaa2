package dev.dledger.raft.faults;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.transport.ClientProtocol;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;

/**
 * Runs a {@link FaultPlan} against a group of node processes: each step's faults go in at their planned time and
 * are lifted after their hold time, on one thread. Every action is logged with its time from the start of the faults
 * ({@link #events()}), so a failing run shows what happened when.
 *
 * <p>Lifting a step restarts the killed nodes, resumes the paused ones and heals the links first, then adds the
 * removed voters back (that needs a quorum). A voter that cannot be added back in time stays on a list that the next
 * steps and {@link #healAll} retry.
 */
final class Nemesis {

    private static final long ADMIN_TIMEOUT_MS = 10_000;
    /** Answers to a membership change that pass once the group settles (an election, a transfer, a change). */
    private static final Set<ClientProtocol.Status> PASSING = Set.of(ClientProtocol.Status.NOT_LEADER,
        ClientProtocol.Status.TRANSFERRING, ClientProtocol.Status.CHANGE_IN_PROGRESS, ClientProtocol.Status.TIMEOUT);


    private final FaultPlan plan;
    private final NodeProcesses processes;
    private final ProxyMesh mesh;
    private final RaftClient admin;
    private final GroupProbe probe;
    private final CountDownLatch stop = new CountDownLatch(1);
    private final List<String> events = new ArrayList<>();
    private final Map<FaultPlan.Kind, Integer> applied = new EnumMap<>(FaultPlan.Kind.class);
    /** The kinds of the faults of every step started. */
    private final Set<FaultPlan.Kind> drawn = java.util.EnumSet.noneOf(FaultPlan.Kind.class);
    private final Set<String> removed = new LinkedHashSet<>();
    private final List<String> crashes = new ArrayList<>();
    private long startNanos;

    Nemesis(FaultPlan plan, NodeProcesses processes, ProxyMesh mesh, RaftClient admin, GroupProbe probe) {
        this.plan = plan;
        this.processes = processes;
        this.mesh = mesh;
        this.admin = admin;
        this.probe = probe;
    }

    /** What was done when, one line per action. */
    synchronized List<String> events() {
        return new ArrayList<>(events);
    }

    /** Faults put in force so far. */
    synchronized int appliedCount() {
        return applied.values().stream().mapToInt(Integer::intValue).sum();
    }

    /**
     * The kinds drawn in the steps started but never put in force (every try skipped or refused): a run that ends
     * with any such kind tested less than it says, and fails.
     */
    synchronized Set<FaultPlan.Kind> neverApplied() {
        Set<FaultPlan.Kind> out = java.util.EnumSet.noneOf(FaultPlan.Kind.class);
        out.addAll(drawn);
        out.removeAll(applied.keySet());
        return out;
    }

    /** Faults put in force so far, by kind. */
    synchronized Map<FaultPlan.Kind, Integer> appliedByKind() {
        return new EnumMap<>(applied);
    }

    /** Asks {@link #run} to stop after the current step (whose faults it lifts). */
    void stop() {
        stop.countDown();
    }

    private synchronized void log(String what) {
        double t = (System.nanoTime() - startNanos) / 1e9;
        events.add(String.format("t=%8.3fs %s", t, what));
    }

    /**
     * Runs the plan until its steps end or {@link #stop()}; lifts the faults of each step it started.
     *
     * @param startNanos the start of the faults (the plan's time 0)
     */
    void run(long startNanos) {
        this.startNanos = startNanos;
        for (FaultPlan.Step step : plan.steps()) {
            if (!waitUntil(startNanos + TimeUnit.MILLISECONDS.toNanos(step.atMs()))) {
                return;
            }
            List<Runnable> lifts = new ArrayList<>();
            List<String> readds = new ArrayList<>();
            Set<String> busy = new LinkedHashSet<>();
            synchronized (this) {
                step.faults().forEach(f -> drawn.add(f.kind()));
            }
            // A removal goes first: the voters it leaves must be heard from (the leader refuses it with NO_QUORUM
            // otherwise, and that is right), which a partition or kill of the same step could prevent for its whole
            // hold, so that the removal drawn would never be tested.
            List<FaultPlan.Fault> faults = new ArrayList<>(step.faults());
            faults.sort(Comparator.comparing(f -> f.kind() != FaultPlan.Kind.REMOVE_MEMBER));
            for (FaultPlan.Fault f : faults) {
                apply(step, f, busy, lifts, readds);
            }
            waitUntil(System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(step.holdMs()));
            for (int i = lifts.size() - 1; i >= 0; i--) {
                lifts.get(i).run();
            }
            for (String id : readds) {
                readd(id, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ADMIN_TIMEOUT_MS));
            }
            for (String id : new ArrayList<>(removed)) {
                if (!readds.contains(id)) {
                    readd(id, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(2_000));
                }
            }
            restartCrashed("step " + step.number() + ": ");
        }
    }

    /** Nodes that exited on their own (not killed here), restarts included. */
    synchronized List<String> crashes() {
        return new ArrayList<>(crashes);
    }

    /** Restarts the nodes whose process exited on its own, and records each. */
    private void restartCrashed(String prefix) {
        for (Map.Entry<String, Integer> e : processes.exitedOnTheirOwn().entrySet()) {
            String what = e.getKey() + " exited on its own with code " + e.getValue();
            synchronized (this) {
                crashes.add(what);
            }
            log(prefix + what + " (see its log); restarted");
            processes.start(e.getKey());
        }
    }

    /** Waits until {@code deadline} (nanoTime); false if stopped first. */
    private boolean waitUntil(long deadline) {
        try {
            long left = deadline - System.nanoTime();
            return left <= 0 ? stop.getCount() > 0 : !stop.await(left, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private void apply(FaultPlan.Step step, FaultPlan.Fault f, Set<String> busy, List<Runnable> lifts,
                       List<String> readds) {
        String target = resolve(f, busy);
        String prefix = "step " + step.number() + ": ";
        if (target == null) {
            log(prefix + f.kind() + " skipped: every node is already taken by this step");
            return;
        }
        List<String> order = new ArrayList<>(f.order());
        order.remove(target);
        order.add(0, target);
        String what = f.describe(target);
        String name = "step " + step.number() + " " + f.kind();
        switch (f.kind()) {
            case KILL:
                busy.add(target);
                processes.kill(target);
                lifts.add(() -> {
                    processes.start(target);
                    log(prefix + "restarted " + target);
                });
                break;
            case PAUSE:
                busy.add(target);
                processes.pause(target);
                lifts.add(() -> {
                    processes.resume(target);
                    log(prefix + "SIGCONT " + target);
                });
                break;
            case PARTITION: {
                List<String> minority = order.subList(0, f.size());
                List<String> majority = order.subList(f.size(), order.size());
                mesh.add(name, cut(minority, majority, f.drop()));
                what += " " + minority + " | " + majority;
                lifts.add(() -> {
                    mesh.remove(name);
                    log(prefix + "healed partition " + minority + " | " + majority);
                });
                break;
            }
            case BRIDGE: {
                int k = (order.size() - 1) / 2;
                List<String> left = order.subList(0, k);
                String bridge = order.get(k);
                List<String> right = order.subList(k + 1, order.size());
                mesh.add(name, cut(left, right, f.drop()));
                what += " " + left + " | " + bridge + " | " + right;
                lifts.add(() -> {
                    mesh.remove(name);
                    log(prefix + "healed bridge partition " + left + " | " + bridge + " | " + right);
                });
                break;
            }
            case ONE_WAY: {
                List<ProxyMesh.LinkFault> links = new ArrayList<>();
                for (String other : order.subList(1, order.size())) {
                    links.add(f.inbound() ? link(other, target, f.drop()) : link(target, other, f.drop()));
                }
                mesh.add(name, links);
                lifts.add(() -> {
                    mesh.remove(name);
                    log(prefix + "healed one-way cut of " + target);
                });
                break;
            }
            case DELAY: {
                List<ProxyMesh.LinkFault> links = new ArrayList<>();
                for (String other : order.subList(1, order.size())) {
                    links.add(new ProxyMesh.LinkFault(target, other, ProxyMesh.LinkMode.DELAY, f.delayMs()));
                    links.add(new ProxyMesh.LinkFault(other, target, ProxyMesh.LinkMode.DELAY, f.delayMs()));
                }
                mesh.add(name, links);
                lifts.add(() -> {
                    mesh.remove(name);
                    log(prefix + "removed the delay of " + target);
                });
                break;
            }
            case REMOVE_MEMBER: {
                if (!removed.isEmpty()) {
                    log(prefix + "remove voter skipped: " + removed + " not yet added back");
                    return;
                }
                // Asked while the group elects (NOT_LEADER, or no answer), the removal is asked again until a leader
                // answers, as an operator would; so is one refused with NO_QUORUM, as while a voter it would leave is
                // still starting after a kill of the step before (the leader has not heard from it yet).
                ClientProtocol.Response r = removeOnceLed(target, Set.of(ClientProtocol.Status.NO_QUORUM),
                    Duration.ofMillis(ADMIN_TIMEOUT_MS));
                if (r != null && r.status() == ClientProtocol.Status.IS_LEADER && order.size() > 1) {
                    // A leader is not removed (it says IS_LEADER): it hands its leadership over first, as an operator
                    // is told to, and the removal is asked again until the new leader takes it. An heir the leader
                    // cannot reach now (a partition drawn in the same step) never takes over: the next one is tried.
                    List<String> heirs = new ArrayList<>();
                    for (String heir : order.subList(1, order.size())) {
                        heirs.add(heir);
                        adminCall(() -> admin.leadershipTransfer(heir));
                        r = removeOnceLed(target,
                            Set.of(ClientProtocol.Status.IS_LEADER, ClientProtocol.Status.NO_QUORUM), Duration.ofSeconds(4));
                        if (r != null && r.status() != ClientProtocol.Status.IS_LEADER) {
                            break;
                        }
                    }
                    what += " after leadership transfers to " + String.join(", then ", heirs);
                }
                if (r == null || r.status() != ClientProtocol.Status.OK) {
                    log(prefix + what + " refused: " + (r == null ? "no answer" : r.status()));
                    return;
                }
                removed.add(target);
                readds.add(target);
                what += " (config entry at index " + r.index() + ")";
                break;
            }
            default: {
                ClientProtocol.Response r = adminCall(() -> admin.leadershipTransfer(target));
                what += ": " + (r == null ? "no answer" : r.status() + (r.leaderHint() == null ? ""
                    : ", hint " + r.leaderHint()));
                break;
            }
        }
        synchronized (this) {
            applied.merge(f.kind(), 1, Integer::sum);
        }
        log(prefix + what + ", for " + step.holdMs() + " ms");
    }

    /**
     * Asks the group to remove {@code target} until the answer is neither missing, nor one that passes by itself
     * ({@link #PASSING}), nor one of {@code alsoAgain}, for at most {@code within}; returns the last answer (null when
     * none came).
     */
    private ClientProtocol.Response removeOnceLed(String target, Set<ClientProtocol.Status> alsoAgain,
                                                  Duration within) {
        ClientProtocol.Response[] last = {null};
        try {
            Awaitility.await().atMost(within).pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(100))
                .until(() -> {
                    last[0] = adminCall(() -> admin.changeMembership(target, false));
                    return last[0] != null && !PASSING.contains(last[0].status()) && !alsoAgain.contains(last[0].status());
                });
        } catch (ConditionTimeoutException e) {
            // The last answer is reported by the caller.
        }
        return last[0];
    }

    /** The fault's node: the leader (or the fallback) if planned so, else the planned one, skipping busy ones. */
    private String resolve(FaultPlan.Fault f, Set<String> busy) {
        String t = f.target();
        if (FaultPlan.LEADER.equals(t)) {
            t = probe.leader();
            if (t == null) {
                t = f.fallback();
            }
        }
        boolean process = f.kind() == FaultPlan.Kind.KILL || f.kind() == FaultPlan.Kind.PAUSE;
        if (f.kind() == FaultPlan.Kind.TRANSFER && t.equals(probe.leader())) {
            t = f.order().get(1).equals(t) ? f.order().get(0) : f.order().get(1);
        }
        if (!process || !busy.contains(t)) {
            return t;
        }
        for (String candidate : f.order()) {
            if (!busy.contains(candidate)) {
                return candidate;
            }
        }
        return null;
    }

    private static List<ProxyMesh.LinkFault> cut(List<String> a, List<String> b, boolean drop) {
        List<ProxyMesh.LinkFault> links = new ArrayList<>();
        for (String x : a) {
            for (String y : b) {
                links.add(link(x, y, drop));
                links.add(link(y, x, drop));
            }
        }
        return links;
    }

    private static ProxyMesh.LinkFault link(String from, String to, boolean drop) {
        return new ProxyMesh.LinkFault(from, to, drop ? ProxyMesh.LinkMode.DROP : ProxyMesh.LinkMode.BLACKHOLE, 0);
    }

    private interface AdminCall {
        CompletableFuture<ClientProtocol.Response> call();
    }

    private static ClientProtocol.Response adminCall(AdminCall c) {
        try {
            return c.call().get(ADMIN_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        } catch (Exception e) {
            return null;
        }
    }

    /**
     * Adds {@code id} back as a voter: asks the leader (every 100 ms) until it answers that {@code id} is a voter
     * (it catches {@code id} up first), so a config entry that a leader lost with its term is asked again.
     *
     * @return whether {@code id} is a voter again at the leader
     */
    private boolean readd(String id, long deadline) {
        int[] asked = {0};
        String[] last = {"no answer yet"};
        try {
            Awaitility.await("voter " + id + " back").atMost(Duration.ofNanos(Math.max(1, deadline - System.nanoTime())))
                .pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(100)).until(() -> {
                    Map<String, ClientProtocol.Response> views = probe.views();
                    last[0] = GroupProbe.describe(views);
                    String leader = GroupProbe.leaderOf(views);
                    if (leader == null) {
                        return false;
                    }
                    // The leader lists a node it is catching up among its followers before it is a voter: the
                    // answer ALREADY_MEMBER (or the node leading) is what says it is one again.
                    asked[0]++;
                    ClientProtocol.Response r = leader.equals(id) ? null : adminCall(() -> admin.changeMembership(id, true));
                    if (leader.equals(id) || (r != null && r.status() == ClientProtocol.Status.ALREADY_MEMBER)) {
                        log("added " + id + " back as a voter (leader " + leader + ", " + asked[0] + " requests)");
                        return true;
                    }
                    return false;
                });
        } catch (ConditionTimeoutException e) {
            log("could not add " + id + " back yet (" + asked[0] + " requests; " + last[0] + ")");
            return false;
        }
        synchronized (this) {
            removed.remove(id);
        }
        return true;
    }

    /**
     * Lifts everything after the run: resumes paused nodes, starts stopped ones, heals every link, and adds back
     * every removed voter.
     *
     * @param deadlineNanos until when voters are added back
     * @return the voters that could not be added back
     */
    List<String> healAll(long deadlineNanos) {
        restartCrashed("final heal: ");
        for (String id : mesh.ids()) {
            if (processes.paused(id)) {
                processes.resume(id);
                log("final heal: SIGCONT " + id);
            }
            if (!processes.alive(id)) {
                processes.start(id);
                log("final heal: started " + id);
            }
        }
        if (!mesh.activeFaults().isEmpty()) {
            log("final heal: links " + mesh.activeFaults());
        }
        mesh.healAll();
        List<String> left = new ArrayList<>();
        for (String id : new ArrayList<>(removed)) {
            if (!readd(id, deadlineNanos)) {
                left.add(id);
            }
        }
        log("final heal done");
        return left;
    }
}
