package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.testing.FreePorts;
import dev.dledger.raft.client.RaftClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.rocketmq.broker.BrokerPathConfigHelper;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.common.BrokerConfig;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.remoting.protocol.DataVersion;
import org.apache.rocketmq.remoting.protocol.RemotingSerializable;
import org.apache.rocketmq.remoting.protocol.body.TopicConfigSerializeWrapper;
import org.apache.rocketmq.remoting.protocol.header.QueryConsumerOffsetRequestHeader;
import org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.PutMessageStatus;
import org.apache.rocketmq.store.config.FlushDiskType;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.apache.rocketmq.store.dledger.DLedgerCommitLog;
import org.apache.rocketmq.store.stats.BrokerStatsManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * A broker group whose store was written by stock RocketMQ 5.5.1 in DLedger mode (issue 15): node n0 holds the stock
 * Raft log and the broker's config files (topics, subscription groups, consumer offsets), n1 and n2 hold the same log
 * but never had those files. Under our launcher, n0's first time as master puts the files' state into the log (and
 * writes the import marker); after n0 is killed (SIGKILL), the new master, which never had the files, holds every
 * topic, group and offset. Real nameserver, three broker processes, RocketMQ's own client.
 */
class StockStateImportTest {

    private static final long RPC_TIMEOUT_MS = 5000;
    private static final Duration ROLE_WAIT = Duration.ofSeconds(180);
    private static final int FILE_BYTES = 1 << 20;
    private static final int CQ_BYTES = 20 * 20_000;
    private static final List<String> TOPICS = List.of("StockTopicA", "StockTopicB");
    private static final String GROUP = "stock-group";
    /** {@code MARKER}, spelled out so that this test also builds on the code before it. */
    private static final String MARKER = "brokerState.imported";

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private BrokerGroup group;

    @AfterEach
    void stopAll() throws InterruptedException {
        if (group != null) {
            group.close();
        }
    }

    @Test
    @Timeout(value = 480, unit = TimeUnit.SECONDS)
    void stockStoresConfigFilesReachANodeThatNeverHadThemThroughTheLog() throws Throwable {
        try {
            scenario();
        } catch (Throwable t) {
            if (group != null) {
                group.printOutputs(System.err);
            }
            throw t;
        }
    }

