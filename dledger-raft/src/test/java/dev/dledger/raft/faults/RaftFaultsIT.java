package dev.dledger.raft.faults;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.dledger.raft.testing.FreePorts;
import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.ClientProtocol;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.Test;

/**
 * The fault run of the Raft library: a group of {@code dledger server} processes (a key-value register) on
 * loopback, every peer link through a {@link FaultProxy}, clients writing unique values and reading keys while a
 * seeded {@link FaultPlan} kills (SIGKILL) and restarts nodes, pauses them (SIGSTOP/SIGCONT), partitions the network
 * (majority/minority, a bridge node, one-way, by resetting or by stalling connections), delays links, transfers
 * leadership and removes and adds back voters. Then everything is healed, the group must converge, the nodes are
 * stopped, and {@link HistoryChecker} checks the history against every node's log on disk. It prints
 * <pre>faults: seed S, D s, F faults, O operations, lost L, duplicated U, divergent V, stale reads R</pre>
 * and fails when L, U, V or R is not 0, or when the group does not converge after healing. A failure prints the
 * seed, every fault with its time and the nodes' last log lines; the run folder stays in
 * {@code target/faults/}.
 *
 * <p>System properties: {@code faults.nodes} (default 3), {@code faults.seconds} of faults (default 35),
 * {@code faults.seed} (default: a random one, printed), {@code faults.kinds} (default: all; e.g. {@code pause,kill} to
 * draw from those only, to chase one kind of fault). {@code verify} runs it with the defaults; the {@code faults}
 * Maven profile runs it (alone) for longer, see the README. Slow or failing disks are not injected here: the nodes
 * are separate processes on the real file system, and the store's fault-injection hooks are per-instance decorators
 * of the simulation and store tests (see {@code StorageFailureTest}, {@code SimulatedLogStore}).
 */
class RaftFaultsIT {

    private static final String GROUP = "default";
    private static final int WRITERS = 3;
    private static final int READERS = 2;
    private static final int KEYS = 5;
    private static final long CONVERGE_MS = 90_000;
    /**
     * Writes should be acknowledged again within this after the heal, and never stop for longer during the run
     * (faults that leave no quorum are shorter); a longer wait is reported and the run folder kept (not failed).
     */
    private static final long SLOW_RECOVERY_MS = 10_000;
    private static final long SAMPLE_NANOS = TimeUnit.SECONDS.toNanos(2);

    private boolean keepRunFolder;

    /** The run's settings from the system properties, checked. */
    record Settings(int nodes, int seconds, long seed, boolean seedGiven, Set<FaultPlan.Kind> kinds) {

        static Settings fromSystemProperties() {
            int nodes = intProperty("faults.nodes", 3, 3, 9);
            int seconds = intProperty("faults.seconds", 35, 5, 24 * 3600);
            String target = System.getProperty("faults.target", "").trim();
            if (!target.isEmpty() && !target.equals("raft") && !target.equals("broker")) {
                throw new IllegalArgumentException("-Dfaults.target=" + target + ": must be raft or broker");
            }
            Set<FaultPlan.Kind> kinds = EnumSet.allOf(FaultPlan.Kind.class);
            String kindsText = System.getProperty("faults.kinds", "").trim();
            if (!kindsText.isEmpty()) {
                kinds.clear();
                for (String k : kindsText.split(",")) {
                    try {
                        kinds.add(FaultPlan.Kind.valueOf(k.trim().toUpperCase(Locale.ROOT).replace('-', '_')));
                    } catch (IllegalArgumentException e) {
                        throw new IllegalArgumentException("-Dfaults.kinds=" + kindsText + ": unknown kind '" + k
                            + "'; the kinds are " + EnumSet.allOf(FaultPlan.Kind.class));
                    }
                }
            }
            String seedText = System.getProperty("faults.seed", "").trim();
            if (seedText.isEmpty()) {
                return new Settings(nodes, seconds, new SecureRandom().nextLong(), false, kinds);
            }
            try {
                return new Settings(nodes, seconds, Long.parseLong(seedText), true, kinds);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("-Dfaults.seed=" + seedText + ": not a whole number (a seed "
                    + "printed by an earlier run)");
            }
        }

