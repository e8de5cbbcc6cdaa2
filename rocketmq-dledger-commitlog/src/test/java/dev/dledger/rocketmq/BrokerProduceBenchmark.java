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
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
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
 * <li>{@code stock-dledger}: three stock RocketMQ 5.5.1 brokers ({@code BrokerStartup}) in DLedger mode, DLedger
 *     0.3.3.4 from rocketmq-store;</li>
 * <li>{@code master-slave}: one stock ASYNC_MASTER and one SLAVE.</li>
 * </ul>
 * Every process is a child JVM with the same options; a nameserver each. Only under the {@code benchmark} profile:
 *
 * <pre>
 * mvn -pl dledger-raft,rocketmq-dledger-commitlog -P benchmark test -Dtest=BrokerProduceBenchmark \
 *     -Dsurefire.failIfNoSpecifiedTests=false -Dbench.warmup=60 -Dbench.seconds=30 -Dbench.threads=32
 * </pre>
 *
 * {@code -Dbench.configs=raft,stock-dledger,master-slave} picks the set-ups and their order.
 */
class BrokerProduceBenchmark {

    private static final int SIZE = 1024;
    private static final int QUEUES = 8;
    private static final String CLUSTER = "BenchCluster";
    private static final String BROKER_NAME = "broker-bench";
    private static final String TOPIC = "BenchTopic";
    private static final Duration MASTER_WAIT = Duration.ofSeconds(120);
    private static final List<String> BROKER_JVM = List.of("-Xms1g", "-Xmx1g", "-XX:MaxDirectMemorySize=1g",
        "--add-exports", "java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED",
        "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED", "-Djava.net.preferIPv4Stack=true");

    @TempDir
    Path tmp;

    @Test
    void produceOnOurLogAgainstStockDLedgerAndMasterSlave() throws Exception {
        int threads = Integer.getInteger("bench.threads", 32);
        int warmup = Integer.getInteger("bench.warmup", 60);
        int seconds = Integer.getInteger("bench.seconds", 30);
        List<String> configs = List.of(System.getProperty("bench.configs", "raft,stock-dledger,master-slave")
            .split(","));
        System.out.printf(Locale.ROOT, "broker bench configuration: threads=%d size=%d warmup=%ds seconds=%ds "
                + "topic=%s queues=%d sync sends, one DefaultMQProducer, route poll 1000 ms, send timeout 3000 ms, "
                + "2 retries; brokers: %s, ASYNC_FLUSH, default commit log file size; cores=%d load=%s%n", threads,
            SIZE, warmup, seconds, TOPIC, QUEUES, String.join(" ", BROKER_JVM),
            Runtime.getRuntime().availableProcessors(), load());
        Map<String, GroupBenchmark.Result> results = new LinkedHashMap<>();
        for (String config : configs) {
            Path dir = Files.createDirectories(tmp.resolve(config.trim()));
            try (BrokerSetup setup = BrokerSetup.start(config.trim(), dir)) {
                long began = System.nanoTime();
                setup.awaitRoute();
                System.out.printf("broker bench: %s up, route %s after %d ms (load %s)%n", config,
                    setup.brokerAddrs(), (System.nanoTime() - began) / 1_000_000, load());
                GroupBenchmark.Result r = setup.measure(threads, warmup, seconds);
                results.put(config.trim(), r);
                System.out.println(line(config.trim(), r) + " load=" + load());
            } finally {
                deleteTree(dir);
            }
        }
        System.out.println("broker bench results (load " + load() + "):");
        results.forEach((config, r) -> System.out.println(line(config, r)));
        GroupBenchmark.Result raft = results.get("raft");
        for (String other : List.of("stock-dledger", "master-slave")) {
            if (raft != null && results.containsKey(other)) {
                System.out.printf(Locale.ROOT, "broker bench ratio raft/%s: sends/s %.2fx, p99 %.2f ms vs %.2f ms%n",
                    other, raft.tps() / results.get(other).tps(), raft.p99Ms(), results.get(other).p99Ms());
            }
        }
        results.forEach((config, r) -> assertTrue(r.appends() > 0, config + " acknowledged no send"));
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

    /** A nameserver and the brokers of one set-up, killed on close. */
    private static final class BrokerSetup implements AutoCloseable {
        private final List<ChildJvm> processes = new ArrayList<>();
        private final String config;
        private final int brokers;
        private String namesrvAddr;
        private DefaultMQProducer producer;

        private BrokerSetup(String config, int brokers) {
            this.config = config;
            this.brokers = brokers;
        }

        static BrokerSetup start(String config, Path dir) throws Exception {
            BrokerSetup s = switch (config) {
                case "raft", "stock-dledger" -> new BrokerSetup(config, 3);
                case "master-slave" -> new BrokerSetup(config, 2);
                default -> throw new IllegalArgumentException("bench.configs: unknown set-up '" + config
                    + "', expected raft, stock-dledger or master-slave");
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
            Set<Integer> taken = new HashSet<>();
            int namesrvPort = LoopbackPorts.freePort(taken);
            namesrvAddr = "127.0.0.1:" + namesrvPort;
            Path nsDir = Files.createDirectories(dir.resolve("namesrv"));
            Path nsConf = nsDir.resolve("namesrv.conf");
            Files.writeString(nsConf, "listenPort=" + namesrvPort + "\n");
            processes.add(new ChildJvm("namesrv", jvmArgs(nsDir, "-Xmx256m"),
                "org.apache.rocketmq.namesrv.NamesrvStartup", List.of("-c", nsConf.toString()),
                nsDir.resolve("out.log")).start());

            List<Integer> listenPorts = new ArrayList<>();
            StringBuilder peers = new StringBuilder();
            for (int i = 0; i < brokers; i++) {
                int raftPort = LoopbackPorts.freePort(taken);
                peers.append(i == 0 ? "" : ";").append("n").append(i).append("-127.0.0.1:").append(raftPort);
                listenPorts.add(LoopbackPorts.brokerPort(taken));
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
                if (config.equals("master-slave")) {
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
                    main = config.equals("raft") ? RaftBrokerStartup.class.getName()
                        : "org.apache.rocketmq.broker.BrokerStartup";
                }
                Path conf = bdir.resolve("broker.conf");
                Files.writeString(conf, String.join("\n", keys) + "\n");
                List<String> jvm = new ArrayList<>(BROKER_JVM);
                jvm.addAll(jvmArgs(bdir));
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
                await("master and " + (brokers - 1) + " slaves of " + config + " registered").atMost(MASTER_WAIT)
                    .pollInterval(Duration.ofMillis(250))
                    .until(() -> {
                        Map<Long, String> addrs = brokerAddrs();
                        return addrs.containsKey(0L) && addrs.size() == brokers;
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
