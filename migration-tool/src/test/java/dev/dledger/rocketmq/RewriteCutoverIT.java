package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.migration.MigrateCommand;
import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.testing.FreePorts;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.protocol.body.TopicConfigSerializeWrapper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Writes right after the cutover, whatever the history's size: a master's store of millions of messages (generated
 * in the exact CommitLog format) is converted in rewrite mode for each of three nodes, the three brokers start on
 * the converted stores, and the first send is accepted within seconds: no node has to receive the history through
 * Raft before the leader becomes master.
 */
class RewriteCutoverIT {

    private static final String SERVER_HEAP = "256m";

    private static final String BROKER_NAME = "broker-a";
    private static final String RAFT_ADMIN_TOKEN = "cutover-admin-token";
    private static final String TOPIC = "History";
    private static final int QUEUES = 4;
    /**
     * 600,000 messages: about 90 MB of Raft log, which a follower would otherwise have to receive first. Not more: a
     * broker's start reads the header of every Raft entry (FileNodeStorage), minutes for millions on this machine.
     */
    private static final long MESSAGES = 600_000;
    private static final int BODY = 8;
    private static final int FILE_SIZE = 64 << 20;
    private static final int CQ_FILE_SIZE = 300_000 * 20;
    /** From the election of the first leader to the first accepted send, on this shared machine. */
    private static final Duration FIRST_SEND_WITHIN = Duration.ofSeconds(15);

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private final Set<Integer> taken = new HashSet<>();
    private final List<ChildJvm> processes = new ArrayList<>();
    private final List<Runnable> shutdowns = new ArrayList<>();
    private String namesrvAddr;

    private record Broker(String id, ChildJvm jvm, String addr, InetSocketAddress raft) {
    }

    @AfterEach
    void stopAll() throws InterruptedException {
        shutdowns.forEach(Runnable::run);
        for (ChildJvm c : processes) {
            c.kill();
        }
    }

    @Test
    @Timeout(value = 900, unit = TimeUnit.SECONDS)
    void convertedGroupAcceptsASendWithinSecondsOfStart() throws Throwable {
        try {
            scenario();
        } catch (Throwable t) {
            for (ChildJvm c : processes) {
                System.err.println("===== " + c.name() + " output (tail) =====\n" + c.tail(40));
            }
            throw t;
        }
    }