        private static int intProperty(String name, int dflt, int min, int max) {
            String text = System.getProperty(name, "").trim();
            if (text.isEmpty()) {
                return dflt;
            }
            int v;
            try {
                v = Integer.parseInt(text);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("-D" + name + "=" + text + ": not a whole number");
            }
            if (v < min || v > max) {
                throw new IllegalArgumentException("-D" + name + "=" + v + ": must be between " + min + " and " + max);
            }
            return v;
        }
    }

    @Test
    void acknowledgedWritesSurviveFaultsAndReadsStayLinearizable() throws Exception {
        Settings settings = Settings.fromSystemProperties();
        run(settings);
    }

    private void run(Settings settings) throws Exception {
        List<String> ids = new ArrayList<>();
        Map<String, InetSocketAddress> real = new LinkedHashMap<>();
        int[] ports = FreePorts.take(settings.nodes());
        for (int i = 0; i < settings.nodes(); i++) {
            ids.add("n" + i);
            real.put("n" + i, new InetSocketAddress(InetAddress.getLoopbackAddress(), ports[i]));
        }
        Random setup = new Random(settings.seed());
        boolean syncFlush = setup.nextBoolean();
        long durationMs = TimeUnit.SECONDS.toMillis(settings.seconds());
        FaultPlan plan = FaultPlan.draw(settings.seed(), ids, durationMs, settings.kinds());
        Path dir = Path.of("target", "faults", "raft-" + settings.nodes() + "n-" + settings.seed()).toAbsolutePath();
        deleteTree(dir);
        System.out.printf("faults: raft, %d nodes, %d s of faults, %s seed %d (replay: -Dfaults.seed=%d), "
            + "flush %s, "
            + "%d planned steps%s, run folder %s%n", settings.nodes(), settings.seconds(),
            settings.seedGiven() ? "given" : "random", settings.seed(), settings.seed(), syncFlush ? "sync" : "async",
            plan.steps().size(),
            settings.kinds().size() == FaultPlan.Kind.values().length ? "" : " of " + settings.kinds(), dir);

        History history = new History();
        List<String> report = new ArrayList<>();
        try (ProxyMesh mesh = new ProxyMesh(real);
             NodeProcesses processes = new NodeProcesses(dir, mesh, List.of("--flush", syncFlush ? "sync" : "async",
                 "--data-file-size", Integer.toString(1 << 20), "--index-file-size", Integer.toString(64 << 10)));
             GroupProbe probe = new GroupProbe(GROUP, real, 500);
             RaftClient admin = new RaftClient(GROUP, real, 3_000, 4)) {
            Nemesis nemesis = new Nemesis(plan, processes, mesh, admin, probe);
            try {
                HistoryChecker.Verdict verdict = runAndCheck(settings, real, history, processes, probe, nemesis,
                    durationMs, report);
                report.forEach(System.out::println);
                System.out.printf("faults: seed %d, %d s, %d faults, %d operations, lost %d, duplicated %d, "
                        + "divergent %d, stale reads %d%n", settings.seed(), settings.seconds(), nemesis.appliedCount(),
                    history.operations(), verdict.lost(), verdict.duplicated(), verdict.divergent(),
                    verdict.staleReads());
                // A run in which a drawn kind of fault never took effect (or no fault at all) did not test what it
                // reports: it fails, whatever the history says.
                if (nemesis.appliedCount() == 0 || !nemesis.neverApplied().isEmpty()) {
                    printForReplay(settings, plan, nemesis, processes, ids, dir);
                    fail("faults: seed " + settings.seed() + ": " + nemesis.appliedCount() + " faults applied ("
                        + nemesis.appliedByKind() + "); drawn but never applied: " + nemesis.neverApplied());
                }
                if (!verdict.clean()) {
                    verdict.problems().forEach(p -> System.out.println("  " + p));
                    printForReplay(settings, plan, nemesis, processes, ids, dir);
                    fail("faults: seed " + settings.seed() + ": lost " + verdict.lost() + ", duplicated "
                        + verdict.duplicated() + ", divergent " + verdict.divergent() + ", stale reads "
                        + verdict.staleReads() + " (see the problems and the fault schedule above)");
                }
            } catch (Throwable t) {
                writeSchedule(nemesis, dir);
                if (!(t instanceof AssertionError && String.valueOf(t.getMessage()).startsWith("faults: seed"))) {
                    report.forEach(System.out::println);
                    printForReplay(settings, plan, nemesis, processes, ids, dir);
                }
                throw t;
            }
            writeSchedule(nemesis, dir);
        }
        if (keepRunFolder) {
            System.out.println("faults: run folder kept: " + dir);
        } else {
            deleteTree(dir);
        }
    }

