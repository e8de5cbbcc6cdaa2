package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;

import dev.dledger.raft.testing.FreePorts;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;

/**
 * A nameserver and {@link #SIZE} broker containers ({@link RaftBrokerContainerStartup}) as child JVMs on loopback,
 * hosting {@link #SIZE} Raft groups of {@link #SIZE} brokers: container {@code c} hosts node {@code n<c>} of every
 * group, on its one Raft port; group {@code g}'s preferred leader is {@code n<g>} (set in the confs of cg0 and cg1,
 * chosen by the container for cg2, whose confs leave it out), so each container leads one group.
 *
 * <p>Ports are reserved when it is built. Not thread-safe.
 */
final class BrokerContainers implements AutoCloseable {

    static final String CLUSTER = "RaftContainerCluster";
    static final int SIZE = 3;
    static final String RAFT_SECRET = "broker-container-test-secret";
    static final String RAFT_ADMIN_TOKEN = "container-admin-token";

    private final Path dir;
    /** The nameserver, the container (or broker) processes and the clients. */
    private final ServerProcesses processes;
    /** raftPorts[g][c]: the Raft port of group g's broker in container c (one per container unless separate). */
    private final int[][] raftPorts = new int[SIZE][SIZE];
    /** Nine broker processes (each its own JVM and Raft port) instead of three containers: the benchmark's baseline. */
    private final boolean separate;
    private final int[] adminPorts = new int[SIZE];
    /** listenPorts[g][c]: the client port of group g's broker in container c. */
    private final int[][] listenPorts = new int[SIZE][SIZE];
    private final List<ChildJvm> containers = new ArrayList<>();
    /** Heap per broker, in MiB: a broker process gets this, a container three times this. */
    private int brokerHeapMb = 170;
    private boolean serverJvm;

    /** Reserves the ports of a nameserver and three containers; nothing runs yet. */
    BrokerContainers(Path dir) throws IOException {
        this(dir, false);
    }

    /**
     * Reserves the ports; nothing runs yet.
     *
     * @param separate true: the nine brokers run as nine processes ({@link RaftBrokerStartup}), each with a Raft port
     *                 of its own, as without containers; "container c" then names the three processes of node n&lt;c&gt;
     */
    BrokerContainers(Path dir, boolean separate) throws IOException {
        this.dir = dir;
        this.separate = separate;
        this.processes = new ServerProcesses("127.0.0.1:" + FreePorts.port());
        for (int c = 0; c < SIZE; c++) {
            int shared = FreePorts.port();
            adminPorts[c] = FreePorts.brokerPort();
            for (int g = 0; g < SIZE; g++) {
                raftPorts[g][c] = separate ? FreePorts.port() : shared;
                listenPorts[g][c] = FreePorts.brokerPort();
            }
        }
    }

    /** Sets the heap per broker (before {@link #start}): a separate broker gets this, a container three times it. */
    BrokerContainers withBrokerHeapMb(int mb) {
        this.brokerHeapMb = mb;
        return this;
    }

    /**
     * Runs the processes with the package's JIT, collector and heap set-up (C2, G1, the heap written once at the start)
     * instead of the tests' C1 and Serial collector, which start faster but run the code several times slower: for a
     * benchmark of a steady load.
     */
    BrokerContainers withServerJvm() {
        this.serverJvm = true;
        return this;
    }

