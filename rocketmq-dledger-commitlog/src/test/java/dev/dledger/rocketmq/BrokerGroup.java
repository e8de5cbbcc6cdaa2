package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.raft.testing.FreePorts;
import dev.dledger.raft.transport.ClientProtocol;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * A broker group on the Raft commit log as real processes on loopback: a nameserver and three brokers
 * ({@link RaftBrokerStartup}) as child JVMs, each in its own folder under one test folder, plus the client-side
 * pieces the end-to-end tests share (producers, a reader of whole topics, message bodies that carry their key).
 *
 * <p>Ports are reserved when the group is built, so a test can put something between the brokers before they start:
 * {@link #start(PeerRoutes)} gives each broker its own {@code dLegerPeers}, in which broker i's entry for peer j may
 * be any address (a fault-injecting proxy of the link i-&gt;j); a broker's own entry is always its real Raft port.
 *
 * <p>Not thread-safe, except the read-only queries ({@link #raftStatus}, {@link #brokerAddrs}) and the process
 * controls of one broker ({@link #broker(int)}), which the fault injector calls from its own thread.
 */
final class BrokerGroup implements AutoCloseable {

    static final String CLUSTER = "RaftCluster";
    static final String BROKER_NAME = "broker-raft";
    static final int SIZE = 3;
    /** The group secret of a secured group: its brokers' raftSecret. */
    static final String RAFT_SECRET = "broker-group-test-secret";
    /** The admin token of a secured group: its brokers' raftAdminToken, which the status and transfer calls prove. */
    static final String RAFT_ADMIN_TOKEN = "broker-admin-token";
    private static final AtomicInteger CLIENT_GROUPS = new AtomicInteger();

    /** How broker {@code from} reaches peer {@code to}: at the peer's real Raft address, or somewhere in between. */
    @FunctionalInterface
    interface PeerRoutes {
        InetSocketAddress address(int from, int to, InetSocketAddress real);
    }

    private final Path dir;
    private final List<InetSocketAddress> raftAddresses = new ArrayList<>();
    private final List<Integer> listenPorts = new ArrayList<>();
    private final List<ChildJvm> brokers = new ArrayList<>();
    /** The nameserver, the brokers' processes and the clients. */
    private final ServerProcesses processes;
    /** Whether the brokers run with {@link #RAFT_SECRET} and {@link #RAFT_ADMIN_TOKEN}; else a stock broker.conf. */
    private final boolean secured;
    /** Lines added to every broker.conf written from now on ({@link #withConf}). */
    private final List<String> extraConf = new ArrayList<>();
    /** The index of the group's witness ({@link #withWitness}), -1 for none. */
    private int witness = -1;

    /** Reserves the ports of a nameserver and three secured brokers; nothing runs yet. */
    BrokerGroup(Path dir) throws IOException {
        this(dir, true);
    }

    /**
     * Reserves the ports of a nameserver and three brokers; nothing runs yet.
     *
     * @param secured true: the brokers share {@link #RAFT_SECRET} and admit {@link #RAFT_ADMIN_TOKEN}, so the Raft
     *                status ({@link #raftStatus}) can be asked; false: only the stock DLedger keys, whose Raft port
     *                answers no client request
     */
    BrokerGroup(Path dir, boolean secured) throws IOException {
        this.dir = dir;
        this.secured = secured;
        this.processes = new ServerProcesses("127.0.0.1:" + FreePorts.port());
        for (int i = 0; i < SIZE; i++) {
            raftAddresses.add(new InetSocketAddress("127.0.0.1", FreePorts.port()));
            listenPorts.add(FreePorts.brokerPort());
        }
    }

    /** Adds {@code lines} ({@code key=value}) to every broker.conf written after this call. */
    BrokerGroup withConf(String... lines) {
        extraConf.addAll(List.of(lines));
        return this;
    }

    /**
     * Makes broker {@code index} the group's witness (issue 19): every broker.conf lists it in
     * {@code raftWitnessPeers}, its own sets {@code raftWitness=true} (the Raft node only, never registered).
     */
    BrokerGroup withWitness(int index) {
        witness = index;
        return this;
    }

    /** Whether broker {@code index} is the group's witness (no broker port: the Raft node only). */
    boolean isWitness(int index) {
        return index == witness;
    }

    /** Starts the nameserver and the brokers, each broker reaching its peers directly. */
    void start() throws Exception {
        start((from, to, real) -> real);
    }

    /** Starts the nameserver and the brokers, broker i reaching peer j at {@code routes.address(i, j, real)}. */
    void start(PeerRoutes routes) throws Exception {
        processes.startNamesrv(dir.resolve("namesrv"), "256m");
        for (int i = 0; i < SIZE; i++) {
            StringBuilder peers = new StringBuilder();
            for (int j = 0; j < SIZE; j++) {
                InetSocketAddress real = raftAddresses.get(j);
                InetSocketAddress a = i == j ? real : routes.address(i, j, real);
                peers.append(j == 0 ? "" : ";").append("n").append(j).append("-127.0.0.1:").append(a.getPort());
            }
            startBroker(i, peers.toString(), List.of());
        }
        processes.startRouteReader();
    }

    /**
     * Adds a broker to the running group as an operator would: new ports, the next id ({@code n3} for the fourth),
     * a broker.conf whose {@code dLegerPeers} lists every broker so far plus itself, and {@code raftJoin=true}; starts
     * it. Returns its index.
     */
    int addBroker() throws IOException {
        int i = raftAddresses.size();
        raftAddresses.add(new InetSocketAddress("127.0.0.1", FreePorts.port()));
        listenPorts.add(FreePorts.brokerPort());
        StringBuilder peers = new StringBuilder();
        for (int j = 0; j < raftAddresses.size(); j++) {
            peers.append(j == 0 ? "" : ";").append("n").append(j).append("-127.0.0.1:")
                .append(raftAddresses.get(j).getPort());
        }
        startBroker(i, peers.toString(), List.of("raftJoin=true"));
        return i;
    }

    /** Writes broker {@code i}'s broker.conf and starts it. */
    private void startBroker(int i, String peers, List<String> more) throws IOException {
        Path brokerDir = brokerDir(i);
        Files.createDirectories(brokerDir);
        Path conf = brokerDir.resolve("broker.conf");
        List<String> lines = new ArrayList<>(List.of(
            "brokerClusterName=" + CLUSTER,
            "brokerName=" + BROKER_NAME,
            "brokerIP1=127.0.0.1",
            "listenPort=" + listenPorts.get(i),
            "namesrvAddr=" + processes.namesrvAddr(),
            "storePathRootDir=" + brokerDir.resolve("store"),
            "storePathCommitLog=" + brokerDir.resolve("store").resolve("commitlog"),
            "enableDLegerCommitLog=true",
            "dLegerGroup=" + BROKER_NAME,
            "dLegerPeers=" + peers,
            "dLegerSelfId=n" + i,
            "mappedFileSizeCommitLog=" + (64 << 20),
            "mappedFileSizeConsumeQueue=" + (20 * 20_000),
            "mappedFileSizeTimerLog=" + (8 << 20),
            "autoCreateTopicEnable=true",
            "flushDiskType=ASYNC_FLUSH",
            "diskMaxUsedSpaceRatio=95",
            secured ? "raftSecret=" + RAFT_SECRET : "",
            secured ? "raftAdminToken=" + RAFT_ADMIN_TOKEN : ""));
        lines.addAll(extraConf);
        if (witness >= 0) {
            lines.add("raftWitnessPeers=n" + witness);
            lines.add("raftWitness=" + (i == witness));
        }
        lines.addAll(more);
        Files.writeString(conf, String.join("\n", lines) + "\n");
        brokers.add(processes.add(new ChildJvm("broker n" + i, ServerProcesses.jvmArgs(brokerDir, "256m"),
            RaftBrokerStartup.class.getName(), List.of("-c", conf.toString()), brokerDir.resolve("out.log")).start(),
            brokerDir));
    }

    /** The group's {@code dLegerPeers}-style list of every broker so far, for {@code dledger-cli -p}. */
    String raftPeers() {
        StringBuilder peers = new StringBuilder();
        for (int j = 0; j < raftAddresses.size(); j++) {
            peers.append(j == 0 ? "" : ";").append("n").append(j).append("-127.0.0.1:")
                .append(raftAddresses.get(j).getPort());
        }
        return peers.toString();
    }

    Path brokerDir(int index) {
        return dir.resolve("broker-n" + index);
    }

    /** The copies of RocksDB's native library in broker {@code index}'s temporary folder. */
    List<String> rocksDbCopiesInTmp(int index) throws IOException {
        try (Stream<Path> files = Files.list(ServerProcesses.tmpDir(brokerDir(index)))) {
            return files.map(f -> f.getFileName().toString()).filter(n -> n.startsWith("librocksdbjni")).toList();
        }
    }

    /** The folder of broker {@code index}'s Raft log (DLedger's {@code dledger-<selfId>} under the store root). */
    Path raftLogDir(int index) {
        return brokerDir(index).resolve("store").resolve("dledger-n" + index);
    }

    ChildJvm broker(int index) {
        return brokers.get(index);
    }

    String namesrvAddr() {
        return processes.namesrvAddr();
    }

    /** Broker {@code index}'s real Raft address (its own entry in its peers). */
    InetSocketAddress raftAddress(int index) {
        return raftAddresses.get(index);
    }

    /** Broker {@code index}'s client address. */
    String brokerAddr(int index) {
        return "127.0.0.1:" + listenPorts.get(index);
    }

    /** The nameserver's brokerId to address table of our broker name (empty while it knows none). */
    Map<Long, String> brokerAddrs() {
        return processes.brokerAddrs(BROKER_NAME);
    }

    /** The admin token the group's Raft ports take, or null for a group on a stock broker.conf. */
    String adminToken() {
        return secured ? RAFT_ADMIN_TOKEN : null;
    }

    /**
     * Node {@code index}'s own view (role, term, commit and last index), asked at its real Raft port with the admin
     * token; null if none (always on a group without the token: its ports serve no status).
     */
    ClientProtocol.Response raftStatus(int index) {
        return ServerProcesses.raftStatus(BROKER_NAME, "n" + index, raftAddresses.get(index), adminToken());
    }

    /** The Raft role of node {@code index} as it reports it, or "DOWN" when it does not answer. */
    String raftRole(int index) {
        return ServerProcesses.raftRole(BROKER_NAME, "n" + index, raftAddresses.get(index), adminToken());
    }

    /**
     * Waits until exactly one of {@code alive} leads the Raft group, the nameserver lists it as brokerId 0, and every
     * other live broker as a slave with brokerId = index + 1; returns the leader's index.
     */
    int awaitRoles(Set<Integer> alive, Duration atMost) {
        return awaitRoles(alive, Set.of(), atMost);
    }

    /**
     * As {@link #awaitRoles(Set, Duration)} for a group with witnesses: the leader is one of {@code alive} that is no
     * witness, and the witnesses are never listed at the nameserver.
     */
    int awaitRoles(Set<Integer> alive, Set<Integer> witnesses, Duration atMost) {
        int[] leader = {-1};
        await("raft leader registered as master, followers as slaves").atMost(atMost).pollDelay(Duration.ZERO)
            .pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
                List<Integer> leaders = new ArrayList<>();
                for (int i : alive) {
                    if ("LEADER".equals(raftRole(i))) {
                        leaders.add(i);
                    }
                }
                assertEquals(1, leaders.size(), "raft leaders among " + alive + ": " + leaders);
                int l = leaders.get(0);
                assertEquals(false, witnesses.contains(l), "the raft leader n" + l + " is a witness");
                Map<Long, String> expected = new HashMap<>();
                expected.put(0L, brokerAddr(l));
                for (int i : alive) {
                    if (i != l && !witnesses.contains(i)) {
                        expected.put((long) i + 1, brokerAddr(i));
                    }
                }
                assertEquals(expected, brokerAddrs(), "nameserver route of " + BROKER_NAME);
                leader[0] = l;
            });
        return leader[0];
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Clients

    /** A started producer of a new group (named from {@code group}) that polls the nameserver every second. */
    DefaultMQProducer producer(String group) throws MQClientException {
        return processes.producer(group, 1000);
    }

    /** A new, unique client group name starting with {@code prefix}. */
    static String clientGroup(String prefix) {
        return prefix + "-" + CLIENT_GROUPS.incrementAndGet();
    }

    /** Runs {@code shutdown} when the group closes, before the processes stop (for clients). */
    void onClose(Runnable shutdown) {
        processes.onClose(shutdown);
    }

    /**
     * Reads {@code topic} from offset 0 of {@code queues} (all of the topic's queues when null) until {@code done}
     * holds for what was read or {@code atMost} runs out, then reads on until a poll comes back empty (so duplicates
     * show).
     */
    List<MessageExt> drain(String topic, Collection<MessageQueue> queues, Predicate<List<MessageExt>> done,
                           Duration atMost) throws MQClientException {
        return drain(processes.namesrvAddr(), topic, queues, done, atMost);
    }

    /** {@link #drain(String, Collection, Predicate, Duration)} through the nameserver at {@code namesrvAddr}. */
    static List<MessageExt> drain(String namesrvAddr, String topic, Collection<MessageQueue> queues,
                                  Predicate<List<MessageExt>> done, Duration atMost) throws MQClientException {
        DefaultLitePullConsumer c = new DefaultLitePullConsumer(clientGroup("c"));
        c.setNamesrvAddr(namesrvAddr);
        c.setAutoCommit(false);
        c.setPullBatchSize(64);
        c.setPollNameServerInterval(1000);
        c.start();
        try {
            Collection<MessageQueue> mqs = queues;
            if (mqs == null) {
                List<Collection<MessageQueue>> found = new ArrayList<>();
                await("the route of " + topic).atMost(Duration.ofSeconds(30)).ignoreExceptions()
                    .until(() -> found.add(c.fetchMessageQueues(topic)));
                mqs = found.get(0);
            }
            c.assign(mqs);
            for (MessageQueue mq : mqs) {
                // Seeking asks the queue's broker for its min offset: a broker that just lost the leadership (or a
                // route not yet updated) fails it, and the client's next try goes where the route now points. The
                // first try waits one interval too: a seek while the pull task that assign started has a pull in
                // flight can lose that pull's batch (seen: offsets 0-63 of a queue never delivered).
                await("seek " + mq).atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(500))
                    .ignoreExceptionsInstanceOf(MQClientException.class).until(() -> {
                        c.seek(mq, 0);
                        return true;
                    });
            }
            List<MessageExt> got = new ArrayList<>();
            long deadline = System.nanoTime() + atMost.toNanos();
            // done looks at everything read so far: asked after every poll it made a long read quadratic (a read
            // of 830,000 messages got through 205,000 in 180 s), so it is asked when a poll brings nothing or once
            // a second.
            long nextCheck = System.nanoTime();
            boolean complete = false;
            while (System.nanoTime() < deadline) {
                List<MessageExt> batch = c.poll(200);
                got.addAll(batch);
                if (batch.isEmpty() || System.nanoTime() - nextCheck >= 0) {
                    if (done.test(got)) {
                        complete = true;
                        break;
                    }
                    nextCheck = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
                }
            }
            if (complete || done.test(got)) {
                List<MessageExt> more;
                while (!(more = c.poll(500)).isEmpty()) {
                    got.addAll(more);
                }
            }
            return got;
        } finally {
            c.shutdown();
        }
    }

    static Set<String> keysOf(List<MessageExt> messages) {
        Set<String> keys = new HashSet<>();
        for (MessageExt m : messages) {
            keys.add(m.getKeys());
        }
        return keys;
    }

    /** Checks every message's body against its key ({@link #body}, {@code bytes} long); returns the distinct keys. */
    static Set<String> checkBodies(List<MessageExt> messages, int bytes) {
        Set<String> keys = new HashSet<>();
        for (MessageExt m : messages) {
            assertArrayEquals(body(m.getKeys(), bytes), m.getBody(), "body of message " + m.getKeys()
                + " at queue offset " + m.getQueueOffset() + " of " + m.getQueueId());
            keys.add(m.getKeys());
        }
        return keys;
    }

    /** A body of {@code bytes} made from the key, so a body read back can be checked against its key. */
    static byte[] body(String key, int bytes) {
        byte[] unit = (key + "|").getBytes(StandardCharsets.UTF_8);
        byte[] b = new byte[bytes];
        for (int i = 0; i < b.length; i++) {
            b[i] = unit[i % unit.length];
        }
        return b;
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Reports and shutdown

    /** A request to the broker at {@code master}, the group's master at that moment. */
    @FunctionalInterface
    interface MasterCall {
        void call(String master) throws Exception;
    }

    /**
     * Runs {@code call} against the group's master as the nameserver lists it, again on an error (a leader change on
     * a loaded machine refuses the request at the old master), for up to 60 s.
     *
     * @return the master that answered
     */
    String atMaster(String what, MasterCall call) {
        String[] answered = new String[1];
        org.awaitility.Awaitility.await(what).atMost(java.time.Duration.ofSeconds(60))
            .pollDelay(java.time.Duration.ZERO).pollInterval(java.time.Duration.ofMillis(200))
            .ignoreExceptions().until(() -> {
                String master = brokerAddrs().get(0L);
                if (master == null) {
                    return false;
                }
                call.call(master);
                answered[0] = master;
                return true;
            });
        return answered[0];
    }

    /** Prints the tail of every process's output and broker log, and where the files are. */
    void printOutputs(PrintStream out) {
        processes.printOutputs(out, dir);
    }

    /** Shuts the clients down, then kills every process (SIGKILL). */
    @Override
    public void close() throws InterruptedException {
        processes.close();
    }
}