    /** Keeps the schedule as run next to the run folder (which is deleted after a clean run). */
    private static void writeSchedule(Nemesis nemesis, Path dir) {
        Path file = dir.resolveSibling(dir.getFileName() + "-schedule.txt");
        try {
            Files.createDirectories(dir.getParent());
            Files.write(file, nemesis.events());
        } catch (IOException e) {
            System.out.println("faults: cannot write " + file + ": " + e.getMessage());
        }
    }

    private HistoryChecker.Verdict runAndCheck(Settings settings, Map<String, InetSocketAddress> real, History history,
                                               NodeProcesses processes, GroupProbe probe, Nemesis nemesis,
                                               long durationMs, List<String> report) throws Exception {
        List<String> ids = new ArrayList<>(real.keySet());
        for (String id : ids) {
            processes.start(id);
        }
        long startedAt = System.nanoTime();
        Awaitility.await("a first leader").atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(50))
            .until(() -> probe.leader() != null);
        report.add(String.format("faults: first leader after %d ms", ms(System.nanoTime() - startedAt)));

        Workload workload = new Workload(GROUP, real, history, WRITERS, READERS, KEYS, settings.seed());
        workload.start();
        long faultsStart = System.nanoTime();
        Thread nemesisThread = new Thread(() -> nemesis.run(faultsStart), "nemesis");
        nemesisThread.start();
        nemesisThread.join(durationMs);
        nemesis.stop();
        nemesisThread.join();
        report.add(String.format("faults: %d s of faults done (%.1f s with the last step), %d faults: %s",
            settings.seconds(), (System.nanoTime() - faultsStart) / 1e9, nemesis.appliedCount(),
            nemesis.appliedByKind()));

        // Heal everything, then the group must take writes again and converge.
        long healStart = System.nanoTime();
        List<String> notBack = nemesis.healAll(healStart + TimeUnit.SECONDS.toNanos(60));
        long healed = System.nanoTime();
        long ackedAtHeal = history.acknowledged();
        List<String> samples = new ArrayList<>();
        long[] nextSample = {healed + SAMPLE_NANOS};
        boolean writesAgain = awaitQuietly(Duration.ofSeconds(60), () -> {
            if (System.nanoTime() - nextSample[0] > 0) {
                nextSample[0] += SAMPLE_NANOS;
                samples.add(String.format("  %5.1f s after the heal: %d more acknowledged; %s",
                    (System.nanoTime() - healed) / 1e9, history.acknowledged() - ackedAtHeal,
                    GroupProbe.describe(probe.views())));
            }
            return history.acknowledged() >= ackedAtHeal + 20;
        });
        long recoveredMs = ms(System.nanoTime() - healed);
        report.add(String.format(writesAgain ? "faults: healed in %d ms; writes acknowledged again %d ms later"
            : "faults: healed in %d ms; NO write acknowledged in the %d ms after", ms(healed - healStart), recoveredMs));
        if (recoveredMs > SLOW_RECOVERY_MS) {
            // Not a safety problem, but worth a look: keep the node logs.
            keepRunFolder = true;
            report.add("faults: the group took more than " + SLOW_RECOVERY_MS + " ms to take writes again after the "
                + "heal; the run folder is kept. Samples:");
            report.addAll(samples);
        }
        workload.stop();
        boolean clientsDone = workload.awaitStopped(Workload.REQUEST_TIMEOUT_MS * Workload.MAX_ATTEMPTS + 30_000);
        String converged = converge(real, probe);
        report.add("faults: " + (converged == null ? "converged: " + GroupProbe.describe(probe.views())
            : "NOT converged: " + converged));
        List<String> killed = processes.stopAll(30);

