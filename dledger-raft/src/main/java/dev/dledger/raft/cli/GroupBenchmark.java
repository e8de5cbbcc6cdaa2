package dev.dledger.raft.cli;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.server.NodeStorage;
import dev.dledger.raft.transport.ClientProtocol;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
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
     * @param pipeline      appends each thread keeps in flight (1: one synchronous append after the other)
     */
    public record Settings(int threads, int sizeBytes, int warmupSeconds, int seconds, FlushMode flush, int pipeline) {

        /** Validates the settings. */
        public Settings {
            if (threads < 1 || sizeBytes < 1 || seconds < 1 || warmupSeconds < 0 || pipeline < 1) {
                throw new IllegalArgumentException("benchmark settings: threads, size, seconds and pipeline must be "
                    + "positive and the warm-up >= 0, got threads=" + threads + " size=" + sizeBytes + " seconds="
                    + seconds + " warmup=" + warmupSeconds + " pipeline=" + pipeline);
            }
        }

        /** Closed-loop settings: one append in flight per thread. */
        public Settings(int threads, int sizeBytes, int warmupSeconds, int seconds, FlushMode flush) {
            this(threads, sizeBytes, warmupSeconds, seconds, flush, 1);
        }
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

        /** Payload megabytes (10^6 bytes) per second: appends/s times the append size. */
        public double megabytesPerSecond() {
            return tps * settings.sizeBytes() / 1e6;
        }

        /** The one-line summary. */
        public String line() {
            return String.format(java.util.Locale.ROOT,
                "benchmark: threads=%d pipeline=%d size=%d flush=%s tps=%.0f mb_s=%.1f p50_ms=%.2f p99_ms=%.2f "
                    + "errors=%d", settings.threads(), settings.pipeline(), settings.sizeBytes(),
                settings.flush().name().toLowerCase(java.util.Locale.ROOT), tps, megabytesPerSecond(), p50Ms, p99Ms,
                errors);
        }
    }

    /** One synchronous append, as the system under test offers it. */
    @FunctionalInterface
    public interface Appender {
        /** Appends {@code body} and waits; returns whether it was acknowledged as committed. */
        boolean append(byte[] body) throws Exception;
    }

    /** One append without waiting, as the system under test offers it. */
    @FunctionalInterface
    public interface AsyncAppender {
        /** Starts appending {@code body}; the future tells whether it was acknowledged as committed. */
        CompletableFuture<Boolean> append(byte[] body);
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
                if (s.pipeline() > 1) {
                    return measurePipelined(s,
                        body -> client.append(body).thenApply(r -> r.status() == ClientProtocol.Status.OK));
                }
                return measure(s, body -> client.append(body).get().status() == ClientProtocol.Status.OK);
            }
        }
    }

    /**
     * Runs the closed loop: {@code s.threads()} threads call {@code appender} back to back; the warm-up is not
     * counted. {@code s.pipeline()} is ignored (one append in flight per thread).
     */
    public static Result measure(Settings s, Appender appender) throws InterruptedException {
        byte[] body = body(s);
        Window window = new Window(s.threads());
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < s.threads(); t++) {
            Recorder rec = window.recorders[t];
            Thread th = new Thread(() -> {
                while (!window.stop) {
                    long start = System.nanoTime();
                    boolean ok;
                    try {
                        ok = appender.append(body);
                    } catch (Exception e) {
                        ok = false;
                    }
                    window.record(rec, ok, System.nanoTime() - start);
                }
            }, "bench-client-" + t);
            th.setDaemon(true);
            threads.add(th);
            th.start();
        }
        long elapsed = window.run(s);
        for (Thread th : threads) {
            th.join(5000);
        }
        return window.result(s, elapsed);
    }

    /**
     * Runs a pipelined load: {@code s.threads()} threads each keep {@code s.pipeline()} appends in flight, starting
     * the next one as soon as one completes. The latency of an append is from its start to its completion. The
     * warm-up is not counted; after the window the appends still in flight are waited for (at most 10 s) but not
     * counted.
     */
    public static Result measurePipelined(Settings s, AsyncAppender appender) throws InterruptedException {
        byte[] body = body(s);
        Window window = new Window(s.threads());
        List<Thread> threads = new ArrayList<>();
        List<Semaphore> slots = new ArrayList<>();
        for (int t = 0; t < s.threads(); t++) {
            Recorder rec = window.recorders[t];
            Semaphore inFlight = new Semaphore(s.pipeline());
            slots.add(inFlight);
            Thread th = new Thread(() -> {
                try {
                    while (!window.stop) {
                        if (!inFlight.tryAcquire(100, TimeUnit.MILLISECONDS)) {
                            continue;
                        }
                        long start = System.nanoTime();
                        CompletableFuture<Boolean> f;
                        try {
                            f = appender.append(body);
                        } catch (RuntimeException e) {
                            f = CompletableFuture.failedFuture(e);
                        }
                        f.whenComplete((ok, error) -> {
                            window.record(rec, error == null && Boolean.TRUE.equals(ok), System.nanoTime() - start);
                            inFlight.release();
                        });
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "bench-client-" + t);
            th.setDaemon(true);
            threads.add(th);
            th.start();
        }
        long elapsed = window.run(s);
        for (Thread th : threads) {
            th.join(5000);
        }
        for (Semaphore inFlight : slots) {
            inFlight.tryAcquire(s.pipeline(), 10, TimeUnit.SECONDS);
        }
        return window.result(s, elapsed);
    }

    private static byte[] body(Settings s) {
        byte[] body = new byte[s.sizeBytes()];
        Arrays.fill(body, (byte) 'x');
        return body;
    }

    /** The latencies of one client thread's acknowledged appends in the window (completions may come from I/O threads). */
    private static final class Recorder {
        private long[] latencies = new long[1 << 16];
        private int count;

        synchronized void add(long nanos) {
            if (count == latencies.length) {
                latencies = Arrays.copyOf(latencies, count * 2);
            }
            latencies[count++] = nanos;
        }
    }

    /** The warm-up, the measured window, and what was recorded in it. */
    private static final class Window {
        final Recorder[] recorders;
        final AtomicLong errors = new AtomicLong();
        volatile boolean measuring;
        volatile boolean stop;

        Window(int threads) {
            recorders = new Recorder[threads];
            for (int t = 0; t < threads; t++) {
                recorders[t] = new Recorder();
            }
        }

        void record(Recorder rec, boolean ok, long nanos) {
            if (!measuring) {
                return;
            }
            if (ok) {
                rec.add(nanos);
            } else {
                errors.incrementAndGet();
            }
        }

        /** Sleeps through the warm-up and the window; returns the window's length in nanoseconds. */
        long run(Settings s) throws InterruptedException {
            TimeUnit.SECONDS.sleep(s.warmupSeconds());
            measuring = true;
            long start = System.nanoTime();
            TimeUnit.SECONDS.sleep(s.seconds());
            measuring = false;
            long elapsed = System.nanoTime() - start;
            stop = true;
            return elapsed;
        }

        Result result(Settings s, long elapsedNanos) {
            int total = 0;
            for (Recorder r : recorders) {
                synchronized (r) {
                    total += r.count;
                }
            }
            long[] all = new long[total];
            int at = 0;
            for (Recorder r : recorders) {
                synchronized (r) {
                    int n = Math.min(r.count, total - at);
                    System.arraycopy(r.latencies, 0, all, at, n);
                    at += n;
                }
            }
            Arrays.sort(all, 0, at);
            double p50 = at == 0 ? 0 : all[(int) (at * 0.50)] / 1e6;
            double p99 = at == 0 ? 0 : all[Math.min(at - 1, (int) (at * 0.99))] / 1e6;
            return new Result(s, at, errors.get(), at / (elapsedNanos / 1e9), p50, p99);
        }
    }
}
