package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.transport.ClientProtocol;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.protocol.header.QueryConsumerOffsetRequestHeader;
import org.apache.rocketmq.remoting.protocol.header.UpdateConsumerOffsetRequestHeader;
import org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * A broker whose store was wiped, started again after the leader's retention deleted the start of the Raft log, is
 * caught up by InstallSnapshot, and the snapshot carries the broker state (issue 15): made leader, it holds the topics,
 * subscription groups and committed offsets whose entries the retention deleted, before any slave copy could run.
 * Killed (SIGKILL) and started again, it still holds them (its config files and the log after their checkpoint).
 * A real nameserver, three brokers as child JVMs, RocketMQ's own client.
 */
class BrokerStateSnapshotTest {

    private static final int BODY_BYTES = 256;
    private static final int MESSAGES_PER_TOPIC = 40;
    private static final int FILE_BYTES = 256 * 1024;
    private static final long RPC_TIMEOUT_MS = 5000;
    private static final Duration ROLE_WAIT = Duration.ofSeconds(180);
    private static final String EVERY_HOUR = IntStream.range(0, 24).mapToObj(h -> String.format("%02d", h))
        .collect(Collectors.joining(";"));

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private BrokerGroup group;

    private void atMaster(String what, BrokerGroup.MasterCall call) {
        group.atMaster(what, call);
    }

    @AfterEach
    void stopAll() throws InterruptedException {
        if (group != null) {
            group.close();
        }
    }

    @Test
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void wipedFollowerCaughtUpBySnapshotHoldsTheBrokerStateAsLeaderAndAfterARestart() throws Throwable {
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
        // Small data files that expire at any hour once older than 2 h (fileReservedTime + 1); the test ages them.
        group.withConf("mappedFileSizeCommitLog=" + FILE_BYTES, "deleteWhen=" + EVERY_HOUR,
            "fileReservedTime=1", "cleanFileForciblyEnable=false");
        group.start();
        int leader = group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT);
        int wiped = (leader + 1) % 3;
        int other = (leader + 2) % 3;

        // The follower goes, with everything it had: Raft log, config files, queues.
        group.broker(wiped).kill();
        deleteTree(group.brokerDir(wiped).resolve("store"));
        leader = group.awaitRoles(Set.of(leader, other), ROLE_WAIT);
        other = 3 - leader - wiped;

        DefaultMQProducer producer = group.producer("p-snap");
        MQClientAPIImpl api = producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl();
        List<String> topics = new ArrayList<>(List.of("SnapTopicA", "SnapTopicB"));
        String consumerGroup = BrokerGroup.clientGroup("snap-group");
        List<String> groups = new ArrayList<>(List.of(consumerGroup));
        for (String t : topics) {
            atMaster("create " + t, m -> api.createTopic(m, "TBW102", topicConfig(t), RPC_TIMEOUT_MS));
        }
        atMaster("create " + consumerGroup, m -> api.createSubscriptionGroup(m, groupConfig(consumerGroup),
            RPC_TIMEOUT_MS));
        Map<MessageQueue, Long> committed = new LinkedHashMap<>();
        for (String t : topics) {
            for (int i = 0; i < MESSAGES_PER_TOPIC; i++) {
                send(producer, new Message(t, "s", t + "-" + i, BrokerGroup.body(t + "-" + i, BODY_BYTES)));
            }
            List<MessageExt> got = group.drain(t, null, l -> l.size() >= MESSAGES_PER_TOPIC, Duration.ofSeconds(60));
            assertEquals(MESSAGES_PER_TOPIC, BrokerGroup.keysOf(got).size(), "messages of " + t + " read back");
            for (MessageExt m : got) {
                committed.merge(new MessageQueue(t, m.getBrokerName(), m.getQueueId()), m.getQueueOffset() + 1,
                    Math::max);
            }
        }
        for (Map.Entry<MessageQueue, Long> e : committed.entrySet()) {
            UpdateConsumerOffsetRequestHeader h = new UpdateConsumerOffsetRequestHeader();
            h.setConsumerGroup(consumerGroup);
            h.setTopic(e.getKey().getTopic());
            h.setQueueId(e.getKey().getQueueId());
            h.setCommitOffset(e.getValue());
            h.setBrokerName(e.getKey().getBrokerName());
            atMaster("commit " + e.getKey(), m -> api.updateConsumerOffset(m, h, RPC_TIMEOUT_MS));
        }

