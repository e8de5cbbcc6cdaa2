package dev.dledger.rocketmq;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.faults.ProxyMesh;
import dev.dledger.raft.transport.ClientProtocol;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Injects faults into a running broker group, one after another, on a schedule drawn from one seed: kill -9 and
 * restart (the leader, a follower, two nodes, the whole group), SIGSTOP and SIGCONT (a paused leader or follower),
 * network partitions through the {@link ProxyMesh} between the brokers (the leader or a follower isolated as a
 * minority of one, a bridge node that alone reaches both others, one-way cuts out of or into the leader), slow links,
 * and leadership transfers. Each fault is held for a while, then healed, then the group gets a quiet gap.
 *
 * <p>Replay: everything the schedule decides (the kind of each fault, its length, the gap after it, which follower,
 * which end of a bridge, how a link fails, how slow) comes from the seed, drawn in a fixed order, the same for the
 * same seed whatever the group does. Which node is the leader is asked from the group when the fault starts, and
 * that and every action are printed with their time since the start, so a failing run can be read and rerun.
 *
 * <p>Runs on the caller's thread; {@link #healAll()} may follow from the same thread.
 */
final class BrokerNemesis {

    /**
     * The faults, with how often each is drawn (out of the sum of the weights of the kinds in use) and the family that
     * {@code faults.kinds} names them by (the Raft target's names).
     */
    enum Kind {
        KILL_LEADER(12, "kill"), KILL_FOLLOWER(8, "kill"), PAUSE_LEADER(12, "pause"), PAUSE_FOLLOWER(6, "pause"),
        ISOLATE_LEADER(12, "partition"), ISOLATE_FOLLOWER(6, "partition"), BRIDGE(8, "bridge"),
        CUT_OUT_OF_LEADER(6, "one_way"), CUT_INTO_LEADER(6, "one_way"), SLOW_LINKS(4, "delay"), TRANSFER(10, "transfer"),
        KILL_TWO(4, "kill"), KILL_ALL(3, "kill");

        final int weight;
        final String family;

        Kind(int weight, String family) {
            this.weight = weight;
            this.family = family;
        }

        String label() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }

        /**
         * The kinds of the families named in {@code list} (comma-separated, e.g. {@code kill,pause}); every kind when
         * it is blank. {@code remove_member} is known but does not apply to brokers.
         *
         * @throws IllegalArgumentException naming a family that is not known, or when none of those named applies
         */
        static List<Kind> of(String list) {
            if (list == null || list.isBlank()) {
                return List.of(values());
            }
            Set<String> known = new TreeSet<>();
            for (Kind k : values()) {
                known.add(k.family);
            }
            List<Kind> out = new ArrayList<>();
            for (String f : list.split(",")) {
                String family = f.trim().toLowerCase(Locale.ROOT);
                if (!known.contains(family) && !family.equals("remove_member")) {
                    throw new IllegalArgumentException("faults.kinds=" + list + ": no fault kind " + family
                        + " (known: " + String.join(", ", known) + ", remove_member)");
                }
                for (Kind k : values()) {
                    if (k.family.equals(family) && !out.contains(k)) {
                        out.add(k);
                    }
                }
            }
            if (out.isEmpty()) {
                throw new IllegalArgumentException("faults.kinds=" + list + ": none of these applies to a broker group "
                    + "(its membership is fixed by dLegerPeers)");
            }
            return out;
        }
    }

    /** Everything one fault draws from the seed, drawn before it starts. */
    private record Plan(Kind kind, long holdMs, long gapMs, int pick, int pick2, ProxyMesh.LinkMode mode, long delayMs) {
    }

    private static final long MIN_HOLD_MS = 1_000;
    private static final long MAX_HOLD_MS = 8_000;
    private static final long MIN_GAP_MS = 500;
    private static final long MAX_GAP_MS = 4_000;
    /** How long a transfer drawn while the group has no leader waits for one. */
    private static final long TRANSFER_LEADER_WAIT_S = 60;

    private final BrokerGroup group;
    private final ProxyMesh links;
    private final int size;
    private final Random random;
    private final long startNanos;
    private final PrintStream out;
    private final boolean[] killed;
    private final boolean[] paused;
    private final List<Kind> kinds;
    private final Map<String, Integer> counts = new LinkedHashMap<>();
    /** Faults that took effect (a kill, a SIGSTOP, links cut, a transfer the leader took), by kind. */
    private final Map<String, Integer> applied = new LinkedHashMap<>();
    /** The kind of the fault being injected. */
    private Kind current;
    private int faults;

    /**
     * @param kinds      the kinds to draw from
     * @param startNanos the run's start ({@link System#nanoTime()}), which every printed time counts from
     */
    private Set<Integer> witnesses = Set.of();

    BrokerNemesis(BrokerGroup group, ProxyMesh links, int size, List<Kind> kinds, long seed, long startNanos,
                  PrintStream out) {
        this.group = group;
        this.kinds = List.copyOf(kinds);
        this.links = links;
        this.size = size;
        this.random = new Random(seed);
        this.startNanos = startNanos;
        this.out = out;
        this.killed = new boolean[size];
        this.paused = new boolean[size];
    }

    /** Injects faults until {@code length} has passed (the last one is healed before it returns). */
    void run(Duration length) throws Exception {
        long end = System.nanoTime() + length.toNanos();
        while (System.nanoTime() < end) {
            Plan p = draw();
            inject(p, end);
            healAll();
            pauseUntil(Math.min(end, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(p.gapMs())));
        }
    }

    /** Faults injected so far. */
    int faults() {
        return faults;
    }

    /**
     * The kinds drawn but never put in force (each try skipped or refused): a run that ends with any tested less than
     * it reports, and fails.
     */
    List<String> neverApplied() {
        List<String> out = new ArrayList<>(counts.keySet());
        out.removeAll(applied.keySet());
        return out;
    }

    private void applied() {
        applied.merge(current.label(), 1, Integer::sum);
    }

    /** How many of each kind were injected, e.g. {@code kill-leader 3, transfer 2}. */
    String summary() {
        List<String> parts = new ArrayList<>();
        counts.forEach((k, n) -> parts.add(k + " " + n));
        return parts.isEmpty() ? "none" : String.join(", ", parts);
    }

    private Plan draw() {
        int total = 0;
        for (Kind k : kinds) {
            total += k.weight;
        }
        int r = random.nextInt(total);
        Kind kind = null;
        for (Kind k : kinds) {
            r -= k.weight;
            if (r < 0) {
                kind = k;
                break;
            }
        }
        long hold = MIN_HOLD_MS + (long) (random.nextDouble() * (MAX_HOLD_MS - MIN_HOLD_MS));
        long gap = MIN_GAP_MS + (long) (random.nextDouble() * (MAX_GAP_MS - MIN_GAP_MS));
        int pick = random.nextInt(size);
        int pick2 = random.nextInt(size);
        ProxyMesh.LinkMode mode = random.nextBoolean() ? ProxyMesh.LinkMode.DROP : ProxyMesh.LinkMode.BLACKHOLE;
        long delay = 20 + random.nextInt(130);
        return new Plan(kind, hold, gap, pick, pick2, mode, delay);
    }

    private void inject(Plan p, long runEnd) throws Exception {
        int leader = leader();
        // Without a known leader the fault falls on a node of the seed's choosing.
        int l = leader >= 0 ? leader : p.pick();
        String who = leader >= 0 ? " (leader)" : " (no leader found)";
        int follower = other(l, p.pick());
        int third = thirdOf(l, follower);
        long hold = Math.min(p.holdMs(), Math.max(0, TimeUnit.NANOSECONDS.toMillis(runEnd - System.nanoTime())));
        faults++;
        counts.merge(p.kind().label(), 1, Integer::sum);
        current = p.kind();
        switch (p.kind()) {
            case KILL_LEADER -> kill(List.of(l), who, hold);
            case KILL_FOLLOWER -> kill(List.of(follower), " (follower)", hold);
            case KILL_TWO -> kill(List.of(l, follower), who + " and a follower", hold);
            case KILL_ALL -> kill(allNodes(), " (every node)", hold);
            case PAUSE_LEADER -> pause(l, who, hold);
            case PAUSE_FOLLOWER -> pause(follower, " (follower)", hold);
            case ISOLATE_LEADER -> {
                cut(isolating(l, p.mode()));
                log("partition: n" + l + who + " cut off from both others (" + p.mode() + "), " + hold + " ms");
                hold(hold);
            }
            case ISOLATE_FOLLOWER -> {
                cut(isolating(follower, p.mode()));
                log("partition: n" + follower + " (follower) cut off from both others (" + p.mode() + "), " + hold
                    + " ms");
                hold(hold);
            }
            case BRIDGE -> {
                // The bridge is one of the three by the seed; the two others cannot reach each other.
                int bridge = p.pick2();
                int a = (bridge + 1) % size;
                int b = (bridge + 2) % size;
                cut(List.of(link(a, b, p.mode()), link(b, a, p.mode())));
                log("partition: bridge n" + bridge + ", n" + a + " and n" + b + " cut off from each other (leader "
                    + name(leader) + ", " + p.mode() + "), " + hold + " ms");
                hold(hold);
            }
            case CUT_OUT_OF_LEADER -> {
                cut(List.of(link(l, follower, p.mode()), link(l, third, p.mode())));
                log("partition: one-way, n" + l + who + " cannot send to n" + follower + " and n" + third
                    + " but hears them (" + p.mode() + "), " + hold + " ms");
                hold(hold);
            }
            case CUT_INTO_LEADER -> {
                cut(List.of(link(follower, l, p.mode()), link(third, l, p.mode())));
                log("partition: one-way, n" + follower + " and n" + third + " cannot send to n" + l + who
                    + " but hear it (" + p.mode() + "), " + hold + " ms");
                hold(hold);
            }
            case SLOW_LINKS -> {
                List<ProxyMesh.LinkFault> slow = new ArrayList<>();
                for (int from = 0; from < size; from++) {
                    for (int to = 0; to < size; to++) {
                        if (from != to) {
                            slow.add(new ProxyMesh.LinkFault("n" + from, "n" + to, ProxyMesh.LinkMode.DELAY, p.delayMs()));
                        }
                    }
                }
                cut(slow);
                log("slow network: every link delayed by " + p.delayMs() + " ms, " + hold + " ms");
                hold(hold);
            }
            // A witness never takes a leadership over: the transfer goes to the data member among the others.
            case TRANSFER -> transfer(leader, witnesses.contains(follower) ? third : follower);
            default -> throw new IllegalStateException("no such fault " + p.kind());
        }
    }

    /** Puts the links' faults in force, named after this fault. */
    private void cut(List<ProxyMesh.LinkFault> faultyLinks) {
        links.add("fault " + faults + " (" + faultyLinks.size() + " links)", faultyLinks);
        applied();
    }

    private static ProxyMesh.LinkFault link(int from, int to, ProxyMesh.LinkMode mode) {
        return new ProxyMesh.LinkFault("n" + from, "n" + to, mode, 0);
    }

    /** Every link to and from {@code node}. */
    private List<ProxyMesh.LinkFault> isolating(int node, ProxyMesh.LinkMode mode) {
        List<ProxyMesh.LinkFault> out = new ArrayList<>();
        for (int other = 0; other < size; other++) {
            if (other != node) {
                out.add(link(node, other, mode));
                out.add(link(other, node, mode));
            }
        }
        return out;
    }

    private void kill(List<Integer> nodes, String who, long holdMs) throws Exception {
        for (int n : nodes) {
            if (paused[n]) {
                group.broker(n).resume();
                paused[n] = false;
            }
            group.broker(n).kill();
            killed[n] = true;
        }
        applied();
        log("kill -9 " + names(nodes) + who + ", restart after " + holdMs + " ms");
        hold(holdMs);
    }

    private void pause(int node, String who, long holdMs) throws Exception {
        group.broker(node).pause();
        paused[node] = true;
        applied();
        log("SIGSTOP n" + node + who + ", SIGCONT after " + holdMs + " ms");
        hold(holdMs);
    }

    private void transfer(int leader, int target) throws InterruptedException {
        // Drawn right after a fault that left the group without a leader: a transfer needs one, so it waits for the
        // next rather than count a fault that was never tried. After every broker was killed that takes their JVM
        // starts, store recoveries and an election: 16 s in a CI run on 2 busy cores, where 10 s was too short.
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(TRANSFER_LEADER_WAIT_S);
        while (leader < 0 && System.nanoTime() - until < 0) {
            Thread.sleep(100);
            leader = leader();
        }
        if (leader < 0) {
            log("leadership transfer skipped: no leader found within " + TRANSFER_LEADER_WAIT_S + " s");
            return;
        }
        if (target == leader || witnesses.contains(target)) {
            for (int i = 0; i < size; i++) {
                if (i != leader && !witnesses.contains(i)) {
                    target = i;
                    break;
                }
            }
        }
        Map<String, InetSocketAddress> peers = new LinkedHashMap<>();
        for (int i = 0; i < size; i++) {
            peers.put("n" + i, group.raftAddress(i));
        }
        String answer;
        try (RaftClient c = new RaftClient(BrokerGroup.BROKER_NAME, peers, 3000, 2, group.adminToken(), null)) {
            answer = c.leadershipTransfer("n" + target).get(10, TimeUnit.SECONDS).status().name();
        } catch (Exception e) {
            answer = e.toString();
        }
        if ("OK".equals(answer)) {
            applied();
        }
        log("leadership transfer n" + leader + " -> n" + target + ": " + answer);
    }

    /** Ends every fault in force: resumes paused nodes, restarts killed ones, heals every link. */
    void healAll() throws Exception {
        List<String> done = new ArrayList<>();
        for (int n = 0; n < size; n++) {
            if (paused[n]) {
                group.broker(n).resume();
                paused[n] = false;
                done.add("SIGCONT n" + n);
            }
        }
        List<String> faulty = links.activeFaults();
        links.healAll();
        if (!faulty.isEmpty()) {
            done.add("healed " + String.join(", ", faulty));
        }
        for (int n = 0; n < size; n++) {
            if (killed[n]) {
                group.broker(n).start();
                killed[n] = false;
                done.add("restarted n" + n);
            }
        }
        if (!done.isEmpty()) {
            log("heal: " + String.join(", ", done));
        }
    }

    /** The node that reports itself leader with the highest term, or -1 when none does. */
    private int leader() {
        int leader = -1;
        long term = -1;
        for (int i = 0; i < size; i++) {
            if (killed[i] || paused[i]) {
                continue;
            }
            ClientProtocol.Response r = group.raftStatus(i);
            if (r != null && "LEADER".equals(r.role()) && r.term() > term) {
                leader = i;
                term = r.term();
            }
        }
        return leader;
    }

    /** The group's witnesses (issue 19): never the target of a leadership transfer. */
    void witnesses(Set<Integer> nodes) {
        witnesses = Set.copyOf(nodes);
    }

    /** A node other than {@code node}, chosen by {@code pick}. */
    private int other(int node, int pick) {
        int o = pick % size;
        return o == node ? (o + 1) % size : o;
    }

    private int thirdOf(int a, int b) {
        for (int i = 0; i < size; i++) {
            if (i != a && i != b) {
                return i;
            }
        }
        throw new IllegalStateException("no third node besides n" + a + " and n" + b);
    }

    private List<Integer> allNodes() {
        List<Integer> all = new ArrayList<>();
        for (int i = 0; i < size; i++) {
            all.add(i);
        }
        return all;
    }

    private static String name(int node) {
        return node < 0 ? "none" : "n" + node;
    }

    private static String names(List<Integer> nodes) {
        List<String> n = new ArrayList<>();
        for (int i : nodes) {
            n.add("n" + i);
        }
        return String.join(" ", n);
    }

    private void hold(long ms) {
        pauseUntil(System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms));
    }

    private static void pauseUntil(long deadlineNanos) {
        long left;
        while ((left = deadlineNanos - System.nanoTime()) > 0) {
            LockSupport.parkNanos(left);
        }
    }

    /** Prints one line: the time since the start, then what happened. */
    void log(String what) {
        double s = (System.nanoTime() - startNanos) / 1e9;
        out.printf(Locale.ROOT, "fault @ %8.3f s: %s%n", s, what);
        out.flush();
    }
}