    private void scenario() throws Exception {
        Path source = tmp.resolve("master").resolve("store");
        CommitLogGenerator.write(source, TOPIC, QUEUES, MESSAGES, BODY, FILE_SIZE);
        Files.createDirectories(source.resolve("config"));
        TopicConfigSerializeWrapper topics = new TopicConfigSerializeWrapper();
        topics.setTopicConfigTable(new ConcurrentHashMap<>(Map.of(TOPIC, new TopicConfig(TOPIC, QUEUES, QUEUES))));
        Files.writeString(source.resolve("config").resolve("topics.json"), topics.toJson(true));

        Map<String, InetSocketAddress> raft = new LinkedHashMap<>();
        for (int i = 0; i < 3; i++) {
            raft.put("n" + i, new InetSocketAddress("127.0.0.1", FreePorts.port()));
        }
        StringBuilder peers = new StringBuilder();
        raft.forEach((id, a) -> peers.append(peers.length() == 0 ? "" : ";").append(id).append("-127.0.0.1:")
            .append(a.getPort()));
        // Each node converts from the master's store (as each host would from its copy), one after the other.
        long c0 = System.nanoTime();
        for (String id : raft.keySet()) {
            Path out = tmp.resolve("convert-" + id + ".log");
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-Xmx256m", "-cp", System.getProperty("java.class.path"), MigrateCommand.class.getName(),
                "convert", "--from", source.toString(), "--to", tmp.resolve(id).resolve("store").toString(), "--group",
                BROKER_NAME, "--peers", peers.toString(), "--self-id", id, "--seed", "n0", "--mode", "rewrite",
                "--index-hash-slots", "1000", "--index-max-items", "4000"));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            if (!p.waitFor(300, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("convert of " + id + " did not finish in 300 s");
            }
            String text = Files.readString(out);
            assertEquals(0, p.exitValue(), text);
            System.out.println("convert " + id + ": " + text.lines().filter(l -> l.startsWith("converted")
                || l.startsWith("rewrite:")).toList());
        }
        System.out.printf("3 nodes converted in %d ms%n", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - c0));

        namesrvAddr = "127.0.0.1:" + startNamesrv();
        long t0 = System.nanoTime();
        List<Broker> group = new ArrayList<>();
        for (String id : raft.keySet()) {
            group.add(raftBroker(tmp.resolve(id), id, peers.toString(), raft.get(id)));
        }
        DefaultMQProducer producer = new DefaultMQProducer("p-cutover");
        producer.setNamesrvAddr(namesrvAddr);
        producer.setPollNameServerInterval(500);
        producer.setSendMsgTimeout(3000);
        producer.setRetryTimesWhenSendFailed(0);
        producer.start();
        shutdowns.add(producer::shutdown);
        String elected = await("a leader of the new group").atMost(Duration.ofSeconds(600))
            .pollInterval(Duration.ofMillis(200)).until(() -> group.stream().filter(b -> "LEADER".equals(raftRole(b)))
                .map(Broker::id).findFirst().orElse(null), id -> id != null);
        long electedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        Message first = new Message(TOPIC, "first after cutover".getBytes(StandardCharsets.UTF_8));
        SendResult sent = await("the first send on the new group").atMost(Duration.ofSeconds(600))
            .pollInterval(Duration.ofMillis(200)).ignoreExceptions()
            .until(() -> producer.send(first), r -> r.getSendStatus() == SendStatus.SEND_OK);
        long firstSendMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        String leader = group.stream().filter(b -> "LEADER".equals(raftRole(b))).map(Broker::id).findFirst()
            .orElse("none");
        long afterElection = firstSendMs - electedMs;
        System.out.printf("CUTOVER: %d messages of history (%d MB); %s elected %d ms after the 3 brokers started; "
            + "first send accepted %d ms after start, %d ms after the election (leader now %s)%n", MESSAGES,
            Files.size(source.resolve("commitlog").resolve(String.format("%020d", 0))) * countFiles(source) >> 20,
            elected, electedMs, firstSendMs, afterElection, leader);
        // The new message follows the history in its queue: the history came along, the offsets go on.
        int q = sent.getMessageQueue().getQueueId();
        long historyInQueue = MESSAGES / QUEUES + (q < MESSAGES % QUEUES ? 1 : 0);
        assertEquals(historyInQueue, sent.getQueueOffset(), "queue offset of the first new message in queue " + q);
        assertTrue(afterElection <= FIRST_SEND_WITHIN.toMillis(), "the first send was accepted " + afterElection
            + " ms after the election, not within " + FIRST_SEND_WITHIN.toMillis() + " ms");
        // Every broker serves the history and the new message.
        MQClientAPIImpl api = producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl();
        for (Broker b : group) {
            await("broker " + b.id() + " holds the history and the new message").atMost(Duration.ofSeconds(60))
                .ignoreExceptions().until(() -> api.getMaxOffset(b.addr(), new MessageQueue(TOPIC, BROKER_NAME, q),
                    3000) == historyInQueue + 1);
        }
    }

    private static long countFiles(Path store) throws Exception {
        try (var s = Files.list(store.resolve("commitlog"))) {
            return s.count();
        }
    }

    private int startNamesrv() throws Exception {
        int port = FreePorts.port();
        Path dir = tmp.resolve("namesrv");
        Files.createDirectories(dir);
        Path conf = dir.resolve("namesrv.conf");
        Files.writeString(conf, "listenPort=" + port + "\n");
        processes.add(new ChildJvm("namesrv", ServerProcesses.jvmArgs(dir, SERVER_HEAP),
            "org.apache.rocketmq.namesrv.NamesrvStartup", List.of("-c", conf.toString()), dir.resolve("out.log")).start());
        return port;
    }

    private Broker raftBroker(Path dir, String id, String peers, InetSocketAddress raft) throws Exception {
        int port = FreePorts.brokerPort();
        List<String> conf = List.of(
            "brokerClusterName=DefaultCluster",
            "brokerName=" + BROKER_NAME,
            "brokerIP1=127.0.0.1",
            "brokerIP2=127.0.0.1",
            "listenPort=" + port,
            "namesrvAddr=" + namesrvAddr,
            "storePathRootDir=" + dir.resolve("store"),
            "storePathCommitLog=" + dir.resolve("store").resolve("commitlog"),
            "mappedFileSizeCommitLog=" + FILE_SIZE,
            "mappedFileSizeConsumeQueue=" + CQ_FILE_SIZE,
            "mappedFileSizeTimerLog=" + (8 << 20),
            "maxHashSlotNum=1000",
            "maxIndexNum=4000",
            "autoCreateTopicEnable=false",
            "flushDiskType=ASYNC_FLUSH",
            "diskMaxUsedSpaceRatio=95",
            "enableDLegerCommitLog=true",
            "dLegerGroup=" + BROKER_NAME,
            "dLegerPeers=" + peers,
            "dLegerSelfId=" + id,
            "raftElectionTimeoutMs=1000",
            "raftSecret=cutover-group-secret",
            "raftAdminToken=" + RAFT_ADMIN_TOKEN);
        Path file = dir.resolve("broker.conf");
        Files.writeString(file, String.join("\n", conf) + "\n");
        ChildJvm jvm = new ChildJvm("raft " + id, ServerProcesses.jvmArgs(dir, SERVER_HEAP), RaftBrokerStartup.class.getName(),
            List.of("-c", file.toString()), dir.resolve("out.log")).start();
        processes.add(jvm);
        return new Broker(id, jvm, "127.0.0.1:" + port, raft);
    }

    private static String raftRole(Broker b) {
        try (RaftClient c = new RaftClient(BROKER_NAME, Map.of(b.id(), b.raft()), 1000, 1, RAFT_ADMIN_TOKEN, null)) {
            return c.metadata(b.id()).get(2, TimeUnit.SECONDS).role();
        } catch (Exception e) {
            return "DOWN";
        }
    }
}
