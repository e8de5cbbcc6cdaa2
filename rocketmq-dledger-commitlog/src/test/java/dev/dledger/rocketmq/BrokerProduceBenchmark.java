package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.cli.GroupBenchmark;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.testing.FreePorts;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.protocol.body.ClusterInfo;
import org.apache.rocketmq.remoting.protocol.route.BrokerData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Produce throughput of three broker set-ups, one after the other in one run on the same machine, each alone (the
 * previous one is killed first), with the same load: T producer threads sharing one {@code DefaultMQProducer} doing
 * synchronous sends of 1 KiB to one topic of 8 queues (route polled every second), a warm-up, then a measured
 * window.
 * <ul>
 * <li>{@code raft}: three brokers on our Raft log ({@link RaftBrokerStartup}, {@code enableDLegerCommitLog=true});</li>
 * <li>{@code raft-sync}: {@code raft} with {@code raftFlushMode=sync} (fsync before an entry counts);</li>
 * <li>{@code raft-witness}: {@code raft} with the third broker a witness ({@code raftWitnessPeers=n2}; it votes and
 *     acknowledges but keeps no message and serves no client): two data copies, as master/slave keeps;</li>
 * <li>{@code stock-dledger}: three stock RocketMQ 5.5.1 brokers ({@code BrokerStartup}) in DLedger mode, DLedger
 *     0.3.3.4 from rocketmq-store;</li>
 * <li>{@code master-slave}: one stock ASYNC_MASTER and one SLAVE;</li>
 * <li>{@code controller}: stock Controller mode (RIP-44), the upstream recommendation: a controller inside the
 *     nameserver ({@code enableControllerInNamesrv=true}) and three stock brokers with {@code enableControllerMode=true}
 *     and {@code allAckInSyncStateSet=true} (a send is acknowledged once every replica in the in-sync set has it).</li>
 * </ul>
 * Every process is a child JVM with the same options; a nameserver each. Only under the {@code benchmark} profile:
 *
 * <pre>
 * mvn -pl dledger-raft,rocketmq-dledger-commitlog -P benchmark test -Dtest=BrokerProduceBenchmark \
 *     -Dsurefire.failIfNoSpecifiedTests=false -Dbench.warmup=60 -Dbench.seconds=30 -Dbench.threads=32
 * </pre>
 *
 * {@code -Dbench.configs=raft,controller,master-slave,stock-dledger,raft-sync} picks the set-ups and their order (that
 * is the default; {@code raft-witness} is there on request); {@code -Dbench.consumers=100} measures each set-up twice,
 * side by side: first as above, then with
 * that many push consumer instances of one group (each its own client instance) consuming the measured topic and
 * committing their offsets as usual (every 5 s and with every pull), and prints both throughputs, their ratio, and
 * the offset-commit entries per second the master applied (issue 15: at most 5 % less with 100 consumers);
 * {@code -Dbench.consumeTopic=own} has those consumers read a topic of their own instead ({@value #CONSUME_QUEUES}
 * queues, so that every consumer holds a queue and commits, fed by {@code -Dbench.consumeRate} messages per second,
 * default 1000, of 128 bytes): the commits then cost what they cost, apart from reading the measured stream a
 * second time;
 * {@code -Dbench.rounds=N} runs the set-ups N times, every other round in reverse order (A B, B A: a host that slows
 * down or speeds up during the run weighs on each set-up alike), and prints each round's ratios and their median;
 * {@code -Dbench.brokerJvm="OPTS"} adds JVM options to every broker (for example a JFR recording),
 * {@code -Dbench.brokerHeap=1g} sets every broker's heap and direct memory (default 1g, the same for every set-up).
 */
class BrokerProduceBenchmark {

    private static final int SIZE = 1024;
    private static final int QUEUES = 8;
    private static final String CLUSTER = "BenchCluster";
    private static final String BROKER_NAME = "broker-bench";
    private static final String TOPIC = "BenchTopic";
    private static final String CONSUME_TOPIC = "BenchConsumeTopic";
    private static final int CONSUME_QUEUES = 128;
    private static final Duration MASTER_WAIT = Duration.ofSeconds(120);
    /** The broker of {@code raft-witness} that is the witness ({@code n2}). */
    private static final int WITNESS = 2;
    private static final String HEAP = System.getProperty("bench.brokerHeap", "1g");
    /**
     * Every broker's JVM, whatever its set-up. {@code -XX:+AlwaysPreTouch} as stock RocketMQ's {@code runbroker.sh} and
     * our {@code bin/mqbroker} start a broker: without it the heap's pages are first written during the run, and on
     * this machine the page faults of that first touch took up to 17 % of a broker's CPU in a measured window that
     * began 60 s after the start (async-profiler, {@code event=cpu}), more in a broker that allocates faster.
     */
    private static final List<String> BROKER_JVM = List.of("-Xms" + HEAP, "-Xmx" + HEAP, "-XX:+AlwaysPreTouch",
        "-XX:MaxDirectMemorySize=" + HEAP, "--add-exports", "java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens",
        "java.base/java.nio=ALL-UNNAMED", "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED", "-Djava.net.preferIPv4Stack=true");

    @TempDir
    Path tmp;

    @Test
    void produceOnOurLogAgainstStockDLedgerAndMasterSlave() throws Exception {
        int threads = Integer.getInteger("bench.threads", 32);
        int warmup = Integer.getInteger("bench.warmup", 60);
        int seconds = Integer.getInteger("bench.seconds", 30);
        List<String> configs = List.of(System.getProperty("bench.configs",
            "raft,controller,master-slave,stock-dledger,raft-sync")
            .split(","));
        int consumers = Integer.getInteger("bench.consumers", 0);
        int rounds = Integer.getInteger("bench.rounds", 1);
        if (rounds < 1) {
            throw new IllegalArgumentException("bench.rounds must be at least 1, not " + rounds);
        }
        System.out.printf(Locale.ROOT, "broker bench configuration: threads=%d size=%d warmup=%ds seconds=%ds rounds=%d "
                + "topic=%s queues=%d sync sends, one DefaultMQProducer, route poll 1000 ms, send timeout 3000 ms, "
                + "2 retries; brokers: %s, ASYNC_FLUSH, default commit log file size; cores=%d load=%s%n", threads,
            SIZE, warmup, seconds, rounds, TOPIC, QUEUES, String.join(" ", BROKER_JVM),
            Runtime.getRuntime().availableProcessors(), load());
        Map<String, List<GroupBenchmark.Result>> results = new LinkedHashMap<>();
        Map<String, String> withConsumers = new LinkedHashMap<>();
        Map<String, List<String>> cpuPerSend = new LinkedHashMap<>();
        for (int round = 1; round <= rounds; round++) {
            // Every other round runs the set-ups in reverse order (A B, B A, ...): a host that slows down or speeds up
            // over the run then weighs on every set-up alike.
            List<String> order = new ArrayList<>(configs);
            if (round % 2 == 0) {
                Collections.reverse(order);
            }
            if (rounds > 1) {
                System.out.printf("broker bench: round %d of %d, %s%n", round, rounds, String.join(",", order));
            }
            for (String c : order) {
                String config = c.trim();
                Path dir = Files.createDirectories(tmp.resolve(config + "-" + round));
                try (BrokerSetup setup = BrokerSetup.start(config, dir)) {
                    long began = System.nanoTime();
                    setup.awaitRoute();
                    System.out.printf("broker bench: %s up, route %s after %d ms (load %s)%n", config,
                        setup.brokerAddrs(), (System.nanoTime() - began) / 1_000_000, load());
                    CpuAccount cpu = CpuAccount.during(setup.pids(), warmup, seconds);
                    GroupBenchmark.Result r = setup.measure(threads, warmup, seconds);
                    results.computeIfAbsent(config, k -> new ArrayList<>()).add(r);
                    System.out.println(line(config, r) + " load=" + load());
                    cpuPerSend.computeIfAbsent(config, k -> new ArrayList<>()).add(cpu.print(config, r));
                    if (consumers > 0) {
                        withConsumers.put(config + (rounds > 1 ? " round " + round : ""),
                            setup.measureWithConsumers(consumers, threads, warmup, seconds, r));
                    }
                } finally {
                    deleteTree(dir);
                }
            }
        }
        System.out.println("broker bench results (load " + load() + "):");
        results.forEach((config, rs) -> rs.forEach(r -> System.out.println(line(config, r))));
        for (String ours : List.of("raft", "raft-sync", "raft-witness")) {
            for (String other : List.of("controller", "master-slave", "stock-dledger")) {
                List<GroupBenchmark.Result> o = results.get(ours);
                List<GroupBenchmark.Result> t = results.get(other);
                if (o == null || t == null) {
                    continue;
                }
                for (int i = 0; i < rounds; i++) {
                    System.out.printf(Locale.ROOT, "broker bench ratio %s/%s%s: sends/s %.2fx, p99 %.2f ms vs %.2f ms, "
                            + "CPU per send %s vs %s us%n", ours, other, rounds > 1 ? " round " + (i + 1) : "",
                        o.get(i).tps() / t.get(i).tps(), o.get(i).p99Ms(), t.get(i).p99Ms(),
                        cpuPerSend.get(ours).get(i), cpuPerSend.get(other).get(i));
                }
                if (rounds > 1) {
                    double[] ratios = new double[rounds];
                    for (int i = 0; i < rounds; i++) {
                        ratios[i] = o.get(i).tps() / t.get(i).tps();
                    }
                    System.out.printf(Locale.ROOT, "broker bench ratio %s/%s: median of %d rounds %.2fx (sends/s %s "
                        + "vs %s)%n", ours, other, rounds, median(ratios), tpsList(o), tpsList(t));
                }
            }
        }
        withConsumers.values().forEach(System.out::println);
        results.forEach((config, rs) -> rs.forEach(r -> assertTrue(r.appends() > 0, config + " acknowledged no send")));
    }

    /** The median of {@code values} (the mean of the middle two for an even count). */
    private static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }

    private static String tpsList(List<GroupBenchmark.Result> rs) {
        return rs.stream().map(r -> String.format(Locale.ROOT, "%.0f", r.tps())).collect(Collectors.joining("/"));
    }

    private static String line(String config, GroupBenchmark.Result r) {
        return String.format(Locale.ROOT, "broker bench: config=%s threads=%d size=%d warmup=%d s=%d sends/s=%.0f "
                + "p50_ms=%.2f p99_ms=%.2f errors=%d", config, r.settings().threads(), r.settings().sizeBytes(),
            r.settings().warmupSeconds(), r.settings().seconds(), r.tps(), r.p50Ms(), r.p99Ms(), r.errors());
    }

    private static String load() {
        return String.format(Locale.ROOT, "%.2f", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /**
     * Where the CPU went in the measured window: user and system CPU time of each process (from /proc/PID/stat) and
     * how busy the whole machine was (/proc/stat), read by a thread that waits out the warm-up and then samples both
     * ends of the window.
     */
    private static final class CpuAccount {
        private final Map<String, Long> pids;
        private final Thread sampler;
        private final Map<String, long[]> used = new LinkedHashMap<>();
        private volatile long windowNanos;
        private volatile double machineBusy = -1;

        private CpuAccount(Map<String, Long> pids, int warmup, int seconds) {
            this.pids = pids;
            sampler = new Thread(() -> {
                try {
                    TimeUnit.SECONDS.sleep(warmup);
                    Map<String, long[]> before = sample();
                    long[] m0 = machineJiffies();
                    long w0 = System.nanoTime();
                    TimeUnit.SECONDS.sleep(seconds);
                    Map<String, long[]> after = sample();
                    long[] m1 = machineJiffies();
                    windowNanos = System.nanoTime() - w0;
                    after.forEach((name, a) -> {
                        long[] b = before.get(name);
                        if (b != null) {
                            used.put(name, new long[] {a[0] - b[0], a[1] - b[1]});
                        }
                    });
                    machineBusy = 1.0 - (double) (m1[0] - m0[0]) / Math.max(1, m1[1] - m0[1]);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "cpu-account");
            sampler.setDaemon(true);
        }

        static CpuAccount during(Map<String, Long> pids, int warmup, int seconds) {
            CpuAccount a = new CpuAccount(pids, warmup, seconds);
            a.sampler.start();
            return a;
        }

        /** {user, system} clock ticks (1/100 s) of each process that can be read. */
        private Map<String, long[]> sample() {
            Map<String, long[]> out = new LinkedHashMap<>();
            pids.forEach((name, pid) -> {
                try {
                    String stat = Files.readString(Path.of("/proc", String.valueOf(pid), "stat"));
                    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    out.put(name, new long[] {Long.parseLong(f[11]), Long.parseLong(f[12])});
                } catch (IOException | RuntimeException e) {
                    // the process ended or /proc is not there: left out of the account
                }
            });
            return out;
        }

        /** {idle + iowait, total} jiffies of all cores. */
        private static long[] machineJiffies() {
            try {
                String[] f = Files.readAllLines(Path.of("/proc/stat")).get(0).trim().split("\\s+");
                long total = 0;
                for (int i = 1; i < f.length; i++) {
                    total += Long.parseLong(f[i]);
                }
                return new long[] {Long.parseLong(f[4]) + Long.parseLong(f[5]), total};
            } catch (IOException | RuntimeException e) {
                return new long[] {0, 0};
            }
        }

        /** Prints the account and returns the CPU per send over all processes, in microseconds. */
        String print(String config, GroupBenchmark.Result r) throws InterruptedException {
            sampler.join(10_000);
            if (windowNanos == 0) {
                System.out.println("broker bench cpu: config=" + config + " not sampled");
                return "?";
            }
            double sends = r.tps() * windowNanos / 1e9;
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "broker bench cpu: config=%s machine %.0f%% busy of %d cores;", config, machineBusy * 100,
                Runtime.getRuntime().availableProcessors()));
            long totalTicks = 0;
            for (Map.Entry<String, long[]> e : used.entrySet()) {
                long ticks = e.getValue()[0] + e.getValue()[1];
                totalTicks += ticks;
                sb.append(String.format(Locale.ROOT, " %s %.2f cores (%.0f%% sys, %.0f us/send);", e.getKey(),
                    ticks / 100.0 / (windowNanos / 1e9), 100.0 * e.getValue()[1] / Math.max(1, ticks),
                    ticks * 1e4 / Math.max(1, sends)));
            }
            String all = String.format(Locale.ROOT, "%.0f", totalTicks * 1e4 / Math.max(1, sends));
            sb.append(" all ").append(all).append(" us of CPU per send");
            System.out.println(sb);
            return all;
        }
    }

    /** A nameserver and the brokers of one set-up, killed on close. */
    private static final class BrokerSetup implements AutoCloseable {
        private final List<ChildJvm> processes = new ArrayList<>();
        private final List<Integer> listenPorts = new ArrayList<>();
        private final String config;
        private final int brokers;
        private String namesrvAddr;
        private String controllerAddr;
        private DefaultMQProducer producer;

        private BrokerSetup(String config, int brokers) {
            this.config = config;
            this.brokers = brokers;
        }

        static BrokerSetup start(String config, Path dir) throws Exception {
            BrokerSetup s = switch (config) {
                case "raft", "raft-sync", "raft-witness", "stock-dledger", "controller" -> new BrokerSetup(config, 3);
                case "master-slave" -> new BrokerSetup(config, 2);
                default -> throw new IllegalArgumentException("bench.configs: unknown set-up '" + config
                    + "', expected raft, raft-sync, raft-witness, controller, master-slave or stock-dledger");
            };
            try {
                s.startProcesses(dir);
                return s;
            } catch (Exception | Error e) {
                s.close();
                throw e;
            }
        }

        private void startProcesses(Path dir) throws Exception {
            int namesrvPort = FreePorts.port();
            namesrvAddr = "127.0.0.1:" + namesrvPort;
            Path nsDir = Files.createDirectories(dir.resolve("namesrv"));
            Path nsConf = nsDir.resolve("namesrv.conf");
            List<String> nsKeys = new ArrayList<>(List.of("listenPort=" + namesrvPort));
            if (config.equals("controller")) {
                // RIP-44's embedded controller: one controller node in the nameserver. Its port in
                // controllerDLegerPeers is also where brokers reach it (controllerAddr), not the nameserver's port.
                controllerAddr = "127.0.0.1:" + FreePorts.port();
                nsKeys.addAll(List.of("enableControllerInNamesrv=true", "controllerDLegerGroup=bench-controller",
                    "controllerDLegerPeers=c0-" + controllerAddr, "controllerDLegerSelfId=c0",
                    "controllerStorePath=" + nsDir.resolve("controller"), "enableElectUncleanMaster=false",
                    "notifyBrokerRoleChanged=true"));
            }
            Files.writeString(nsConf, String.join("\n", nsKeys) + "\n");
            processes.add(new ChildJvm("namesrv", jvmArgs(nsDir, "-Xmx256m"),
                "org.apache.rocketmq.namesrv.NamesrvStartup", List.of("-c", nsConf.toString()),
                nsDir.resolve("out.log")).start());

            StringBuilder peers = new StringBuilder();
            for (int i = 0; i < brokers; i++) {
                int raftPort = FreePorts.port();
                peers.append(i == 0 ? "" : ";").append("n").append(i).append("-127.0.0.1:").append(raftPort);
                listenPorts.add(FreePorts.brokerPort());
            }
            for (int i = 0; i < brokers; i++) {
                Path bdir = Files.createDirectories(dir.resolve("broker-" + i));
                List<String> keys = new ArrayList<>(List.of(
                    "brokerClusterName=" + CLUSTER,
                    "brokerName=" + BROKER_NAME,
                    "brokerIP1=127.0.0.1",
                    "listenPort=" + listenPorts.get(i),
                    "namesrvAddr=" + namesrvAddr,
                    "storePathRootDir=" + bdir.resolve("store"),
                    "storePathCommitLog=" + bdir.resolve("store").resolve("commitlog"),
                    "mappedFileSizeConsumeQueue=" + (20 * 300_000),
                    "mappedFileSizeTimerLog=" + (8 << 20),
                    "autoCreateTopicEnable=true",
                    "defaultTopicQueueNums=" + QUEUES,
                    "flushDiskType=ASYNC_FLUSH",
                    "diskMaxUsedSpaceRatio=95"));
                String main;
                if (config.equals("controller")) {
                    keys.add("enableDLegerCommitLog=false");
                    keys.add("enableControllerMode=true");
                    keys.add("controllerAddr=" + controllerAddr);
                    keys.add("allAckInSyncStateSet=true");
                    keys.add("brokerId=-1");
                    keys.add("brokerRole=SLAVE");
                    keys.add("haListenPort=" + (listenPorts.get(i) + 1));
                    main = "org.apache.rocketmq.broker.BrokerStartup";
                } else if (config.equals("master-slave")) {
                    keys.add("enableDLegerCommitLog=false");
                    keys.add("brokerId=" + i);
                    keys.add("brokerRole=" + (i == 0 ? "ASYNC_MASTER" : "SLAVE"));
                    keys.add("haListenPort=" + (listenPorts.get(i) + 1));
                    main = "org.apache.rocketmq.broker.BrokerStartup";
                } else {
                    keys.add("enableDLegerCommitLog=true");
                    keys.add("dLegerGroup=" + BROKER_NAME);
                    keys.add("dLegerPeers=" + peers);
                    keys.add("dLegerSelfId=n" + i);
                    if (config.equals("raft-sync")) {
                        keys.add("raftFlushMode=sync");
                    }
                    if (config.equals("raft-witness")) {
                        keys.add("raftWitnessPeers=n" + WITNESS);
                        keys.add("raftWitness=" + (i == WITNESS));
                    }
                    main = config.startsWith("raft") ? RaftBrokerStartup.class.getName()
                        : "org.apache.rocketmq.broker.BrokerStartup";
                }
                Path conf = bdir.resolve("broker.conf");
                Files.writeString(conf, String.join("\n", keys) + "\n");
                List<String> jvm = new ArrayList<>(BROKER_JVM);
                jvm.addAll(jvmArgs(bdir));
                String extra = System.getProperty("bench.brokerJvm", "").trim();
                if (!extra.isEmpty()) {
                    for (String opt : extra.split("\\s+")) {
                        jvm.add(opt.replace("{dir}", bdir.toString()).replace("{name}", config + "-" + i));
                    }
                }
                processes.add(new ChildJvm(config + " broker " + i, jvm, main, List.of("-c", conf.toString()),
                    bdir.resolve("out.log")).start());
            }
            producer = new DefaultMQProducer("bench-" + config);
            producer.setNamesrvAddr(namesrvAddr);
            producer.setPollNameServerInterval(1000);
            producer.setSendMsgTimeout(3000);
            producer.setRetryTimesWhenSendFailed(2);
            producer.setDefaultTopicQueueNums(QUEUES);
            producer.start();
        }

        private static List<String> jvmArgs(Path dir, String... more) {
            List<String> args = new ArrayList<>(List.of(more));
            args.add("-Drocketmq.home.dir=" + dir);
            args.add("-Duser.home=" + dir);
            return args;
        }

        /** The nameserver's brokerId to address table of the broker name (empty while it knows none). */
        Map<Long, String> brokerAddrs() {
            try {
                ClusterInfo info = producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl()
                    .getBrokerClusterInfo(2000);
                BrokerData data = info.getBrokerAddrTable().get(BROKER_NAME);
                return data == null ? Map.of() : Map.copyOf(data.getBrokerAddrs());
            } catch (Exception e) {
                return Map.of();
            }
        }

        /** Waits until a master (brokerId 0) and every other broker are registered, then for the topic's route. */
        void awaitRoute() {
            try {
                // A witness never registers.
                int registering = config.equals("raft-witness") ? brokers - 1 : brokers;
                await("master and " + (registering - 1) + " slaves of " + config + " registered").atMost(MASTER_WAIT)
                    .pollInterval(Duration.ofMillis(250))
                    .until(() -> {
                        Map<Long, String> addrs = brokerAddrs();
                        return addrs.containsKey(0L) && addrs.size() == registering;
                    });
                await("a first send to " + TOPIC + " on " + config).atMost(Duration.ofSeconds(60))
                    .pollInterval(Duration.ofMillis(500)).ignoreExceptions()
                    .until(() -> producer.send(new Message(TOPIC, new byte[SIZE])).getSendStatus() == SendStatus.SEND_OK);
                await("route of " + TOPIC + " with " + QUEUES + " queues on " + config).atMost(Duration.ofSeconds(30))
                    .pollInterval(Duration.ofMillis(500)).ignoreExceptions()
                    .until(() -> {
                        List<MessageQueue> mqs = producer.fetchPublishMessageQueues(TOPIC);
                        return mqs.size() == QUEUES;
                    });
            } catch (RuntimeException e) {
                for (ChildJvm p : processes) {
                    System.err.println("===== " + p.name() + " output (tail) =====");
                    System.err.println(p.tail(40));
                }
                throw e;
            }
        }

        /** Process ids by name: the client (this JVM), the nameserver, each broker (the master marked). */
        Map<String, Long> pids() {
            Map<String, Long> pids = new LinkedHashMap<>();
            pids.put("client", ProcessHandle.current().pid());
            String master = brokerAddrs().get(0L);
            for (int i = 0; i < processes.size(); i++) {
                ChildJvm p = processes.get(i);
                String name = i == 0 ? "namesrv" : "broker-" + (i - 1);
                if (i > 0 && master != null && master.endsWith(":" + listenPorts.get(i - 1))) {
                    name += "(master)";
                } else if (i - 1 == WITNESS && config.equals("raft-witness")) {
                    name += "(witness)";
                }
                pids.put(name, p.pid());
            }
            return pids;
        }

        /**
         * Starts {@code count} push consumers of one group on the measured topic, each its own client instance
         * (committing as the client does: every 5 s, and with every pull once it has an offset), waits until the
         * broker knows every one of them, measures again, stops them, and returns the side-by-side line: sends/s
         * without ({@code without}) and with them, the ratio, and the offset-commit entries per second the master
         * applied meanwhile (from its runtime info; "n/a" for set-ups not on our log).
         */
        String measureWithConsumers(int count, int threads, int warmup, int seconds, GroupBenchmark.Result without)
            throws Exception {
            String group = "bench-consumers-" + config;
            java.util.concurrent.atomic.AtomicLong consumed = new java.util.concurrent.atomic.AtomicLong();
            List<org.apache.rocketmq.client.consumer.DefaultMQPushConsumer> started = new ArrayList<>();
            boolean own = "own".equals(System.getProperty("bench.consumeTopic", "measured"));
            String topic = own ? CONSUME_TOPIC : TOPIC;
            int rate = Integer.getInteger("bench.consumeRate", 1000);
            org.apache.rocketmq.client.impl.MQClientAPIImpl api = producer.getDefaultMQProducerImpl()
                .getMqClientFactory().getMQClientAPIImpl();
            Thread feeder = null;
            java.util.concurrent.atomic.AtomicLong fed = new java.util.concurrent.atomic.AtomicLong();
            try {
                if (own) {
                    org.apache.rocketmq.common.TopicConfig tc = new org.apache.rocketmq.common.TopicConfig(topic,
                        CONSUME_QUEUES, CONSUME_QUEUES, 6);
                    api.createTopic(brokerAddrs().get(0L), "TBW102", tc, 5000);
                    await("route of " + topic + " with " + CONSUME_QUEUES + " queues").atMost(Duration.ofSeconds(60))
                        .pollInterval(Duration.ofMillis(500)).ignoreExceptions()
                        .until(() -> producer.fetchPublishMessageQueues(topic).size() == CONSUME_QUEUES);
                    feeder = new Thread(() -> feed(topic, rate, fed), "bench-consume-feeder");
                    feeder.setDaemon(true);
                    feeder.start();
                }
                for (int i = 0; i < count; i++) {
                    org.apache.rocketmq.client.consumer.DefaultMQPushConsumer c =
                        new org.apache.rocketmq.client.consumer.DefaultMQPushConsumer(group);
                    c.setNamesrvAddr(namesrvAddr);
                    c.setInstanceName("bench-consumer-" + i);
                    c.setPollNameServerInterval(1000);
                    c.setConsumeThreadMin(1);
                    c.setConsumeThreadMax(1);
                    c.setConsumeFromWhere(org.apache.rocketmq.common.consumer.ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET);
                    c.subscribe(topic, "*");
                    c.registerMessageListener((org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently)
                        (msgs, ctx) -> {
                            consumed.addAndGet(msgs.size());
                            return org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
                        });
                    c.start();
                    started.add(c);
                }
                await(count + " consumers of " + group + " known to the master").atMost(Duration.ofSeconds(120))
                    .pollInterval(Duration.ofMillis(500)).ignoreExceptions()
                    .until(() -> api.getConsumerConnectionList(brokerAddrs().get(0L), group, 3000)
                        .getConnectionSet().size() >= count);
                String master = brokerAddrs().get(0L);
                long[] before = commitCounters(api, master);
                long consumedBefore = consumed.get();
                long fedBefore = fed.get();
                long began = System.nanoTime();
                GroupBenchmark.Result with = measure(threads, warmup, seconds);
                double elapsed = (System.nanoTime() - began) / 1e9;
                long[] after = commitCounters(api, master);
                String entries = before == null || after == null ? "n/a"
                    : String.format(Locale.ROOT, "%.1f", (after[0] - before[0]) / elapsed);
                String commits = before == null || after == null ? "n/a"
                    : String.format(Locale.ROOT, "%.1f", (after[1] - before[1]) / elapsed);
                String read = own ? String.format(Locale.ROOT, "%s (%d queues, fed %.0f/s)", topic, CONSUME_QUEUES,
                    (fed.get() - fedBefore) / elapsed) : topic + " (the measured one)";
                return String.format(Locale.ROOT, "broker bench consumers: config=%s consumers=%d reading %s sends/s "
                        + "without=%.0f with=%.0f ratio=%.3f (%.1f%% change) p99_ms without=%.2f with=%.2f "
                        + "offset-commit entries/s=%s offset commits/s=%s consumed/s=%.0f (warm-up and window, %.0f s)",
                    config, count, read, without.tps(), with.tps(), with.tps() / without.tps(),
                    100.0 * (with.tps() / without.tps() - 1), without.p99Ms(), with.p99Ms(), entries, commits,
                    (consumed.get() - consumedBefore) / elapsed, elapsed);
            } finally {
                if (feeder != null) {
                    feeder.interrupt();
                }
                started.parallelStream().forEach(org.apache.rocketmq.client.consumer.DefaultMQPushConsumer::shutdown);
            }
        }

        /** Sends {@code rate} small messages a second to {@code topic}, asynchronously, until interrupted. */
        private void feed(String topic, int rate, java.util.concurrent.atomic.AtomicLong fed) {
            long start = System.nanoTime();
            long sent = 0;
            byte[] body = new byte[128];
            while (!Thread.currentThread().isInterrupted()) {
                long due = (System.nanoTime() - start) * rate / 1_000_000_000L;
                for (; sent < due; sent++) {
                    try {
                        producer.send(new Message(topic, body), new org.apache.rocketmq.client.producer.SendCallback() {
                            @Override
                            public void onSuccess(org.apache.rocketmq.client.producer.SendResult r) {
                                fed.incrementAndGet();
                            }

                            @Override
                            public void onException(Throwable e) {
                                // a lost feed message only lowers the consumers' rate, which the line prints
                            }
                        });
                    } catch (Exception e) {
                        // as above
                    }
                }
                try {
                    TimeUnit.MILLISECONDS.sleep(5);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        /** {offset-commit entries, offset commits} the broker at {@code addr} applied, or null if it tells none. */
        private static long[] commitCounters(org.apache.rocketmq.client.impl.MQClientAPIImpl api, String addr) {
            try {
                Map<String, String> info = api.getBrokerRuntimeInfo(addr, 3000).getTable();
                String entries = info.get("brokerStateOffsetEntries");
                String commits = info.get("brokerStateOffsetCommits");
                return entries == null || commits == null ? null
                    : new long[] {Long.parseLong(entries), Long.parseLong(commits)};
            } catch (Exception e) {
                return null;
            }
        }

        GroupBenchmark.Result measure(int threads, int warmup, int seconds) throws InterruptedException {
            GroupBenchmark.Settings s = new GroupBenchmark.Settings(threads, SIZE, warmup, seconds, FlushMode.ASYNC);
            return GroupBenchmark.measure(s,
                body -> producer.send(new Message(TOPIC, body)).getSendStatus() == SendStatus.SEND_OK);
        }

        @Override
        public void close() throws InterruptedException {
            if (producer != null) {
                producer.shutdown();
            }
            for (ChildJvm p : processes) {
                p.kill();
            }
        }
    }
}
