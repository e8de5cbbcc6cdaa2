package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.cli.GroupBenchmark;
import dev.dledger.raft.server.FlushMode;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same three Raft groups of three brokers run two ways, one after the other on this machine, with the same load
 * (issue 18): as nine broker processes ({@code processes}: {@link RaftBrokerStartup}, a Raft port each) and as three
 * broker containers ({@code containers}: {@link RaftBrokerContainerStartup}, node n&lt;c&gt; of every group in container
 * c, one Raft port and shared driver threads per container). Each group leads from another host (preferredLeaderId).
 * Load: T producer threads sharing one {@code DefaultMQProducer}, synchronous sends of 1 KiB to one topic with 4
 * queues on each group (12 in all, round robin), a warm-up, then a measured window. Printed side by side: sends/s and
 * p99, CPU per send over all broker processes (user + system, /proc/PID/stat), and at the end of the window the
 * resident memory (VmRSS) and threads of all broker processes together. The processes run with the package's JIT and
 * collector (C2, G1), not the tests' (C1 and Serial, which start faster and run slower).
 *
 * <p>Only under the {@code benchmark} profile (do not run it on a shared machine):
 *
 * <pre>
 * mvn -pl dledger-raft,rocketmq-dledger-commitlog -P benchmark test -Dtest=BrokerContainerBenchmark \
 *     -Dsurefire.failIfNoSpecifiedTests=false -Dbench.warmup=30 -Dbench.seconds=30 -Dbench.threads=32
 * </pre>
 *
 * {@code -Dbench.configs=processes,containers} picks the set-ups and their order (the default);
 * {@code -Dbench.brokerHeapMb=256} the heap per broker (a container gets three times it; default 256).
 */
class BrokerContainerBenchmark {

    private static final int SIZE = 1024;
    private static final int QUEUES_PER_GROUP = 4;
    private static final String TOPIC = "ContainerBenchTopic";
    private static final Duration START_WAIT = Duration.ofSeconds(240);

    @TempDir
    Path tmp;

    /** What one set-up did in the window and took. */
    private record Outcome(String config, GroupBenchmark.Result result, double cpuUsPerSend, double cores,
                           long rssMiB, long threads) {
        String line() {
            return String.format(Locale.ROOT, "container bench: config=%s sends/s=%.0f p50_ms=%.2f p99_ms=%.2f "
                    + "errors=%d cpu_us_per_send=%.0f broker_cores=%.2f rss_mib_all=%d threads_all=%d", config,
                result.tps(), result.p50Ms(), result.p99Ms(), result.errors(), cpuUsPerSend, cores, rssMiB, threads);
        }
    }

    @Test
    void nineBrokerProcessesAgainstThreeContainers() throws Exception {
        int threads = Integer.getInteger("bench.threads", 32);
        int warmup = Integer.getInteger("bench.warmup", 30);
        int seconds = Integer.getInteger("bench.seconds", 30);
        int heapMb = Integer.getInteger("bench.brokerHeapMb", 256);
        List<String> configs = List.of(System.getProperty("bench.configs", "processes,containers").split(","));
        System.out.printf(Locale.ROOT, "container bench configuration: threads=%d size=%d warmup=%ds seconds=%ds "
                + "3 groups x 3 brokers, topic %s with %d queues per group, heap %d MiB per broker, C2 and G1, cores=%d "
                + "load=%s%n",
            threads, SIZE, warmup, seconds, TOPIC, QUEUES_PER_GROUP, heapMb, Runtime.getRuntime().availableProcessors(),
            load());
        List<Outcome> outcomes = new ArrayList<>();
        for (String config : configs) {
            String c = config.trim();
            if (!c.equals("processes") && !c.equals("containers")) {
                throw new IllegalArgumentException("bench.configs: unknown set-up '" + c
                    + "', expected processes or containers");
            }
            Path dir = Files.createDirectories(tmp.resolve(c));
            try (BrokerContainers cluster = new BrokerContainers(dir, c.equals("processes")).withBrokerHeapMb(heapMb)
                .withServerJvm()) {
                Set<Integer> all = Set.of(0, 1, 2);
                cluster.start(List.of(all, all, all));
                long began = System.nanoTime();
                for (int g = 0; g < BrokerContainers.SIZE; g++) {
                    cluster.awaitLeader(g, all, START_WAIT);
                }
                System.out.printf("container bench: %s up, leaders per container %s after %d ms (load %s)%n", c,
                    cluster.leadersPerContainer(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - began), load());
                outcomes.add(measure(c, cluster, threads, warmup, seconds));
                System.out.println(outcomes.get(outcomes.size() - 1).line() + " load=" + load());
            }
        }
        System.out.println("container bench results (load " + load() + "):");
        outcomes.forEach(o -> System.out.println(o.line()));
        if (outcomes.size() == 2) {
            Outcome a = outcomes.get(0);
            Outcome b = outcomes.get(1);
            System.out.printf(Locale.ROOT, "container bench ratio %s/%s: sends/s %.2fx, CPU per send %.2fx, RSS %.2fx, "
                    + "threads %.2fx%n", b.config(), a.config(), b.result().tps() / a.result().tps(),
                b.cpuUsPerSend() / a.cpuUsPerSend(), (double) b.rssMiB() / a.rssMiB(), (double) b.threads() / a.threads());
        }
        outcomes.forEach(o -> assertTrue(o.result().appends() > 0, o.config() + " acknowledged no send"));
    }