        // Enough messages for several data files; then every file but the newest two looks 10 hours old on the live
        // nodes, and their retention deletes them: the entries of the topics, the group and the offsets are gone.
        byte[] filler = new byte[4000];
        for (int i = 0; i < 6 * FILE_BYTES / filler.length; i++) {
            send(producer, new Message("SnapFiller", "f", "filler-" + i, filler));
        }
        for (int n : List.of(leader, other)) {
            Path data = group.raftLogDir(n).resolve("data");
            List<Path> files = dataFiles(data);
            assertTrue(files.size() >= 5, "data files of n" + n + ": " + files.size());
            for (Path f : files.subList(0, files.size() - 2)) {
                Files.setLastModifiedTime(f, FileTime.from(Instant.now().minus(Duration.ofHours(10))));
            }
        }
        for (int n : List.of(leader, other)) {
            Path data = group.raftLogDir(n).resolve("data");
            await("retention of n" + n).atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(500))
                .until(() -> dataFiles(data).size() <= 3);
        }
        long leaderStart = Long.parseLong(dataFiles(group.raftLogDir(leader).resolve("data")).get(0).getFileName()
            .toString());
        System.out.println("the leader n" + leader + "'s raft log starts at offset " + leaderStart);

        // One more topic after the cut: its entry is in the log the wiped node gets after the snapshot.
        String lateTopic = "SnapTopicLate";
        atMaster("create " + lateTopic, m -> api.createTopic(m, "TBW102", topicConfig(lateTopic), RPC_TIMEOUT_MS));
        topics.add(lateTopic);

        // The wiped node comes back: its log starts where the leader's does (InstallSnapshot), then it leads.
        long started = System.nanoTime();
        group.broker(wiped).start();
        int finalLeader = leader;
        await("n" + wiped + " caught up").atMost(ROLE_WAIT).pollInterval(Duration.ofMillis(200)).until(() -> {
            ClientProtocol.Response l = group.raftStatus(finalLeader);
            ClientProtocol.Response w = group.raftStatus(wiped);
            return l != null && w != null && w.lastIndex() >= l.lastIndex();
        });
        // Retention may delete another aged file on the leader after the cut was read (a file waits while it holds
        // broker state the config files do not have yet), so the snapshot can start the wiped node's log at a later
        // file than leaderStart (CI saw 1310720 against 1048576); never at an earlier one, which would mean that the
        // wiped node was sent entries from before the cut.
        long wipedStart = Long.parseLong(dataFiles(group.raftLogDir(wiped).resolve("data")).get(0).getFileName()
            .toString());
        System.out.println("n" + wiped + "'s raft log starts at offset " + wipedStart + ", the leader's now at "
            + dataFiles(group.raftLogDir(finalLeader).resolve("data")).get(0).getFileName());
        assertTrue(wipedStart >= leaderStart, "n" + wiped + "'s raft log starts at " + wipedStart
            + ", not at or after the leader's cut " + leaderStart + " (caught up by a snapshot)");
        transfer(wiped);
        assertEquals(wiped, group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT), "the caught-up node leads");
        System.out.println("n" + wiped + " is master " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started)
            + " ms after its start");
        String report = check(api, "after snapshot catch-up", group.brokerAddr(wiped), topics, groups, committed);

        // Part two: the node restarts from its own files (SIGKILL, no clean shutdown) and leads again.
        group.broker(wiped).kill();
        group.awaitRoles(Set.of(leader, other), ROLE_WAIT);
        group.broker(wiped).start();
        int now = group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT);
        await("n" + wiped + " caught up again").atMost(ROLE_WAIT).pollInterval(Duration.ofMillis(200)).until(() -> {
            ClientProtocol.Response l = group.raftStatus(now);
            ClientProtocol.Response w = group.raftStatus(wiped);
            return l != null && w != null && w.lastIndex() >= l.lastIndex();
        });
        transfer(wiped);
        assertEquals(wiped, group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT), "the restarted node leads");
        String again = check(api, "after its restart", group.brokerAddr(wiped), topics, groups, committed);
        assertEquals("", report + again);
    }

    /** Prints what {@code addr} holds and returns the one-line list of what is missing ("" when complete). */
    private static String check(MQClientAPIImpl api, String when, String addr, List<String> topics,
                                List<String> groups, Map<MessageQueue, Long> committed) throws Exception {
        Set<String> topicsThere = api.getAllTopicConfig(addr, RPC_TIMEOUT_MS).getTopicConfigTable().keySet();
        Set<String> groupsThere = api.getAllSubscriptionGroup(addr, RPC_TIMEOUT_MS).getSubscriptionGroupTable()
            .keySet();
        List<String> missing = new ArrayList<>();
        int topicsFound = 0;
        for (String t : topics) {
            if (topicsThere.contains(t)) {
                topicsFound++;
            } else {
                missing.add("topic " + t);
            }
        }
        int groupsFound = 0;
        for (String g : groups) {
            if (groupsThere.contains(g)) {
                groupsFound++;
            } else {
                missing.add("group " + g);
            }
        }
        int offsetsFound = 0;
        String consumerGroup = groups.get(0);
        for (Map.Entry<MessageQueue, Long> e : committed.entrySet()) {
            long there = queryOffset(api, addr, consumerGroup, e.getKey());
            if (there == e.getValue()) {
                offsetsFound++;
            } else {
                missing.add("offset " + e.getKey().getTopic() + "/" + e.getKey().getQueueId() + " " + e.getValue()
                    + " (found " + there + ")");
            }
        }
        System.out.println("broker state " + when + ": topics " + topicsFound + "/" + topics.size() + ", groups "
            + groupsFound + "/" + groups.size() + ", offsets " + offsetsFound + "/" + committed.size());
        return missing.isEmpty() ? "" : when + ": missing " + missing + "; ";
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

    private static List<Path> dataFiles(Path folder) throws IOException {
        if (!Files.isDirectory(folder)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(folder)) {
            return s.filter(p -> p.getFileName().toString().matches("\\d{20}")).sorted().toList();
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    private static TopicConfig topicConfig(String topic) {
        TopicConfig c = new TopicConfig(topic, 4, 4);
        c.setPerm(6);
        return c;
    }

    private static SubscriptionGroupConfig groupConfig(String name) {
        SubscriptionGroupConfig c = new SubscriptionGroupConfig();
        c.setGroupName(name);
        return c;
    }

    /** Sends until SEND_OK (the route of a topic just made may take a moment to reach the nameserver). */
    private static void send(DefaultMQProducer producer, Message m) {
        SendResult[] r = new SendResult[1];
        // The first try at once: without a poll delay Awaitility waits one poll interval first (200 ms a message).
        await("send to " + m.getTopic()).atMost(Duration.ofSeconds(30)).pollDelay(Duration.ZERO)
            .pollInterval(Duration.ofMillis(200)).ignoreExceptions().until(() -> {
                r[0] = producer.send(m);
                return r[0].getSendStatus() == SendStatus.SEND_OK;
            });
    }

    /** The group's offset of a queue on a broker, or -1 when it has none. */
    private static long queryOffset(MQClientAPIImpl api, String addr, String consumerGroup, MessageQueue mq)
        throws Exception {
        QueryConsumerOffsetRequestHeader h = new QueryConsumerOffsetRequestHeader();
        h.setConsumerGroup(consumerGroup);
        h.setTopic(mq.getTopic());
        h.setQueueId(mq.getQueueId());
        h.setBrokerName(mq.getBrokerName());
        h.setSetZeroIfNotFound(false);
        try {
            return api.queryConsumerOffset(addr, h, RPC_TIMEOUT_MS);
        } catch (MQBrokerException e) {
            return -1;
        }
    }
}