    /** The JVM options of a process in {@code dir} with {@code heapMb} of heap. */
    private List<String> jvmArgs(Path dir, int heapMb) {
        List<String> args = new ArrayList<>(ServerProcesses.jvmArgs(dir, heapMb + "m"));
        if (serverJvm) {
            args.removeAll(List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"));
            args.add("-XX:+UseG1GC");
            args.add("-XX:+AlwaysPreTouch");
        }
        return args;
    }

    static String group(int g) {
        return "cg" + g;
    }

    String namesrvAddr() {
        return processes.namesrvAddr();
    }

    /** Container {@code c}'s admin address (where {@code mqadmin addBroker -c} goes). */
    String adminAddr(int c) {
        return "127.0.0.1:" + adminPorts[c];
    }

    /** The client address of group {@code g}'s broker in container {@code c}. */
    String brokerAddr(int g, int c) {
        return "127.0.0.1:" + listenPorts[g][c];
    }

    /** The Raft log folder of group g's node on container c (DLedger's layout: storePathRootDir/dledger-selfId). */
    Path raftDir(int g, int c) {
        return containerDir(c).resolve("store-" + group(g)).resolve("dledger-n" + c);
    }

    Path containerDir(int c) {
        return dir.resolve("container-" + c);
    }

    /** The broker config of group {@code g}'s broker in container {@code c} (written by {@link #start}). */
    Path brokerConf(int g, int c) {
        return containerDir(c).resolve(group(g) + ".conf");
    }

    /**
     * Writes every config and starts the nameserver and the containers; container {@code c} starts with the groups
     * {@code startGroups.get(c)} (the others may be added with {@code mqadmin addBroker}).
     */
    void start(List<Set<Integer>> startGroups) throws Exception {
        processes.startNamesrv(dir.resolve("namesrv"), "128m");
        for (int c = 0; c < SIZE; c++) {
            Files.createDirectories(containerDir(c));
            List<String> paths = new ArrayList<>();
            for (int g = 0; g < SIZE; g++) {
                StringBuilder peers = new StringBuilder();
                for (int n = 0; n < SIZE; n++) {
                    peers.append(n == 0 ? "" : ";").append("n").append(n).append("-127.0.0.1:").append(raftPorts[g][n]);
                }
                writeBrokerConf(g, c, peers.toString());
                if (startGroups.get(c).contains(g)) {
                    paths.add(brokerConf(g, c).toString());
                }
                if (separate && startGroups.get(c).contains(g)) {
                    containers.add(processes.add(new ChildJvm(group(g) + " n" + c,
                        jvmArgs(containerDir(c), brokerHeapMb), RaftBrokerStartup.class.getName(),
                        List.of("-c", brokerConf(g, c).toString()), containerDir(c).resolve(group(g) + ".out.log")),
                        containerDir(c)));
                }
            }
            if (separate) {
                continue;
            }
            Path conf = containerDir(c).resolve("container.conf");
            Files.writeString(conf, "listenPort=" + adminPorts[c] + "\nnamesrvAddr=" + processes.namesrvAddr()
                + "\nbrokerConfigPaths=" + String.join(":", paths) + "\nraftLoopThreads=2\n");
            containers.add(processes.add(new ChildJvm("container " + c,
                jvmArgs(containerDir(c), 3 * brokerHeapMb),
                RaftBrokerContainerStartup.class.getName(), List.of("-c", conf.toString()),
                containerDir(c).resolve("out.log")), containerDir(c)));
        }
        for (ChildJvm c : containers) {
            c.start();
        }
        processes.startRouteReader();
    }

    private void writeBrokerConf(int g, int c, String peers) throws IOException {
        Path store = containerDir(c).resolve("store-" + group(g));
        List<String> lines = List.of(
            "brokerClusterName=" + CLUSTER,
            "brokerName=" + group(g),
            "brokerIP1=127.0.0.1",
            "listenPort=" + listenPorts[g][c],
            "namesrvAddr=" + processes.namesrvAddr(),
            "storePathRootDir=" + store,
            "storePathCommitLog=" + store.resolve("commitlog"),
            "enableDLegerCommitLog=true",
            "dLegerGroup=" + group(g),
            "dLegerPeers=" + peers,
            "dLegerSelfId=n" + c,
            // cg2 names none: the container chooses (RaftBrokerContainer.automaticLeader), n2 as for the others.
            g == 2 && !separate ? "" : "preferredLeaderId=n" + g,
            "mappedFileSizeCommitLog=" + (16 << 20),
            "mappedFileSizeConsumeQueue=" + (20 * 20_000),
            "mappedFileSizeTimerLog=" + (4 << 20),
            "autoCreateTopicEnable=true",
            "flushDiskType=ASYNC_FLUSH",
            "diskMaxUsedSpaceRatio=95",
            "raftSecret=" + RAFT_SECRET,
            "raftAdminToken=" + RAFT_ADMIN_TOKEN);
        Files.writeString(brokerConf(g, c), String.join("\n", lines) + "\n");
    }

    /** Container {@code c}'s process (not with separate processes). */
    ChildJvm container(int c) {
        if (separate) {
            throw new IllegalStateException("nine separate broker processes: no container process");
        }
        return containers.get(c);
    }

    /** Every broker or container process, by name. */
    Map<String, Long> pids() {
        Map<String, Long> out = new java.util.LinkedHashMap<>();
        for (ChildJvm c : containers) {
            out.put(c.name(), c.pid());
        }
        return out;
    }

    /** Group {@code g}'s node in container {@code c} as it reports its role, or "DOWN" when it does not answer. */
    String raftRole(int g, int c) {
        return ServerProcesses.raftRole(group(g), "n" + c, new InetSocketAddress("127.0.0.1", raftPorts[g][c]),
            RAFT_ADMIN_TOKEN);
    }

    /** The raft term of group {@code g}'s node in container {@code c}, or -1 when it does not answer. */
    long raftTerm(int g, int c) {
        dev.dledger.raft.transport.ClientProtocol.Response r = raftStatus(g, c);
        return r == null ? -1 : r.term();
    }

    /** Group {@code g}'s node in container {@code c} as it reports itself ({@link ServerProcesses#raftStatus}). */
    private dev.dledger.raft.transport.ClientProtocol.Response raftStatus(int g, int c) {
        return ServerProcesses.raftStatus(group(g), "n" + c, new InetSocketAddress("127.0.0.1", raftPorts[g][c]),
            RAFT_ADMIN_TOKEN);
    }

    /**
     * How many entries group {@code g}'s node in container {@code c} lacks of the log of its leader in container
     * {@code leader}, as that leader sees it (its last index less the node's match); -1 when the leader does not
     * answer as leader or does not list the node.
     */
    long lagOf(int g, int leader, int c) {
        dev.dledger.raft.transport.ClientProtocol.Response r = raftStatus(g, leader);
        if (r == null || !"LEADER".equals(r.role()) || r.followers() == null) {
            return -1;
        }
        for (dev.dledger.raft.transport.ClientProtocol.PeerLag f : r.followers()) {
            if (f.id().equals("n" + c)) {
                return r.lastIndex() - f.match();
            }
        }
        return -1;
    }

    /** The groups each container leads now, e.g. {@code {0=[cg0], 1=[cg1], 2=[cg2]}}. */
    Map<Integer, List<String>> leadersPerContainer() {
        Map<Integer, List<String>> out = new TreeMap<>();
        for (int c = 0; c < SIZE; c++) {
            List<String> led = new ArrayList<>();
            for (int g = 0; g < SIZE; g++) {
                if ("LEADER".equals(raftRole(g, c))) {
                    led.add(group(g));
                }
            }
            out.put(c, led);
        }
        return out;
    }

    /** The nameserver's brokerId to address table of group {@code g} (empty while it knows none). */
    Map<Long, String> brokerAddrs(int g) {
        return processes.brokerAddrs(group(g));
    }

    /**
     * Waits until group {@code g} has exactly one leader among the containers {@code alive}, registered at the
     * nameserver as brokerId 0; returns that container.
     */
    int awaitLeader(int g, Set<Integer> alive, Duration atMost) {
        int[] leader = {-1};
        await("a leader of " + group(g) + " among containers " + alive + " registered as master").atMost(atMost)
            .pollInterval(Duration.ofMillis(200)).until(() -> {
                List<Integer> leaders = new ArrayList<>();
                for (int c : alive) {
                    if ("LEADER".equals(raftRole(g, c))) {
                        leaders.add(c);
                    }
                }
                if (leaders.size() != 1 || !brokerAddr(g, leaders.get(0)).equals(brokerAddrs(g).get(0L))) {
                    return false;
                }
                leader[0] = leaders.get(0);
                return true;
            });
        return leader[0];
    }

    /** A started producer of a new group that polls the nameserver every second. */
    DefaultMQProducer producer(String group) throws MQClientException {
        return producer(group, 1000);
    }

    /** A started producer of a new group that polls the nameserver every {@code pollMs}. */
    DefaultMQProducer producer(String group, long pollMs) throws MQClientException {
        return processes.producer(group, (int) pollMs);
    }

    /** Runs {@code shutdown} when this closes, before the processes stop. */
    void onClose(Runnable shutdown) {
        processes.onClose(shutdown);
    }

    void printOutputs(PrintStream out) {
        processes.printOutputs(out, dir);
    }

    /** Shuts the clients down, then kills every process (SIGKILL). */
    @Override
    public void close() throws InterruptedException {
        processes.close();
    }
}
