package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.transport.ClientProtocol;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mqadmin updateBrokerConfig} and {@code getBrokerConfig} against a running broker group on the Raft log, with
 * every part real: a nameserver and three brokers ({@link RaftBrokerStartup}) as child JVMs, and RocketMQ's own admin
 * client ({@link DefaultMQAdminExt}, what {@code bin/mqadmin} runs). An update of a stock key is applied and kept in
 * {@code broker.conf} without changing what the file means: a broker restarted from it is the same Raft node with its
 * data. {@code getBrokerConfig} reports the Raft log and each broker's true role. Raft keys are refused with one line
 * naming the key, and nothing is written.
 */
class BrokerConfigAdminTest {

    private static final Duration ROLE_WAIT = Duration.ofSeconds(90);
    private static final int MESSAGES = 200;

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private BrokerGroup group;
    private DefaultMQAdminExt admin;

    @AfterEach
    void stopAll() throws InterruptedException {
        if (admin != null) {
            admin.shutdown();
        }
        if (group != null) {
            group.close();
        }
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void updateBrokerConfigKeepsTheRaftBrokerAndRefusesRaftKeys() throws Throwable {
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
        group.start();
        int leader = group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT);
        int follower = (leader + 1) % BrokerGroup.SIZE;
        admin = new DefaultMQAdminExt(BrokerGroup.clientGroup("admin"));
        admin.setNamesrvAddr(group.namesrvAddr());
        admin.start();

        String topic = "ConfigTopic";
        DefaultMQProducer producer = group.producer("p-config");
        int acked = 0;
        for (int i = 0; i < MESSAGES; i++) {
            Message m = new Message(topic, BrokerGroup.body("k-" + i, 128));
            m.setKeys("k-" + i);
            SendResult r = sendWithRetries(producer, m);
            if (r != null && r.getSendStatus() == SendStatus.SEND_OK) {
                acked++;
            }
        }
        assertEquals(MESSAGES, acked, "sends acknowledged on a healthy group");

        // A stock key on every broker: applied at once.
        Path conf = group.brokerDir(follower).resolve("broker.conf");
        String before = Files.readString(conf, StandardCharsets.UTF_8);
        for (int i = 0; i < BrokerGroup.SIZE; i++) {
            Properties change = new Properties();
            change.setProperty("fileReservedTime", "48");
            admin.updateBrokerConfig(group.brokerAddr(i), change);
            assertEquals("48", admin.getBrokerConfig(group.brokerAddr(i)).getProperty("fileReservedTime"),
                "fileReservedTime of n" + i + " after the update");
        }

        // Restart the follower from its broker.conf: the same Raft node, with its data, and the change kept.
        ClientProtocol.Response raftBefore = group.raftStatus(follower);
        assertEquals(MESSAGES, queued(topic, follower), "messages in the consume queues of n" + follower
            + " before the restart");
        group.broker(follower).terminate(60);
        group.broker(follower).start();
        await("n" + follower + " back in the Raft group").atMost(ROLE_WAIT).pollInterval(Duration.ofMillis(300))
            .until(() -> "FOLLOWER".equals(group.raftRole(follower)) || "LEADER".equals(group.raftRole(follower)));
        int leaderAfter = group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT);
        ClientProtocol.Response raftAfter = group.raftStatus(follower);
        assertTrue(raftAfter.lastIndex() >= raftBefore.lastIndex(), "raft log of n" + follower + ": last index "
            + raftBefore.lastIndex() + " before the restart, " + raftAfter.lastIndex() + " after");
        await("messages in the consume queues of n" + follower + " after the restart").atMost(Duration.ofSeconds(30))
            .ignoreExceptions().until(() -> queued(topic, follower) == MESSAGES);
        Properties after = admin.getBrokerConfig(group.brokerAddr(follower));
        assertEquals("48", after.getProperty("fileReservedTime"), "fileReservedTime after the restart");

        // The file keeps its meaning: the user's keys as they were, the changed one changed, nothing of the launcher's.
        Properties persisted = load(conf);
        Properties expected = load(before);
        expected.setProperty("fileReservedTime", "48");
        assertEquals(expected, persisted, conf + " after updateBrokerConfig");