        Map<String, List<Entry>> replicas = new LinkedHashMap<>();
        for (String id : ids) {
            replicas.put(id, readLog(processes.storeDir(id)));
        }
        HistoryChecker.Verdict verdict = new HistoryChecker(RaftFaultsIT::decodeSet).check(history, replicas);
        long[] gap = longestWithoutAcknowledgement(history, faultsStart);
        report.add(String.format("faults: longest time without an acknowledged write: %d ms (ending at t=%.1f s)",
            gap[0], gap[1] / 1000.0));
        if (gap[0] > SLOW_RECOVERY_MS) {
            keepRunFolder = true;
        }
        long unknown = history.writes().size() - history.acknowledged();
        report.add(String.format("faults: %d writes acknowledged, %d of unknown outcome, %d reads answered, %d "
                + "entries in the longest log, %d process starts%s", history.acknowledged(), unknown,
            history.reads().size(), verdict.compared(), processes.starts(),
            killed.isEmpty() ? "" : ", killed after SIGTERM timed out: " + killed));
        List<String> crashes = nemesis.crashes();
        crashes.addAll(processes.exitedOnTheirOwn().entrySet().stream()
            .map(e -> e.getKey() + " exited on its own with code " + e.getValue()).toList());
        if (!crashes.isEmpty()) {
            // Not a safety problem by itself (a crash is a fault the group must survive), but a bug to look at.
            keepRunFolder = true;
            report.add("faults: NODES CRASHED (the run folder is kept): " + crashes);
        }
        assertTrue(workload.failures().isEmpty(), "client threads failed: " + workload.failures());
        assertTrue(clientsDone, "the clients did not finish their last operation after the heal");
        assertTrue(notBack.isEmpty(), "voters not added back after the heal: " + notBack);
        assertTrue(writesAgain, "no write acknowledged within 60 s after the heal");
        assertTrue(converged == null, "the group did not converge after the heal: " + converged);
        assertTrue(history.acknowledged() > 0, "no write was acknowledged at all");
        return verdict;
    }

    /**
     * The longest time no write was acknowledged, from the first acknowledgement to the last: its length and when it
     * ended, both in milliseconds (the end from the start of the faults).
     */
    private static long[] longestWithoutAcknowledgement(History history, long faultsStart) {
        long[] ends = history.writes().stream().filter(w -> w.outcome() == History.Outcome.OK)
            .mapToLong(History.Write::endNanos).sorted().toArray();
        long longest = 0;
        long at = faultsStart;
        for (int i = 1; i < ends.length; i++) {
            if (ends[i] - ends[i - 1] > longest) {
                longest = ends[i] - ends[i - 1];
                at = ends[i];
            }
        }
        return new long[] {ms(longest), ms(at - faultsStart)};
    }

    /**
     * Waits until one leader counts every other node as a follower matching its last index, and every node has
     * committed that index; adds back a node the leader does not count as a voter.
     *
     * @return null when converged, else the last views
     */
    private static String converge(Map<String, InetSocketAddress> real, GroupProbe probe) {
        List<String> ids = new ArrayList<>(real.keySet());
        String[] last = {""};
        try (RaftClient admin = new RaftClient(GROUP, real, 3_000, 3)) {
            boolean ok = awaitQuietly(Duration.ofMillis(CONVERGE_MS), () -> {
                Map<String, ClientProtocol.Response> views = probe.views();
                last[0] = GroupProbe.describe(views);
                String leader = GroupProbe.leaderOf(views);
                if (leader == null || views.size() < ids.size()) {
                    return false;
                }
                ClientProtocol.Response l = views.get(leader);
                for (String id : ids) {
                    if (id.equals(leader)) {
                        continue;
                    }
                    ClientProtocol.PeerLag lag = l.followers().stream().filter(p -> p.id().equals(id)).findFirst()
                        .orElse(null);
                    if (lag == null) {
                        admin.changeMembership(id, true);
                        return false;
                    }
                    if (lag.match() != l.lastIndex()) {
                        return false;
                    }
                }
                return views.values().stream()
                    .allMatch(v -> v.index() == l.lastIndex() && v.lastIndex() == l.lastIndex());
            });
            return ok ? null : last[0];
        }
    }

    private static boolean awaitQuietly(Duration atMost, Callable<Boolean> condition) {
        try {
            Awaitility.await().atMost(atMost).pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(100))
                .until(condition);
            return true;
        } catch (ConditionTimeoutException e) {
            return false;
        }
    }

    /** A stopped node's whole log, read from its store folder. */
    private static List<Entry> readLog(Path store) throws IOException {
        List<Entry> all = new ArrayList<>();
        try (SegmentedLogStore s = SegmentedLogStore.open(store, StoreConfig.detect(store, StoreConfig.defaults()))) {
            SegmentedLogStore.VerifyReport report = s.verify();
            if (report.problem() != null) {
                throw new IllegalStateException(store + " does not verify: " + report.problem());
            }
            long next = s.firstIndex();
            while (next <= s.lastIndex()) {
                List<Entry> chunk = s.entries(next, s.lastIndex() + 1, 4 << 20);
                if (chunk.isEmpty()) {
                    throw new IllegalStateException(store + ": no entry at " + next + " though the last is "
                        + s.lastIndex());
                }
                all.addAll(chunk);
                next = chunk.get(chunk.size() - 1).index() + 1;
            }
        }
        return all;
    }

    /** The key and value of a register's set command; null for anything else. */
    static HistoryChecker.KeyValue decodeSet(byte[] body) {
        ByteBuffer b = ByteBuffer.wrap(body);
        if (b.remaining() < 9 || b.get() != 'S') {
            return null;
        }
        String key = string(b);
        String value = key == null ? null : string(b);
        return value == null || b.hasRemaining() ? null : new HistoryChecker.KeyValue(key, value);
    }

    private static String string(ByteBuffer b) {
        if (b.remaining() < 4) {
            return null;
        }
        int n = b.getInt();
        if (n < 0 || n > b.remaining()) {
            return null;
        }
        byte[] s = new byte[n];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    private static void printForReplay(Settings settings, FaultPlan plan, Nemesis nemesis, NodeProcesses processes,
                                       List<String> ids, Path dir) {
        System.out.printf("faults: FAILED with seed %d; replay: mvn -B -P faults verify -Dfaults.target=raft "
            + "-Dfaults.nodes=%d -Dfaults.seconds=%d -Dfaults.seed=%d; run folder %s%n", settings.seed(),
            settings.nodes(), settings.seconds(), settings.seed(), dir);
        System.out.println("faults: the schedule as run (time from the start of the faults):");
        nemesis.events().forEach(e -> System.out.println("  " + e));
        System.out.println("faults: the plan of seed " + plan.seed() + ":");
        for (FaultPlan.Step s : plan.steps()) {
            System.out.printf("  step %d at %d ms for %d ms: %s%n", s.number(), s.atMs(), s.holdMs(),
                s.faults().stream().map(f -> f.kind() + " " + f.target()).toList());
        }
        for (String id : ids) {
            System.out.println("===== last lines of " + id + " (" + processes.log(id) + ") =====");
            System.out.println(processes.tail(id, 60));
        }
    }

    private static long ms(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + dir, e);
        }
    }
}