    private void scenario() throws Exception {
        group = new BrokerGroup(tmp);
        group.withConf("mappedFileSizeCommitLog=" + FILE_BYTES);
        Path store0 = group.brokerDir(0).resolve("store");
        writeStockStore(store0);
        Map<String, Long> offsets = writeStockConfigFiles(store0.toString());
        // The followers of the stock group hold the same Raft log, but none of the broker's config files.
        for (int n : List.of(1, 2)) {
            copyTree(group.raftLogDir(0), group.raftLogDir(n));
        }

        group.start();
        group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT);
        // The node with the files leads (it may have from the start).
        transfer(0);
        assertEquals(0, group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT), "n0 leads");
        Path marker = store0.resolve("config").resolve(MARKER);
        try {
            await("n0's import marker").atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
                .until(() -> Files.exists(marker));
            System.out.println("n0's import marker: " + Files.readString(marker).trim());
        } catch (org.awaitility.core.ConditionTimeoutException e) {
            System.out.println("n0 wrote no import marker");
        }
        for (int n : List.of(1, 2)) {
            Path m = group.brokerDir(n).resolve("store").resolve("config").resolve(MARKER);
            if (Files.exists(m)) {
                System.out.println("n" + n + "'s import marker: " + Files.readString(m).trim());
            }
        }

        MQClientAPIImpl api = group.producer("p-stock").getDefaultMQProducerImpl().getMqClientFactory()
            .getMQClientAPIImpl();
        group.broker(0).kill();
        int leader = group.awaitRoles(Set.of(1, 2), ROLE_WAIT);
        String master = group.brokerAddr(leader);
        Set<String> topicsThere = api.getAllTopicConfig(master, RPC_TIMEOUT_MS).getTopicConfigTable().keySet();
        Set<String> groupsThere = api.getAllSubscriptionGroup(master, RPC_TIMEOUT_MS).getSubscriptionGroupTable()
            .keySet();
        int topicsFound = (int) TOPICS.stream().filter(topicsThere::contains).count();
        int groupsFound = groupsThere.contains(GROUP) ? 1 : 0;
        List<String> wrong = new ArrayList<>();
        for (Map.Entry<String, Long> e : offsets.entrySet()) {
            String[] tq = e.getKey().split("/");
            long there = queryOffset(api, master, tq[0], Integer.parseInt(tq[1]));
            if (there != e.getValue()) {
                wrong.add(e.getKey() + " " + e.getValue() + " (found " + there + ")");
            }
        }
        System.out.println("broker state from a stock store after failover to n" + leader + ": topics " + topicsFound
            + "/" + TOPICS.size() + ", groups " + groupsFound + "/1, offsets " + (offsets.size() - wrong.size()) + "/"
            + offsets.size());
        assertEquals(TOPICS.size(), topicsFound, "topics on n" + leader + ": " + topicsThere);
        assertEquals(1, groupsFound, "group " + GROUP + " on n" + leader + ": " + groupsThere);
        assertEquals(List.of(), wrong, "consumer offsets on n" + leader);
        assertTrue(Files.readString(marker).startsWith("imported"), "n0's marker says it imported");
    }

    /** A store written by stock DLedger mode (one node, n0) with a few messages, shut down cleanly. */
    private static void writeStockStore(Path root) throws Exception {
        MessageStoreConfig c = new MessageStoreConfig();
        c.setStorePathRootDir(root.toString());
        c.setStorePathCommitLog(root.resolve("commitlog").toString());
        c.setMappedFileSizeCommitLog(FILE_BYTES);
        c.setMappedFileSizeConsumeQueue(CQ_BYTES);
        c.setFlushDiskType(FlushDiskType.ASYNC_FLUSH);
        c.setEnableDLegerCommitLog(true);
        c.setdLegerGroup(BrokerGroup.BROKER_NAME);
        c.setdLegerPeers(FreePorts.peers(FreePorts.take(1)));
        c.setdLegerSelfId("n0");
        DefaultMessageStore stock = new DefaultMessageStore(c, new BrokerStatsManager("stock", true), null,
            new BrokerConfig(), new ConcurrentHashMap<>());
        assertTrue(stock.load(), "the stock store loads");
        stock.start();
        try {
            DLedgerCommitLog log = (DLedgerCommitLog) stock.getCommitLog();
            await().atMost(Duration.ofSeconds(30)).until(() -> log.getdLedgerServer().getMemberState().isLeader());
            for (int i = 0; i < 20; i++) {
                assertEquals(PutMessageStatus.PUT_OK, stock.putMessage(StoreGroup.message(TOPICS.get(0), i % 4,
                    "stock-" + i)).getPutMessageStatus());
            }
            await().atMost(Duration.ofSeconds(20)).until(() -> stock.dispatchBehindBytes() == 0);
        } finally {
            stock.shutdown();
        }
    }

    /**
     * The stock broker's config files as its managers write them: two topics, one subscription group, and that group's
     * offsets in four queues of the first topic. Returns the offsets by "topic/queueId".
     */
    private static Map<String, Long> writeStockConfigFiles(String root) throws IOException {
        ConcurrentHashMap<String, TopicConfig> topics = new ConcurrentHashMap<>();
        for (String t : TOPICS) {
            TopicConfig tc = new TopicConfig(t, 4, 4);
            tc.setPerm(6);
            topics.put(t, tc);
        }
        TopicConfigSerializeWrapper w = new TopicConfigSerializeWrapper();
        w.setTopicConfigTable(topics);
        w.setDataVersion(new DataVersion());
        write(BrokerPathConfigHelper.getTopicConfigPath(root), w.toJson(true));

        SubscriptionGroupConfig g = new SubscriptionGroupConfig();
        g.setGroupName(GROUP);
        Map<String, Object> groups = new LinkedHashMap<>();
        groups.put("subscriptionGroupTable", Map.of(GROUP, g));
        groups.put("forbiddenTable", Map.of());
        groups.put("dataVersion", new DataVersion());
        write(BrokerPathConfigHelper.getSubscriptionGroupPath(root), RemotingSerializable.toJson(groups, true));

        Map<Integer, Long> queues = new LinkedHashMap<>();
        Map<String, Long> offsets = new LinkedHashMap<>();
        for (int q = 0; q < 4; q++) {
            queues.put(q, 3L + q);
            offsets.put(TOPICS.get(0) + "/" + q, 3L + q);
        }
        Map<String, Object> table = new LinkedHashMap<>();
        table.put("offsetTable", Map.of(TOPICS.get(0) + "@" + GROUP, queues));
        write(BrokerPathConfigHelper.getConsumerOffsetPath(root), RemotingSerializable.toJson(table, true));
        return offsets;
    }

    private static void write(String file, String content) throws IOException {
        Path p = Path.of(file);
        Files.createDirectories(p.getParent());
        Files.writeString(p, content);
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else if (!p.getFileName().toString().equals("lock")) {
                    Files.copy(p, target);
                }
            }
        }
    }

    /** Asks the group to hand the leadership to node {@code target}, again until it leads (60 s at most). */
    private void transfer(int target) {
        Map<String, InetSocketAddress> peers = new HashMap<>();
        for (int i = 0; i < BrokerGroup.SIZE; i++) {
            peers.put("n" + i, group.raftAddress(i));
        }
        await("leadership to n" + target).atMost(Duration.ofSeconds(60)).pollDelay(Duration.ZERO)
            .pollInterval(Duration.ofMillis(500)).ignoreExceptions().until(() -> {
                if ("LEADER".equals(group.raftRole(target))) {
                    return true;
                }
                try (RaftClient c = new RaftClient(BrokerGroup.BROKER_NAME, peers, 3000, 2, group.adminToken(),
                    null)) {
                    c.leadershipTransfer("n" + target).get(10, TimeUnit.SECONDS);
                }
                return "LEADER".equals(group.raftRole(target));
            });
    }

    /** The group's offset of a queue on a broker, or -1 when it has none. */
    private static long queryOffset(MQClientAPIImpl api, String addr, String topic, int queueId) throws Exception {
        QueryConsumerOffsetRequestHeader h = new QueryConsumerOffsetRequestHeader();
        h.setConsumerGroup(GROUP);
        h.setTopic(topic);
        h.setQueueId(queueId);
        h.setBrokerName(BrokerGroup.BROKER_NAME);
        h.setSetZeroIfNotFound(false);
        try {
            return api.queryConsumerOffset(addr, h, RPC_TIMEOUT_MS);
        } catch (MQBrokerException e) {
            return -1;
        }
    }
}
