package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.migration.MigrateCommand;
import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.testing.FreePorts;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.protocol.route.BrokerData;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/**
 * The processes of a migration test, all real: a stock nameserver, stock brokers ({@code BrokerStartup}), brokers of
 * a Raft group ({@link RaftBrokerStartup}), {@code dledger-migrate} in its own JVM, and RocketMQ's clients. Ports are
 * free loopback ports; {@link #close()} shuts the clients down and kills every process still running. Every broker
 * shares {@link #brokerConf}'s small files, so that little memory and disk are used.
 */
final class MigrationProcesses implements AutoCloseable {

    private static final String SERVER_HEAP = "256m";

    static final String CLUSTER = "DefaultCluster";
    static final String BROKER_NAME = "broker-a";
    static final String RAFT_SECRET = "migration-test-group-secret";
    static final String RAFT_ADMIN_TOKEN = "migration-admin-token";
    static final int FILE_SIZE = 1 << 20;
    static final int CQ_FILE_SIZE = 20 * 20_000;
    static final int INDEX_SLOTS = 5000;
    static final int INDEX_ITEMS = 20_000;
    static final Duration WAIT = Duration.ofSeconds(90);
    private static final AtomicInteger CLIENTS = new AtomicInteger();

    /** A broker process and its address. */
    record Broker(String id, ChildJvm jvm, String addr, InetSocketAddress raft) {
    }

    /** A finished command: exit code, standard output, standard error. */
    record Run(int code, String out, String err) {
    }

    private final Path tmp;
    private final List<ChildJvm> processes = new ArrayList<>();
    private final List<Runnable> shutdowns = new ArrayList<>();
    private String namesrvAddr;
    private DefaultMQAdminExt routeReader;

    MigrationProcesses(Path tmp) {
        this.tmp = tmp;
    }

    /** The nameserver's address (after {@link #startNamesrv()}). */
    String namesrvAddr() {
        return namesrvAddr;
    }

    /** A free loopback port no other process of this test took. */
    int freePort() throws IOException {
        return FreePorts.port();
    }

    /** Registers a client (or anything) to shut down at {@link #close()}. */
    void onClose(Runnable r) {
        shutdowns.add(r);
    }

    /** A fresh client instance name, so that clients of one JVM do not share a factory. */
    static String instanceName() {
        return "migration-it-" + CLIENTS.incrementAndGet();
    }

    @Override
    public void close() throws InterruptedException {
        for (Runnable r : shutdowns) {
            try {
                r.run();
            } catch (RuntimeException e) {
                System.err.println("client shutdown: " + e);
            }
        }
        for (ChildJvm c : processes) {
            c.kill();
        }
    }

    /** Starts the nameserver; returns its port. */
    int startNamesrv() throws Exception {
        int port = FreePorts.port();
        Path dir = tmp.resolve("namesrv");
        Files.createDirectories(dir);
        Path conf = dir.resolve("namesrv.conf");
        Files.writeString(conf, "listenPort=" + port + "\n");
        processes.add(new ChildJvm("namesrv", ServerProcesses.jvmArgs(dir, SERVER_HEAP),
            "org.apache.rocketmq.namesrv.NamesrvStartup", List.of("-c", conf.toString()), dir.resolve("out.log")).start());
        namesrvAddr = "127.0.0.1:" + port;
        return port;
    }

    /** The settings every broker of the test shares: small files, so that little memory and disk are used. */
    List<String> brokerConf(Path dir, int listenPort) {
        return new ArrayList<>(List.of(
            "brokerClusterName=" + CLUSTER,
            "brokerName=" + BROKER_NAME,
            "brokerIP1=127.0.0.1",
            "brokerIP2=127.0.0.1",
            "listenPort=" + listenPort,
            "namesrvAddr=" + namesrvAddr,
            "storePathRootDir=" + dir.resolve("store"),
            "storePathCommitLog=" + dir.resolve("store").resolve("commitlog"),
            "mappedFileSizeCommitLog=" + FILE_SIZE,
            "mappedFileSizeConsumeQueue=" + CQ_FILE_SIZE,
            "mappedFileSizeTimerLog=" + (8 << 20),
            "maxHashSlotNum=" + INDEX_SLOTS,
            "maxIndexNum=" + INDEX_ITEMS,
            "autoCreateTopicEnable=false",
            "flushDiskType=ASYNC_FLUSH",
            "diskMaxUsedSpaceRatio=95"));
    }

    /**
     * A stock broker ({@code BrokerStartup}) in {@code tmp/name}, store in {@code tmp/name/store}; {@code extraConf}
     * lines ({@code key=value}) are added to its broker.conf.
     */
    Broker stockBroker(String name, int brokerId, String role, String... extraConf) throws Exception {
        Path dir = tmp.resolve(name);
        Files.createDirectories(dir);
        int port = FreePorts.brokerPort();
        List<String> conf = brokerConf(dir, port);
        conf.add("brokerId=" + brokerId);
        conf.add("brokerRole=" + role);
        conf.add("haListenPort=" + (port + 1));
        // A slave that registered before its master learns the master's address at its next registration.
        conf.add("registerNameServerPeriod=10000");
        conf.addAll(List.of(extraConf));
        Path file = dir.resolve("broker.conf");
        Files.writeString(file, String.join("\n", conf) + "\n");
        ChildJvm jvm = new ChildJvm("stock " + name, ServerProcesses.jvmArgs(dir, SERVER_HEAP),
            "org.apache.rocketmq.broker.BrokerStartup", List.of("-c", file.toString()), dir.resolve("out.log")).start();
        processes.add(jvm);
        return new Broker(name, jvm, "127.0.0.1:" + port, null);
    }

