package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.raft.faults.ProxyMesh;
import dev.dledger.raft.transport.ClientProtocol;
import java.net.InetSocketAddress;
import java.io.PrintStream;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Broker-level fault run: a nameserver and three brokers on the Raft commit log as real processes, every Raft link
 * through its own fault-injecting proxy ({@link ProxyMesh}), RocketMQ's own producers and push consumers working all the
 * time, while {@link BrokerNemesis} kills (-9), pauses (SIGSTOP) and cuts off leaders and followers and moves the
 * leadership on a schedule drawn from a seed. Then everything is healed, the group must serve again, the consumers
 * drain, the brokers stop cleanly and their Raft logs are compared entry by entry, read-only.
 *
 * <p>It prints one line (the only one starting {@code faults:}), {@code faults: seed S, D s, F faults, O operations,
 * lost L, duplicated U, divergent V, stale reads R, redelivered E (unexplained X)}, and fails when L, V, R or X is not 0
 * (see {@link BrokerFaultsCheck} for what each counts; O is the producers' sends, D the seconds of faults; U counts
 * keys delivered more than once for any reason, E the deliveries of a stored message after its first, X those of them
 * that no unacknowledged offset commit explains), and also when a key is stored twice for no reason a client gives,
 * when a queue offset is held by two messages or by none, when the group does not serve or does not converge after
 * the heal.
 *
 * <p>System properties: {@code faults.seconds} (seconds of faults, default 40), {@code faults.seed} (default a
 * random one, printed; the same seed replays the same schedule), {@code faults.kinds} (the fault families to draw
 * from, e.g. {@code kill,pause}; default all, see {@link BrokerNemesis.Kind#of}). A broker group is always three
 * brokers: {@code faults.nodes} does not apply here.
 */
class BrokerFaultsIT {

    private static final String TOPIC = "FaultsTopic";
    private static final int QUEUES = 4;
    private static final int PRODUCERS = 4;
    private static final int BODY_BYTES = 512;
    private static final Duration ROLE_WAIT = Duration.ofSeconds(120);
    private static final Duration SERVE_WAIT = Duration.ofSeconds(60);
    private static final Duration DRAIN_WAIT = Duration.ofSeconds(180);
    private static final Duration QUIET = Duration.ofSeconds(5);
    private static final Duration DRAIN_REPORT = Duration.ofSeconds(20);
    private static final Duration CONVERGE_WAIT = Duration.ofSeconds(60);
    private static final Duration STOP_WAIT = Duration.ofSeconds(60);

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private BrokerGroup group;
    private ProxyMesh links;

    @AfterEach
    void stopAll() throws InterruptedException {
        if (group != null) {
            group.close();
        }
        if (links != null) {
            links.close();
        }
    }

    @Test
    void everyAcknowledgedMessageIsConsumedAndTheReplicasAgreeUnderFaults() throws Exception {
        long seconds = longProperty("faults.seconds", 40);
        long seed = seed();
        List<BrokerNemesis.Kind> kinds = BrokerNemesis.Kind.of(System.getProperty("faults.kinds"));
        String nodes = System.getProperty("faults.nodes");
        PrintStream out = System.out;
        String kindsGiven = System.getProperty("faults.kinds", "").trim();
        int witness = witnessProperty();
        String replay = "-Dfaults.target=broker -Dfaults.seed=" + seed + " -Dfaults.seconds=" + seconds
            + (kindsGiven.isEmpty() ? "" : " -Dfaults.kinds=" + kindsGiven)
            + (witness < 0 ? "" : " -Dfaults.witness=n" + witness);
        out.println("fault run: broker target, seed " + seed + ", " + seconds + " s of faults, kinds " + kinds
            + (witness < 0 ? "" : ", n" + witness + " a witness") + " (replay: " + replay + ")");
        if (nodes != null && !nodes.isBlank() && !nodes.trim().equals(String.valueOf(BrokerGroup.SIZE))) {
            out.println("fault run: faults.nodes=" + nodes + " does not apply to the broker target: a broker group is "
                + BrokerGroup.SIZE + " brokers");
        }
        try {
            run(seconds, seed, kinds, witness, out);
        } catch (Throwable t) {
            out.println("fault run: FAILED with seed " + seed + " (replay: " + replay + ")");
            if (group != null) {
                group.printOutputs(System.err);
            }
            throw t;
        }
    }

    private void run(long seconds, long seed, List<BrokerNemesis.Kind> kinds, int witness, PrintStream out)
        throws Exception {
        long began = System.nanoTime();
        group = new BrokerGroup(tmp);
        Set<Integer> witnesses = witness < 0 ? Set.of() : Set.of(witness);
        if (witness >= 0) {
            group.withWitness(witness);
        }
        Map<String, InetSocketAddress> real = new LinkedHashMap<>();
        for (int i = 0; i < BrokerGroup.SIZE; i++) {
            real.put("n" + i, group.raftAddress(i));
        }
        links = new ProxyMesh(real);
        // Broker i reaches peer j through the proxy of the link i->j.
        group.start((from, to, address) -> links.link("n" + from, "n" + to).address());
        Set<Integer> all = Set.of(0, 1, 2);
        int leader = group.awaitRoles(all, witnesses, ROLE_WAIT);
        out.println("fault run: group up after " + sinceMs(began) + " ms, leader n" + leader);

        FaultWorkload w = new FaultWorkload(group, TOPIC, PRODUCERS, BODY_BYTES);
        w.createTopic(QUEUES);
        w.startConsumers();
        w.startProducers();
        await("the first acknowledged sends").atMost(SERVE_WAIT).until(() -> w.sendOk() >= 50);

        // Faults.
        long faultsBegan = System.nanoTime();
        BrokerNemesis nemesis = new BrokerNemesis(group, links, BrokerGroup.SIZE, kinds, seed, began, out);
        nemesis.witnesses(witnesses);
        nemesis.run(Duration.ofSeconds(seconds));
        nemesis.healAll();
        double faultSeconds = (System.nanoTime() - faultsBegan) / 1e9;
        nemesis.log("faults over: " + nemesis.faults() + " faults (" + nemesis.summary() + ")");

        List<String> failures = new ArrayList<>();
        // A run in which no fault, or not every drawn kind, took effect did not test what it reports.
        if (nemesis.faults() == 0) {
            failures.add("no fault was injected");
        }
        if (!nemesis.neverApplied().isEmpty()) {
            failures.add("fault kinds drawn but never applied: " + nemesis.neverApplied() + " (drawn: "
                + nemesis.summary() + ")");
        }
        // The group must serve again: one leader registered as master, and sends acknowledged.
        try {
            leader = group.awaitRoles(all, witnesses, ROLE_WAIT);
            long okBefore = w.sendOk();
            await("sends acknowledged after the heal").atMost(SERVE_WAIT).until(() -> w.sendOk() >= okBefore + 100);
            nemesis.log("serving again: leader n" + leader + ", " + (w.sendOk() - okBefore) + " sends acknowledged");
        } catch (AssertionError | RuntimeException e) {
            failures.add("the group did not serve again after the heal: " + e.getMessage());
        }
        w.stopProducers();

        // Drain: every acknowledged key delivered, and then nothing new for a while. A drain that takes long says
        // where it stands every DRAIN_REPORT (a consumer stalled on one queue shows as that queue standing still).
        long drainBegan = System.nanoTime();
        while (true) {
            try {
                await("every acknowledged message consumed").atMost(DRAIN_REPORT).pollInterval(Duration.ofMillis(500))
                    .until(() -> w.ackedNotDelivered().isEmpty()
                        && System.nanoTime() - w.lastDeliveryNanos() > QUIET.toNanos());
                break;
            } catch (AssertionError | RuntimeException e) {
                if (System.nanoTime() - drainBegan >= DRAIN_WAIT.toNanos()) {
                    nemesis.log("drain ended with " + w.ackedNotDelivered().size()
                        + " acknowledged keys not consumed:" + w.drainProgress());
                    break;
                }
                nemesis.log("draining: " + w.deliveries() + " deliveries;" + w.drainProgress());
            }
        }
        w.stopConsumers();
        nemesis.log("drained: " + w.deliveries() + " deliveries");

        long[] commitIndex = awaitConvergence(failures);
        nemesis.log("raft commit indexes " + Arrays.toString(commitIndex) + "; stopping the brokers");
        for (int i = 0; i < BrokerGroup.SIZE; i++) {
            group.broker(i).terminate();
        }
        for (int i = 0; i < BrokerGroup.SIZE; i++) {
            if (!group.broker(i).awaitExit(STOP_WAIT)) {
                out.println("fault run: n" + i + " did not stop within " + STOP_WAIT.toSeconds() + " s of SIGTERM; killed");
            }
        }

        // The logs: compared entry by entry over what each node committed, then read back as messages. A witness
        // keeps no bodies it may drop: the data members' logs are compared (its commit index was checked above).
        List<Path> dirs = new ArrayList<>();
        List<Long> dataCommits = new ArrayList<>();
        List<Integer> dataIds = new ArrayList<>();
        for (int i = 0; i < BrokerGroup.SIZE; i++) {
            if (!witnesses.contains(i)) {
                dirs.add(group.raftLogDir(i));
                dataIds.add(i);
                dataCommits.add(commitIndex[i]);
            }
        }
        ReplicaLogs.Comparison cmp;
        Map<String, List<ReplicaLogs.Copy>> byKey;
        ReplicaLogs.QueueCheck queues;
        List<ReplicaLogs.OffsetCommitAt> commits;
        try (ReplicaLogs logs = ReplicaLogs.openReadOnly(dirs)) {
            cmp = logs.compare(dataCommits.stream().mapToLong(Long::longValue).toArray());
            byKey = logs.messagesByKey(cmp.reference(), cmp.referenceCommitIndex(), TOPIC);
            commits = logs.offsetCommits(cmp.reference(), cmp.referenceCommitIndex(), w.consumerGroup(), TOPIC);
            queues = ReplicaLogs.checkQueueOffsets(byKey);
        }
        out.println("raft logs: " + cmp.comparedEntries() + " committed entries compared with n"
            + dataIds.get(cmp.reference())
            + " (commit index " + cmp.referenceCommitIndex() + "), " + cmp.divergentEntries() + " differ or are missing");
        for (String p : cmp.problems()) {
            out.println("  " + p);
        }
        out.println("queue offsets in the log: " + queues.conflicts() + " held by two messages, " + queues.gaps()
            + " held by none");
        for (String e : queues.examples()) {
            out.println("  " + e);
        }
        out.println("offset commits of the group in the log: " + commits.size());
        BrokerFaultsCheck.Result r = BrokerFaultsCheck.check(w, byKey, commits, out);

        String line = String.format(Locale.ROOT, "faults: seed %d, %d s, %d faults, %d operations, lost %d, "
            + "duplicated %d, divergent %d, stale reads %d, redelivered %d (unexplained %d)", seed,
            Math.round(faultSeconds), nemesis.faults(), w.sendCalls(), r.lost(), r.duplicated(),
            cmp.divergentEntries(), r.staleReads(), r.redeliveries().deliveries(), r.redeliveries().unexplained());
        out.println(line);
        out.println("fault run: whole run " + sinceMs(began) / 1000 + " s");

        if (r.unexplained() > 0) {
            failures.add(r.unexplained() + " keys stored twice with no client retry or resend to explain it");
        }
        if (r.redeliveries().unexplained() > 0) {
            failures.add(r.redeliveries().unexplained() + " redeliveries although the group's offset in the log was "
                + "already past the message when its queue was assigned");
        }
        if (commits.isEmpty()) {
            failures.add("no offset commit of group " + w.consumerGroup() + " in the log: the check of redeliveries "
                + "had nothing to check against");
        }
        if (queues.conflicts() > 0) {
            failures.add(queues.conflicts() + " queue offsets held by two messages");
        }
        if (queues.gaps() > 0) {
            // A gap shifts the consume queues (they place entries one after another): the next leader's offsets
            // then collide with used ones.
            failures.add(queues.gaps() + " queue offsets held by no message");
        }
        assertEquals(List.of(), failures, line);
        assertEquals(0, r.lost(), "lost acknowledged messages: " + line);
        assertEquals(0, cmp.divergentEntries(), "divergent raft logs: " + line);
        assertEquals(0, r.staleReads(), "stale reads: " + line);
    }

    /**
     * Waits until the three nodes report the same commit index, each with nothing uncommitted; returns the commit
     * indexes last reported (adding a failure when they never agree).
     */
    private long[] awaitConvergence(List<String> failures) {
        long[] commit = new long[BrokerGroup.SIZE];
        String[] seen = new String[1];
        try {
            await("the raft logs converge").atMost(CONVERGE_WAIT).pollInterval(Duration.ofMillis(500)).until(() -> {
                StringBuilder b = new StringBuilder();
                boolean same = true;
                for (int i = 0; i < BrokerGroup.SIZE; i++) {
                    ClientProtocol.Response s = group.raftStatus(i);
                    if (s == null) {
                        b.append(" n").append(i).append(" silent");
                        same = false;
                        continue;
                    }
                    commit[i] = s.index();
                    b.append(" n").append(i).append(' ').append(s.role()).append(" term ").append(s.term())
                        .append(" commit ").append(s.index()).append(" last ").append(s.lastIndex());
                    same &= s.index() == s.lastIndex() && s.index() == commit[0];
                }
                seen[0] = b.toString();
                return same;
            });
        } catch (AssertionError | RuntimeException e) {
            failures.add("the raft logs did not converge within " + CONVERGE_WAIT.toSeconds() + " s:" + seen[0]);
        }
        return commit;
    }

    /** {@code faults.seed}, or a fresh random seed when it is not given. */
    private static long seed() {
        String v = System.getProperty("faults.seed");
        if (v == null || v.isBlank()) {
            return new SecureRandom().nextLong();
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-Dfaults.seed=" + v + " is not a number (a seed printed by a run)", e);
        }
    }

    /** {@code -Dfaults.witness=n2} (or {@code 2}): that broker is the group's witness (issue 19); -1 when unset. */
    private static int witnessProperty() {
        String v = System.getProperty("faults.witness", "").trim();
        if (v.isEmpty()) {
            return -1;
        }
        String digits = v.startsWith("n") ? v.substring(1) : v;
        try {
            int i = Integer.parseInt(digits);
            if (i >= 0 && i < BrokerGroup.SIZE) {
                return i;
            }
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new IllegalArgumentException("faults.witness=" + v + ": expected a broker of the group, n0 to n"
            + (BrokerGroup.SIZE - 1));
    }

    private static long longProperty(String name, long defaultValue) {
        String v = System.getProperty(name);
        if (v == null || v.isBlank()) {
            return defaultValue;
        }
        try {
            long n = Long.parseLong(v.trim());
            if (n <= 0) {
                throw new IllegalArgumentException("-D" + name + "=" + v + " must be a positive number of seconds");
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-D" + name + "=" + v + " is not a number", e);
        }
    }

    private static long sinceMs(long startNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
    }
}
