package dev.dledger.raft.sim;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Runs the deterministic Raft simulation over many seeds.
 *
 * <pre>
 * mvn -q -pl dledger-raft test -Dtest=RaftSimulationTest                      # CI: seed corpus + a few fresh seeds
 * mvn -q -pl dledger-raft test -Dtest=RaftSimulationTest -Dsim.runs=20000     # nightly
 * mvn -q -pl dledger-raft test -Dtest=RaftSimulationTest -Dsim.runs=1 -Dsim.seed=42   # replay one seed
 * </pre>
 *
 * <p>Properties: {@code sim.runs} (runs of the corpus and fresh seeds, default {@value #DEFAULT_RUNS}, plus the
 * {@link #FOUND_SEEDS}); {@code sim.seed} (run seeds S, S+1, ... instead of the corpus 1, 2, ... plus fresh and found
 * seeds); {@code sim.faultTicks} (length of the fault
 * phase); {@code sim.forcePreVote} (true: pre-vote on in every profile); {@code sim.threads} (parallel runs,
 * default the machine's processors); {@code sim.failFast} (true: stop at the first violation and print after how
 * many runs it came, in seed order). Half the three-node runs (even seeds) are two data members and a witness (issue
 * 19). Fresh seeds are drawn from {@code System.nanoTime()} here only, and printed.
 * The test prints each failing seed with its report (replayed with debug logs), a coverage line, the table of the
 * named hard situations ({@link RaftSimulation#SITUATIONS}) and ends with the line
 * {@code simulation: N runs, V violations, first seed S}; it fails when V is not 0, and when a named situation
 * occurred in fewer runs than {@link #MIN_SITUATION_SHARE} asks (from {@value #MIN_RUNS_FOR_COVERAGE} runs on).
 */
class RaftSimulationTest {

    /**
     * Runs when {@code sim.runs} is not given (CI). Each run drives production drivers for about 27,000 events, some
     * 0.2 to 0.3 s of CPU, so CI's 1,000 take about a minute on two processors (1,100 runs a minute on an idle
     * machine); the documented command runs 2,000 (a run of the core alone, before issue 16, took a hundredth of that).
     */
    static final int DEFAULT_RUNS = 1000;
    /** Fresh seeds among the runs when no seed is given, at most. */
    static final int MAX_FRESH_SEEDS = 5;
    /**
     * Seeds of long runs that once failed, run after the corpus when no seed is given: 777015663 (a deposed leader
     * sent the snapshot it had named before it installed its successor's, with the new bytes under the old index:
     * {@code snapshot-state}), 777014999 (a node whose add was lost with its leader's term called elections for
     * ever in a run without pre-vote and check-quorum: {@code liveness}), 999003288 (a witness removed from the group
     * dropped bodies on a permission computed before a data member was added that did not hold them: the checker
     * judged a non-member by the new configuration, {@code witness-drop-rule}).
     */
    static final long[] FOUND_SEEDS = {777015663L, 777014999L, 999003288L};
    /**
     * Seeds that failed with fault phases of {@value #LONG_FAULT_TICKS} ticks ({@code -Dsim.faultTicks}), run with
     * that phase when no seed is given: 555008601 and 555009678 (a copied snapshot chunk acknowledgement started a
     * second chain of chunks: {@code harness: more than 2000000 events}), 555002483 (a lost chunk waited for the
     * core's re-send: {@code liveness}), 444006116 (a follower answered a request of a leader's earlier incarnation
     * with its seq, which confirmed reads of the restarted leader: {@code read-linearizability}), 222001456 and
     * 222001524 (a node added to the group snapshotted where it knew no configuration, and a witness took the empty
     * membership for its promotion: {@code state-machine-safety}), 321006200 (a node restarted 480 entries behind
     * its commit index handed every pass of its catch-up to the blocking-work thread, because a snapshot was due by the
     * commit index, and applied one small batch per disk delay: {@code liveness}), 975008769 (two members added
     * empty, on links that lose and delay a tenth of all messages; leaderships shorter than a 7,477-byte snapshot's
     * transfer in 64-byte chunks, and each new leader's transfer started at offset 0 because a follower resumed only
     * the same sender's: {@code liveness}), 733006668 (without pre-vote, a voter far behind that had not learnt its
     * new two-member configuration campaigned first in every term, and the other member, which needed its vote, never
     * got it: {@code liveness}; a node that cannot vote for a more up-to-date candidate of its term now waits two to
     * three election timeouts). The schedules changed since most
     * were found, so they no longer replay those histories; they stay as long runs.
     */
    static final long[] FOUND_LONG_PHASE_SEEDS = {555008601L, 555009678L, 555002483L, 444006116L, 222001456L,
        222001524L, 321006200L, 975008769L, 733006668L};
    static final int LONG_FAULT_TICKS = 5000;
    /** Runs from which the coverage of the named situations is asserted (fewer say little). */
    static final int MIN_RUNS_FOR_COVERAGE = 100;
    /**
     * The least share of runs in which each named situation must occur. The schedules play them on purpose; the
     * shares seen are several times these (figure 8 in nearly every run, a deposed leader asked for a lease read in
     * about 40%, snapshots racing appends in about 60%, a leader crashed with acknowledged entries it had not synced
     * in about 15%: a third of the runs use flush=sync; a data member caught up from a witness leader in about a third; a
     * witness promoted to a data member, its log replaced by a snapshot first, in about 5%; a follower getting a request
     * of an older term from the node that leads its term now, in about 60%).
     */
    static final Map<String, Double> MIN_SITUATION_SHARE = Map.of(
        "figure-8", 0.5,
        "deposed-leader-lease-read", 0.15,
        "leader-crash-unsynced-acked", 0.06,
        "snapshot-racing-appends", 0.25,
        "leaders-forgotten", 0.4,
        "witness-tail-handed", 0.1,
        "witness-promoted", 0.02,
        "old-request-of-current-leader", 0.3);

    @Test
    void simulatedGroupsKeepRaftInvariantsAndRecover() throws InterruptedException, ExecutionException {
        int runs = Integer.getInteger("sim.runs", DEFAULT_RUNS);
        if (runs < 1) {
            throw new IllegalArgumentException("sim.runs must be >= 1, was " + runs);
        }
        String seedProperty = System.getProperty("sim.seed");
        List<Long> seeds = new ArrayList<>();
        if (seedProperty != null && !seedProperty.isBlank()) {
            long first = Long.parseLong(seedProperty.trim());
            for (int i = 0; i < runs; i++) {
                seeds.add(first + i);
            }
        } else {
            int fresh = runs == 1 ? 0 : Math.min(MAX_FRESH_SEEDS, Math.max(1, runs / 100));
            for (int i = 1; i <= runs - fresh; i++) {
                seeds.add((long) i);
            }
            if (runs > 1) {
                for (long found : FOUND_SEEDS) {
                    seeds.add(found);
                }
            }
            long base = System.nanoTime();
            for (int i = 0; i < fresh; i++) {
                long s = mix(base + i);
                seeds.add(s);
                System.out.println("simulation: fresh seed " + s);
            }
        }
        SimulationSettings settings = SimulationSettings.defaults();
        Integer faultTicks = Integer.getInteger("sim.faultTicks");
        if (faultTicks != null) {
            settings = settings.withFaultTicks(faultTicks);
        }
        if (Boolean.getBoolean("sim.forcePreVote")) {
            settings = settings.withForcePreVote(true);
        }
        int threads = Math.max(1, Integer.getInteger("sim.threads", Runtime.getRuntime().availableProcessors()));
        boolean failFast = Boolean.getBoolean("sim.failFast");

        long started = System.nanoTime();
        List<SimulationResult> results = failFast ? runUntilViolation(seeds, settings)
            : runAll(seeds, settings, threads);
        long elapsedMs = (System.nanoTime() - started) / 1_000_000;

        Coverage total = new Coverage();
        List<SimulationResult> failed = new ArrayList<>();
        long events = 0;
        long recoverySum = 0;
        long recoveryMax = 0;
        long slowestSeed = seeds.get(0);
        for (SimulationResult r : results) {
            total.addRun(r.coverage());
            events += r.events();
            if (!r.passed()) {
                failed.add(r);
            } else {
                long recovery = (r.endTime() - settings.faultTicks() * SimulatedClock.UNITS_PER_TICK)
                    / SimulatedClock.UNITS_PER_TICK;
                recoverySum += recovery;
                if (recovery > recoveryMax) {
                    recoveryMax = recovery;
                    slowestSeed = r.seed();
                }
            }
        }
        for (SimulationResult r : failed) {
            SimulationResult replay = new RaftSimulation(r.seed(), settings.withDebugLogs(true)).run();
            System.out.println("simulation: FAILED seed " + r.seed() + ": " + r.detail());
            if (replay.traceHash() != r.traceHash() || !String.valueOf(replay.invariant()).equals(r.invariant())) {
                System.out.println("simulation: WARNING the replay with debug logs diverged (hash "
                    + Long.toHexString(r.traceHash()) + " vs " + Long.toHexString(replay.traceHash()) + ", "
                    + replay.invariant() + "): printing the original report");
                System.out.println(r.report());
            } else {
                System.out.println(replay.report());
            }
        }
        if (results.size() <= 10) {
            for (SimulationResult r : results) {
                System.out.println("simulation: seed " + r.seed() + " trace hash " + Long.toHexString(r.traceHash())
                    + ", " + r.events() + " events, " + (r.passed() ? "passed" : "failed: " + r.invariant()));
            }
        }
        System.out.println("simulation coverage (runs with each feature): " + total.summary());
        List<String> thin = new ArrayList<>();
        System.out.println("simulation situations (runs in which each occurred, of " + results.size() + "):");
        for (String situation : RaftSimulation.SITUATIONS) {
            long count = total.count(situation);
            double min = MIN_SITUATION_SHARE.get(situation);
            long needed = (long) Math.ceil(min * results.size());
            boolean asserted = results.size() >= MIN_RUNS_FOR_COVERAGE;
            System.out.printf("  %-28s %6d  (%5.1f%%, at least %d%s)%n", situation, count,
                100.0 * count / results.size(), needed, asserted ? "" : ": not asserted below "
                    + MIN_RUNS_FOR_COVERAGE + " runs");
            if (asserted && count < needed) {
                thin.add(situation + " occurred in " + count + " of " + results.size() + " runs, fewer than " + needed);
            }
        }
        int passed = results.size() - failed.size();
        System.out.println("simulation stats: " + events / results.size() + " events/run, recovery after healing "
            + (passed == 0 ? "-" : String.valueOf(recoverySum / passed)) + " ticks mean, " + recoveryMax + " max (seed "
            + slowestSeed + ", bound " + settings.livenessTicks() + "), " + elapsedMs + " ms, "
            + (elapsedMs == 0 ? "-" : String.valueOf(results.size() * 60_000L / elapsedMs)) + " runs/min");
        System.out.println("simulation: " + results.size() + " runs, " + failed.size() + " violations, first seed "
            + seeds.get(0));
        if (!failed.isEmpty()) {
            StringBuilder sb = new StringBuilder("simulation found " + failed.size() + " violation(s):");
            for (SimulationResult r : failed) {
                sb.append("\n  seed ").append(r.seed()).append(": ").append(firstLine(r.detail()));
            }
            fail(sb.toString());
        }
        if (!failFast && !thin.isEmpty()) {
            fail("simulation reached named situations too rarely: " + String.join("; ", thin));
        }
    }

    @Test
    void seedsFoundWithLongFaultPhasesPass() throws InterruptedException, ExecutionException {
        String seedProperty = System.getProperty("sim.seed");
        assumeTrue(seedProperty == null || seedProperty.isBlank(), "a seed was given: only it runs");
        List<Long> seeds = new ArrayList<>();
        for (long s : FOUND_LONG_PHASE_SEEDS) {
            seeds.add(s);
        }
        SimulationSettings settings = SimulationSettings.defaults().withFaultTicks(LONG_FAULT_TICKS);
        List<String> failed = new ArrayList<>();
        for (SimulationResult r : runAll(seeds, settings, Runtime.getRuntime().availableProcessors())) {
            System.out.println("simulation: seed " + r.seed() + " (fault phase " + LONG_FAULT_TICKS + " ticks) "
                + r.events() + " events, " + (r.passed() ? "passed" : "failed: " + firstLine(r.detail())));
            if (!r.passed()) {
                failed.add(r.seed() + ": " + firstLine(r.detail()));
            }
        }
        if (!failed.isEmpty()) {
            fail("seeds found with long fault phases failed: " + String.join("; ", failed));
        }
    }

    /** Runs the seeds in order until one fails; prints after how many runs the first violation came. */
    private static List<SimulationResult> runUntilViolation(List<Long> seeds, SimulationSettings settings) {
        List<SimulationResult> out = new ArrayList<>();
        for (long s : seeds) {
            SimulationResult r = new RaftSimulation(s, settings).run();
            out.add(r);
            if (!r.passed()) {
                System.out.println("simulation: first violation after " + out.size() + " runs (seed " + s + "): "
                    + r.invariant());
                break;
            }
        }
        return out;
    }

    private static List<SimulationResult> runAll(List<Long> seeds, SimulationSettings settings, int threads)
        throws InterruptedException, ExecutionException {
        List<SimulationResult> out = new ArrayList<>();
        if (threads == 1) {
            for (long s : seeds) {
                out.add(new RaftSimulation(s, settings).run());
            }
            return out;
        }
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<SimulationResult>> futures = new ArrayList<>();
            for (long s : seeds) {
                futures.add(pool.submit(() -> new RaftSimulation(s, settings).run()));
            }
            for (Future<SimulationResult> f : futures) {
                out.add(f.get());
            }
        } finally {
            pool.shutdownNow();
        }
        return out;
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    private static long mix(long z) {
        long x = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        x = (x ^ (x >>> 27)) * 0x94d049bb133111ebL;
        return (x ^ (x >>> 31)) & Long.MAX_VALUE;
    }
}