    /**
     * A broker of the Raft group through our launcher, on the converted store in {@code dir/store}; {@code extraConf}
     * lines ({@code key=value}) are added to its broker.conf (a key given again there wins).
     */
    Broker raftBroker(Path dir, String id, String peers, InetSocketAddress raft, String... extraConf) throws Exception {
        int port = FreePorts.brokerPort();
        List<String> conf = brokerConf(dir, port);
        conf.add("enableDLegerCommitLog=true");
        conf.add("dLegerGroup=" + BROKER_NAME);
        conf.add("dLegerPeers=" + peers);
        conf.add("dLegerSelfId=" + id);
        // Longer than the default 300 ms: on this shared 2-core machine the JVMs stall for that long at times.
        conf.add("raftElectionTimeoutMs=1000");
        // The status the tests poll is an admin request: served only with the group secret and the admin token.
        conf.add("raftSecret=" + RAFT_SECRET);
        conf.add("raftAdminToken=" + RAFT_ADMIN_TOKEN);
        conf.addAll(List.of(extraConf));
        Path file = dir.resolve("broker.conf");
        Files.writeString(file, String.join("\n", conf) + "\n");
        ChildJvm jvm = new ChildJvm("raft " + dir.getParent().getFileName() + " " + id, ServerProcesses.jvmArgs(dir, SERVER_HEAP),
            RaftBrokerStartup.class.getName(), List.of("-c", file.toString()), dir.resolve("out.log")).start();
        processes.add(jvm);
        return new Broker(id, jvm, "127.0.0.1:" + port, raft);
    }