    private static Outcome measure(String config, BrokerContainers cluster, int threads, int warmup, int seconds)
        throws Exception {
        DefaultMQProducer producer = cluster.producer("container-bench-" + config);
        MQClientAPIImpl api = producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl();
        for (int g = 0; g < BrokerContainers.SIZE; g++) {
            int group = g;
            TopicConfig tc = new TopicConfig(TOPIC, QUEUES_PER_GROUP, QUEUES_PER_GROUP);
            tc.setPerm(6);
            await("create " + TOPIC + " on " + BrokerContainers.group(g)).atMost(Duration.ofSeconds(60))
                .pollInterval(Duration.ofMillis(500)).ignoreExceptions().until(() -> {
                    api.createTopic(cluster.brokerAddrs(group).get(0L), "TBW102", tc, 5000);
                    return true;
                });
        }
        await("route of " + TOPIC + " over the three groups").atMost(Duration.ofSeconds(60))
            .pollInterval(Duration.ofMillis(500)).ignoreExceptions()
            .until(() -> {
                List<MessageQueue> mqs = producer.fetchPublishMessageQueues(TOPIC);
                return mqs.size() == QUEUES_PER_GROUP * BrokerContainers.SIZE;
            });
        Map<String, Long> pids = cluster.pids();
        long[] cpu = new long[2];
        long[] memory = new long[2];
        AtomicLong windowNanos = new AtomicLong();
        Thread sampler = new Thread(() -> {
            try {
                TimeUnit.SECONDS.sleep(warmup);
                long before = ticks(pids);
                long w0 = System.nanoTime();
                TimeUnit.SECONDS.sleep(seconds);
                cpu[0] = ticks(pids) - before;
                windowNanos.set(System.nanoTime() - w0);
                long[] m = rssAndThreads(pids);
                memory[0] = m[0];
                memory[1] = m[1];
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "container-bench-sampler");
        sampler.setDaemon(true);
        sampler.start();
        GroupBenchmark.Settings s = new GroupBenchmark.Settings(threads, SIZE, warmup, seconds, FlushMode.ASYNC);
        GroupBenchmark.Result r = GroupBenchmark.measure(s,
            body -> producer.send(new Message(TOPIC, body)).getSendStatus() == SendStatus.SEND_OK);
        sampler.join(TimeUnit.SECONDS.toMillis(warmup + seconds + 30));
        double window = Math.max(1, windowNanos.get()) / 1e9;
        double sends = r.tps() * window;
        double cpuUs = cpu[0] * 1e4 / Math.max(1, sends);
        return new Outcome(config, r, cpuUs, cpu[0] / 100.0 / window, memory[0] / 1024, memory[1]);
    }

    /** User + system clock ticks (1/100 s) of the processes, summed. */
    private static long ticks(Map<String, Long> pids) {
        long total = 0;
        for (long pid : pids.values()) {
            try {
                String stat = Files.readString(Path.of("/proc", String.valueOf(pid), "stat"));
                String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                total += Long.parseLong(f[11]) + Long.parseLong(f[12]);
            } catch (IOException | RuntimeException e) {
                // the process ended: left out
            }
        }
        return total;
    }

    /** {VmRSS in KiB, threads} of the processes, summed. */
    private static long[] rssAndThreads(Map<String, Long> pids) {
        long rss = 0;
        long threads = 0;
        for (long pid : pids.values()) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc", String.valueOf(pid), "status"))) {
                    if (line.startsWith("VmRSS:")) {
                        rss += Long.parseLong(line.replaceAll("[^0-9]", ""));
                    } else if (line.startsWith("Threads:")) {
                        threads += Long.parseLong(line.replaceAll("[^0-9]", ""));
                    }
                }
            } catch (IOException | RuntimeException e) {
                // the process ended: left out
            }
        }
        return new long[] {rss, threads};
    }

    private static String load() {
        return String.format(Locale.ROOT, "%.2f", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }
}