        // getBrokerConfig: the Raft log, and each broker's true role, as the nameserver has it.
        for (int i = 0; i < BrokerGroup.SIZE; i++) {
            Properties p = admin.getBrokerConfig(group.brokerAddr(i));
            assertEquals("true", p.getProperty("enableDLegerCommitLog"), "getBrokerConfig of n" + i);
            assertEquals("n" + i, p.getProperty("dLegerSelfId"), "getBrokerConfig of n" + i);
            if (i == leaderAfter) {
                assertEquals("0", p.getProperty("brokerId"), "getBrokerConfig of the leader n" + i);
                assertEquals("SYNC_MASTER", p.getProperty("brokerRole"), "getBrokerConfig of the leader n" + i);
            } else {
                assertEquals(Integer.toString(i + 1), p.getProperty("brokerId"), "getBrokerConfig of follower n" + i);
                assertEquals("SLAVE", p.getProperty("brokerRole"), "getBrokerConfig of follower n" + i);
            }
        }

        // Raft keys (and the keys the launcher owns) are refused naming the key; nothing is applied or written.
        String afterStockUpdate = Files.readString(conf, StandardCharsets.UTF_8);
        for (Map.Entry<String, String> refused : List.of(Map.entry("dLegerPeers", "n0-127.0.0.1:1"),
            Map.entry("enableDLegerCommitLog", "false"), Map.entry("brokerId", "0"), Map.entry("brokerRole", "SLAVE"),
            Map.entry("dLegerSelfId", "n2"), Map.entry("raftFlushMode", "sync"), Map.entry("fileReservedTime", "x"),
            Map.entry("noSuchSetting", "1"))) {
            Properties change = new Properties();
            change.setProperty(refused.getKey(), refused.getValue());
            MQBrokerException e = assertThrows(MQBrokerException.class,
                () -> admin.updateBrokerConfig(group.brokerAddr(follower), change), "update of " + refused.getKey());
            String said = e.getErrorMessage();
            assertTrue(said != null && said.contains(refused.getKey()) && !said.contains("\n"),
                "the refusal names " + refused.getKey() + " on one line: " + said);
            System.out.println("refused: " + said);
        }
        assertEquals(afterStockUpdate, Files.readString(conf, StandardCharsets.UTF_8), conf + " after refused updates");
        Properties still = admin.getBrokerConfig(group.brokerAddr(follower));
        assertEquals("n" + follower, still.getProperty("dLegerSelfId"));
        assertEquals("48", still.getProperty("fileReservedTime"));
        assertEquals(Integer.toString(follower == leaderAfter ? 0 : follower + 1), still.getProperty("brokerId"));
    }

    /** The messages of {@code topic} in broker {@code index}'s own consume queues (asked of that broker). */
    private long queued(String topic, int index) throws Exception {
        long total = 0;
        int queues = admin.examineTopicRouteInfo(topic).getQueueDatas().get(0).getReadQueueNums();
        for (int q = 0; q < queues; q++) {
            total += admin.getDefaultMQAdminExtImpl().getMqClientInstance().getMQClientAPIImpl()
                .getMaxOffset(group.brokerAddr(index), new MessageQueue(topic, BrokerGroup.BROKER_NAME, q), 3000);
        }
        return total;
    }

    /** Sends {@code m}, again after a failure (the client's own retries pace the tries), up to 5 times. */
    private static SendResult sendWithRetries(DefaultMQProducer producer, Message m) {
        for (int attempt = 0; attempt < 5; attempt++) {
            try {
                return producer.send(m);
            } catch (Exception e) {
                System.out.println("send failed, again: " + e.getMessage());
            }
        }
        return null;
    }

    private static Properties load(Path file) throws Exception {
        return load(Files.readString(file, StandardCharsets.UTF_8));
    }

    private static Properties load(String text) throws Exception {
        Properties p = new Properties();
        p.load(new java.io.StringReader(text));
        return p;
    }
}
