package dev.dledger.raft.cli;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.server.NodeStorage;
import dev.dledger.raft.transport.ClientProtocol;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * A closed-loop append benchmark: an embedded three-node group on loopback, T client threads each doing synchronous
 * appends of S bytes through {@link RaftClient}, a warm-up, then a measured window. The same shape as DLedger's
 * benchmark so that the two can be compared side by side.
 */
public final class GroupBenchmark {

    /**
     * What to run.
     *
     * @param threads       client threads
     * @param sizeBytes     payload size of each append
     * @param warmupSeconds seconds of load before measuring
     * @param seconds       seconds measured
     * @param flush         the nodes' flush mode
     */
    public record Settings(int threads, int sizeBytes, int warmupSeconds, int seconds, FlushMode flush) {
    }

    /**
     * What was measured.
     *
     * @param appends appends acknowledged in the measured window
     * @param errors  appends that failed or were not OK in the window
     * @param tps     appends per second
     * @param p50Ms   median latency
     * @param p99Ms   99th percentile latency
     */
    public record Result(Settings settings, long appends, long errors, double tps, double p50Ms, double p99Ms) {

        /** The one-line summary. */
        public String line() {
            return String.format("benchmark: threads=%d size=%d flush=%s tps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d",
                settings.threads(), settings.sizeBytes(), settings.flush().name().toLowerCase(java.util.Locale.ROOT),
                tps, p50Ms, p99Ms, errors);
        }
    }

    /** One synchronous append, as the system under test offers it. */
    @FunctionalInterface
    public interface Appender {
        /** Appends {@code body} and waits; returns whether it was acknowledged as committed. */
        boolean append(byte[] body) throws Exception;
    }

    private GroupBenchmark() {
    }

    /**
     * Starts the group, runs the load and stops everything.
     *
     * @param storage opens the storage of a node by id
     */
    public static Result run(Settings s, Function<String, NodeStorage> storage) throws InterruptedException {
        try (LocalGroup g = LocalGroup.start("bench", new String[] {"n0", "n1", "n2"}, s.flush(), storage)) {
            g.awaitLeader(10);
            try (RaftClient client = new RaftClient(g.group(), g.addresses(), 3000, 10)) {
                return measure(s, body -> client.append(body).get().status() == ClientProtocol.Status.OK);
            }
        }
    }

    /**
     * Runs the closed loop: {@code s.threads()} threads call {@code appender} back to back; the warm-up is not
     * counted.
     */
    public static Result measure(Settings s, Appender appender) throws InterruptedException {
        byte[] body = new byte[s.sizeBytes()];
        Arrays.fill(body, (byte) 'x');
        AtomicBoolean measuring = new AtomicBoolean();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong errors = new AtomicLong();
        long[][] latencies = new long[s.threads()][];
        int[] counts = new int[s.threads()];
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < s.threads(); t++) {
            int slot = t;
            latencies[slot] = new long[1 << 16];
            Thread th = new Thread(() -> {
                while (!stop.get()) {
                    long start = System.nanoTime();
                    boolean ok;
                    try {
                        ok = appender.append(body);
                    } catch (Exception e) {
                        ok = false;
                    }
                    long took = System.nanoTime() - start;
                    if (measuring.get()) {
                        if (!ok) {
                            errors.incrementAndGet();
                        } else {
                            if (counts[slot] == latencies[slot].length) {
                                latencies[slot] = Arrays.copyOf(latencies[slot], counts[slot] * 2);
                            }
                            latencies[slot][counts[slot]++] = took;
                        }
                    }
                }
            }, "bench-client-" + t);
            th.setDaemon(true);
            threads.add(th);
            th.start();
        }
        TimeUnit.SECONDS.sleep(s.warmupSeconds());
        measuring.set(true);
        long start = System.nanoTime();
        TimeUnit.SECONDS.sleep(s.seconds());
        measuring.set(false);
        long elapsed = System.nanoTime() - start;
        stop.set(true);
        for (Thread th : threads) {
            th.join(5000);
        }
        long total = 0;
        for (int c : counts) {
            total += c;
        }
        long[] all = new long[(int) total];
        int at = 0;
        for (int t = 0; t < s.threads(); t++) {
            System.arraycopy(latencies[t], 0, all, at, counts[t]);
            at += counts[t];
        }
        Arrays.sort(all);
        double p50 = all.length == 0 ? 0 : all[(int) (all.length * 0.50)] / 1e6;
        double p99 = all.length == 0 ? 0 : all[Math.min(all.length - 1, (int) (all.length * 0.99))] / 1e6;
        return new Result(s, total, errors.get(), total / (elapsed / 1e9), p50, p99);
    }
}