    /** Copies the folder {@code from} with everything in it to {@code to}, which must not hold any of it yet. */
    static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path d = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(d);
                } else {
                    Files.copy(p, d);
                }
            }
        }
    }

    /** Three Raft ports on loopback, by node id n0..n2. */
    Map<String, InetSocketAddress> raftPorts() throws IOException {
        Map<String, InetSocketAddress> raft = new java.util.LinkedHashMap<>();
        for (int i = 0; i < 3; i++) {
            raft.put("n" + i, new InetSocketAddress("127.0.0.1", FreePorts.port()));
        }
        return raft;
    }

    /** Stops the brokers together with SIGTERM; each must end as a JVM does on SIGTERM, after its shutdown hook. */
    static void terminate(List<Broker> brokers) throws Exception {
        List<CompletableFuture<Integer>> codes = new ArrayList<>();
        for (Broker b : brokers) {
            codes.add(CompletableFuture.supplyAsync(() -> {
                try {
                    return b.jvm().terminate(60);
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            }));
        }
        for (int i = 0; i < brokers.size(); i++) {
            assertEquals(143, codes.get(i).get(), "exit code of " + brokers.get(i).jvm().name() + " after SIGTERM");
        }
    }

    /** {@code dLegerPeers} of the ports. */
    static String peers(Map<String, InetSocketAddress> raft) {
        StringBuilder sb = new StringBuilder();
        raft.forEach((id, a) -> sb.append(sb.length() == 0 ? "" : ";").append(id).append("-127.0.0.1:")
            .append(a.getPort()));
        return sb.toString();
    }

    static int listenPort(String addr) {
        return Integer.parseInt(addr.substring(addr.lastIndexOf(':') + 1));
    }

    /** Runs the commands at the same time, each in its own JVM; returns their results in order. */
    List<Run> cliAll(List<String[]> commands) throws Exception {
        List<CompletableFuture<Run>> runs = new ArrayList<>();
        for (String[] args : commands) {
            runs.add(CompletableFuture.supplyAsync(() -> {
                try {
                    return cli(args);
                } catch (Exception e) {
                    throw new IllegalStateException("dledger-migrate " + String.join(" ", args) + ": " + e, e);
                }
            }));
        }
        List<Run> out = new ArrayList<>();
        for (CompletableFuture<Run> r : runs) {
            out.add(r.get());
        }
        return out;
    }

    /** Runs {@code dledger-migrate} in its own JVM, as {@code bin/dledger-migrate} does. */
    Run cli(String... args) throws Exception {
        Path dir = tmp.resolve("cli");
        Files.createDirectories(dir);
        int n = CLIENTS.incrementAndGet();
        Path out = dir.resolve(n + ".out");
        Path err = dir.resolve(n + ".err");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx256m", "-cp", System.getProperty("java.class.path"), MigrateCommand.class.getName()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(180, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("dledger-migrate " + String.join(" ", args) + " did not finish in 180 s");
        }
        Run r = new Run(p.exitValue(), Files.readString(out), Files.readString(err));
        String lastProgress = r.err().replace('\r', '\n').lines().filter(l -> !l.isBlank()).reduce((a, b) -> b)
            .orElse("");
        System.out.println("$ dledger-migrate " + String.join(" ", args) + "\n" + r.out() + lastProgress + "\n-> exit "
            + r.code());
        return r;
    }

    /** A started producer, shut down at {@link #close()}. */
    DefaultMQProducer producer() throws Exception {
        DefaultMQProducer p = new DefaultMQProducer("p-migration-" + CLIENTS.incrementAndGet());
        p.setInstanceName(instanceName());
        p.setNamesrvAddr(namesrvAddr);
        p.setPollNameServerInterval(1000);
        p.setSendMsgTimeout(5000);
        p.start();
        shutdowns.add(p::shutdown);
        return p;
    }

    /** A started admin client, shut down at {@link #close()}. */
    DefaultMQAdminExt admin() throws Exception {
        DefaultMQAdminExt a = new DefaultMQAdminExt("admin-migration-" + CLIENTS.incrementAndGet(), 5000);
        a.setInstanceName(instanceName());
        a.setNamesrvAddr(namesrvAddr);
        a.start();
        shutdowns.add(a::shutdown);
        return a;
    }

    /** Waits until the nameserver lists exactly {@code expected} (brokerId to address) for our broker name. */
    void awaitRoute(String what, Map<Long, String> expected) {
        await(what + " registered").atMost(WAIT).pollInterval(Duration.ofMillis(200))
            .untilAsserted(() -> assertEquals(expected, route()));
    }

    /** The nameserver's brokerId to address table of our broker name (empty while it knows none). */
    Map<Long, String> route() throws Exception {
        if (routeReader == null) {
            routeReader = admin();
        }
        try {
            BrokerData data = routeReader.examineBrokerClusterInfo().getBrokerAddrTable().get(BROKER_NAME);
            return data == null ? Map.of() : new HashMap<>(data.getBrokerAddrs());
        } catch (Exception e) {
            return Map.of();
        }
    }

    /**
     * Waits until one broker of the group leads the Raft group and the nameserver lists it as brokerId 0 and every
     * other one with brokerId = its index + 1; returns the leader.
     */
    Broker awaitRaftRoles(List<Broker> group) {
        Broker[] leader = new Broker[1];
        await("raft leader registered as master, followers as slaves").atMost(WAIT).pollInterval(Duration.ofMillis(250))
            .untilAsserted(() -> {
                List<Broker> leaders = new ArrayList<>();
                for (Broker b : group) {
                    if ("LEADER".equals(raftRole(b))) {
                        leaders.add(b);
                    }
                }
                assertEquals(1, leaders.size(), "raft leaders: " + leaders.stream().map(Broker::id).toList());
                Map<Long, String> expected = new HashMap<>();
                for (int i = 0; i < group.size(); i++) {
                    Broker b = group.get(i);
                    expected.put(b == leaders.get(0) ? 0L : i + 1L, b.addr());
                }
                assertEquals(expected, route(), "nameserver route of " + BROKER_NAME);
                leader[0] = leaders.get(0);
            });
        return leader[0];
    }

    private static String raftRole(Broker b) {
        try (RaftClient c = new RaftClient(BROKER_NAME, Map.of(b.id(), b.raft()), 1000, 1, RAFT_ADMIN_TOKEN, null)) {
            return c.metadata(b.id()).get(2, TimeUnit.SECONDS).role();
        } catch (Exception e) {
            return "DOWN";
        }
    }

    /** Waits until the broker at {@code addr} reports max offset {@code counts} for every queue. */
    static void awaitQueues(String what, String addr, DefaultMQProducer client, Map<String, Long> counts) {
        MQClientAPIImpl api = client.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl();
        await(what).atMost(WAIT).pollInterval(Duration.ofMillis(200)).ignoreExceptions().untilAsserted(() -> {
            Map<String, Long> have = new TreeMap<>();
            for (String q : counts.keySet()) {
                String[] tq = q.split("/");
                have.put(q, api.getMaxOffset(addr, new MessageQueue(tq[0], BROKER_NAME, Integer.parseInt(tq[1])),
                    3000));
            }
            assertEquals(counts, have, what + " at " + addr);
        });
    }

    /** Prints the tail of every process's output and broker log, for a failed test. */
    void printOutputs() {
        for (ChildJvm c : processes) {
            System.err.println("===== " + c.name() + " output (tail) =====");
            System.err.println(c.tail(40));
        }
        try (Stream<Path> s = Files.walk(tmp)) {
            for (Path log : s.filter(p -> p.getFileName().toString().equals("broker.log")).toList()) {
                System.err.println("===== " + tmp.relativize(log) + " (tail) =====");
                System.err.println(ChildJvm.tailOf(log, 40));
            }
        } catch (IOException e) {
            System.err.println("cannot list " + tmp + ": " + e);
        }
        System.err.println("the processes' files are kept in " + tmp);
    }
}
