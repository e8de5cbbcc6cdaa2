package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.impl.CommunicationMode;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.protocol.ResponseCode;
import org.apache.rocketmq.remoting.protocol.header.QueryConsumerOffsetRequestHeader;
import org.apache.rocketmq.remoting.protocol.header.SendMessageRequestHeader;
import org.apache.rocketmq.remoting.protocol.header.UpdateConsumerOffsetRequestHeader;
import org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * The broker's own state survives a failover exactly (issue 15): a real nameserver, three brokers on the Raft log as
 * child JVMs, RocketMQ's own client. Topics and subscription groups are created through the admin requests, messages
 * are consumed and their offsets committed with the synchronous {@code updateConsumerOffset}; the leader is killed
 * (SIGKILL) right after the last of those was acknowledged (the last topic, the last group and every offset within
 * 200 ms). The new master must hold every topic, every group and every committed offset, and a consumer of the group
 * resuming there must get nothing again (everything consumed was committed and acknowledged before the kill). Delayed
 * messages the old master delivered before the kill must not be delivered again by the new one.
 */
class BrokerStateFailoverTest {

    private static final int BODY_BYTES = 256;
    private static final int MESSAGES_PER_TOPIC = 60;
    private static final long RPC_TIMEOUT_MS = 5000;
    /** Generous: on a loaded 2-core machine three brokers took over a minute to start. */
    private static final Duration ROLE_WAIT = Duration.ofSeconds(180);

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private BrokerGroup group;
    /** The master that answered the last admin or offset request. */
    private volatile String lastMaster;

    /** A request to the master; retried (at the master of the moment) until it is answered without error. */
    private void atMaster(String what, BrokerGroup.MasterCall call) {
        lastMaster = group.atMaster(what, call);
    }

    @AfterEach
    void stopAll() throws InterruptedException {
        if (group != null) {
            group.close();
        }
    }

    @Test
    @Timeout(value = 480, unit = TimeUnit.SECONDS)
    void topicsGroupsAndOffsetsAcknowledgedJustBeforeALeaderKillAreOnTheNewMaster() throws Throwable {
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
        group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT);
        DefaultMQProducer producer = group.producer("p-state");
        MQClientAPIImpl api = producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl();

        // Two topics and a group made early; their messages are consumed with the group.
        List<String> topics = new ArrayList<>(List.of("StateTopicA", "StateTopicB"));
        String consumerGroup = BrokerGroup.clientGroup("state-group");
        List<String> groups = new ArrayList<>(List.of(consumerGroup));
        for (String t : topics) {
            atMaster("create " + t, m -> api.createTopic(m, "TBW102", topicConfig(t), RPC_TIMEOUT_MS));
        }
        atMaster("create " + consumerGroup, m -> api.createSubscriptionGroup(m, groupConfig(consumerGroup),
            RPC_TIMEOUT_MS));
        Map<String, Integer> sentTo = new HashMap<>();
        for (String t : topics) {
            for (int i = 0; i < MESSAGES_PER_TOPIC; i++) {
                SendResult r = sendWithRetry(producer, new Message(t, "s", t + "-" + i, BrokerGroup.body(t + "-" + i,
                    BODY_BYTES)));
                assertEquals(SendStatus.SEND_OK, r.getSendStatus());
                sentTo.merge(t, 1, Integer::sum);
            }
        }

        // Consume everything (without committing through the client), remembering how far each queue was read.
        Map<MessageQueue, Long> consumedTo = new HashMap<>();
        int consumed = 0;
        for (String t : topics) {
            List<MessageExt> got = group.drain(t, null, l -> l.size() >= sentTo.get(t), Duration.ofSeconds(60));
            assertEquals(sentTo.get(t).intValue(), BrokerGroup.keysOf(got).size(), "messages of " + t + " read back");
            consumed += got.size();
            for (MessageExt m : got) {
                consumedTo.merge(new MessageQueue(t, m.getBrokerName(), m.getQueueId()), m.getQueueOffset() + 1,
                    Math::max);
            }
        }

        // Delayed messages (level 1, 1 s) delivered by the old master before the kill: the new master must not deliver
        // them again (it starts its schedule from the delay offsets it holds).
        String delayTopic = "StateDelayTopic";
        atMaster("create " + delayTopic, m -> api.createTopic(m, "TBW102", topicConfig(delayTopic), RPC_TIMEOUT_MS));
        topics.add(delayTopic);
        int delayed = 5;
        for (int i = 0; i < delayed; i++) {
            Message m = new Message(delayTopic, "d", "delayed-" + i, BrokerGroup.body("delayed-" + i, BODY_BYTES));
            m.setDelayTimeLevel(1);
            assertEquals(SendStatus.SEND_OK, sendWithRetry(producer, m).getSendStatus());
        }
        List<MessageExt> delivered = group.drain(delayTopic, null, l -> BrokerGroup.keysOf(l).size() >= delayed,
            Duration.ofSeconds(60));
        assertEquals(delayed, BrokerGroup.keysOf(delivered).size(), "delayed messages delivered before the kill");

        // The last topic and group, then every offset, each acknowledged; then the leader dies at once.
        String lateTopic = "StateTopicLate";
        String lateGroup = BrokerGroup.clientGroup("state-late-group");
        atMaster("create " + lateTopic, m -> api.createTopic(m, "TBW102", topicConfig(lateTopic), RPC_TIMEOUT_MS));
        topics.add(lateTopic);
        atMaster("create " + lateGroup, m -> api.createSubscriptionGroup(m, groupConfig(lateGroup), RPC_TIMEOUT_MS));
        groups.add(lateGroup);
        for (Map.Entry<MessageQueue, Long> e : consumedTo.entrySet()) {
            UpdateConsumerOffsetRequestHeader h = new UpdateConsumerOffsetRequestHeader();
            h.setConsumerGroup(consumerGroup);
            h.setTopic(e.getKey().getTopic());
            h.setQueueId(e.getKey().getQueueId());
            h.setCommitOffset(e.getValue());
            h.setBrokerName(e.getKey().getBrokerName());
            atMaster("commit " + e.getKey(), m -> api.updateConsumerOffset(m, h, RPC_TIMEOUT_MS));
        }
        long acknowledged = System.nanoTime();
        // The broker that answered last (the leader then) dies.
        int leader = List.of(0, 1, 2).stream().filter(i -> group.brokerAddr(i).equals(lastMaster)).findFirst()
            .orElseThrow();
        group.broker(leader).kill();
        long killMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - acknowledged);
        System.out.println("leader n" + leader + " killed " + killMs + " ms after the last acknowledgement");
        assertTrue(killMs <= 200, "the kill came " + killMs + " ms after the acknowledgements, not within 200 ms");

        Set<Integer> alive = new HashSet<>(Set.of(0, 1, 2));
        alive.remove(leader);
        int newLeader = group.awaitRoles(alive, ROLE_WAIT);
        assertNotEquals(leader, newLeader);
        String newMaster = group.brokerAddr(newLeader);

        // What the new master holds.
        Set<String> topicsThere = api.getAllTopicConfig(newMaster, RPC_TIMEOUT_MS).getTopicConfigTable().keySet();
        // The delay topic was created early; it counts among the topics.
        Set<String> groupsThere = api.getAllSubscriptionGroup(newMaster, RPC_TIMEOUT_MS).getSubscriptionGroupTable()
            .keySet();
        int topicsFound = (int) topics.stream().filter(topicsThere::contains).count();
        int groupsFound = (int) groups.stream().filter(groupsThere::contains).count();
        int offsetsFound = 0;
        List<String> wrongOffsets = new ArrayList<>();
        for (Map.Entry<MessageQueue, Long> e : consumedTo.entrySet()) {
            long there = queryOffset(api, newMaster, consumerGroup, e.getKey());
            if (there == e.getValue()) {
                offsetsFound++;
            } else {
                wrongOffsets.add(e.getKey().getTopic() + "/" + e.getKey().getQueueId() + " committed " + e.getValue()
                    + " found " + there);
            }
        }

        // The surviving follower does not answer offsets (what it applied may be older than what was acknowledged): a
        // consumer that finds no master in its route leaves the queue for its next rebalance instead.
        int follower = alive.stream().filter(i -> i != newLeader).findFirst().orElseThrow();
        MessageQueue anyQueue = consumedTo.keySet().iterator().next();
        MQBrokerException refused = assertThrows(MQBrokerException.class,
            () -> api.queryConsumerOffset(group.brokerAddr(follower), queryHeader(consumerGroup, anyQueue),
                RPC_TIMEOUT_MS));
        System.out.println("offset query at the follower n" + follower + ": " + refused.getErrorMessage());
        assertEquals(ResponseCode.SYSTEM_ERROR, refused.getResponseCode(), refused.getErrorMessage());

        // A send addressed to the follower (a client whose route still lists it as master) is forwarded to the master
        // (SendForwardGuard) and stored once; before, the follower refused it unread (SYSTEM_BUSY).
        String forwardTopic = "StateForwardTopic";
        atMaster("create " + forwardTopic, m -> api.createTopic(m, "TBW102", topicConfig(forwardTopic), RPC_TIMEOUT_MS));
        String forwardKey = "sent-to-follower";
        Message viaFollower = new Message(forwardTopic, "s", forwardKey, BrokerGroup.body(forwardKey, BODY_BYTES));
        SendResult forwarded = api.sendMessage(group.brokerAddr(follower), BrokerGroup.BROKER_NAME, viaFollower,
            sendHeader(producer, viaFollower), RPC_TIMEOUT_MS, CommunicationMode.SYNC, null,
            producer.getDefaultMQProducerImpl());
        List<MessageExt> stored = group.drain(forwardTopic, null, l -> BrokerGroup.keysOf(l).contains(forwardKey),
            Duration.ofSeconds(30));
        System.out.println("send addressed to the follower n" + follower + ": " + forwarded.getSendStatus() + " (queue "
            + forwarded.getMessageQueue().getQueueId() + ", offset " + forwarded.getQueueOffset() + "), stored "
            + stored.size() + " time(s)");
        assertEquals(SendStatus.SEND_OK, forwarded.getSendStatus(), "a send to the follower is forwarded to the master");
        assertEquals(1, stored.size(), "the forwarded message is stored once");

        // A consumer of the group resumes on the new master: whatever it gets was consumed before.
        int redelivered = resume(consumerGroup, topics.subList(0, 2), consumed);
        // By now the new master's schedule service has run for seconds: a delayed message it delivered again would be
        // in the topic twice.
        List<MessageExt> delayedAfter = group.drain(delayTopic, null, l -> BrokerGroup.keysOf(l).size() >= delayed,
            Duration.ofSeconds(30));
        int twice = delayedAfter.size() - BrokerGroup.keysOf(delayedAfter).size();
        System.out.println("delayed after failover: delivered " + BrokerGroup.keysOf(delayedAfter).size() + "/" + delayed
            + ", twice " + twice);

        System.out.println("broker state after failover: topics " + topicsFound + "/" + topics.size() + ", groups "
            + groupsFound + "/" + groups.size() + ", offsets " + offsetsFound + "/" + consumedTo.size()
            + ", redelivered " + redelivered);
        assertEquals(topics.size(), topicsFound, "topics on the new master: " + topicsThere);
        assertEquals(groups.size(), groupsFound, "groups on the new master: " + groupsThere);
        assertEquals(List.of(), wrongOffsets, "committed offsets on the new master");
        // Every offset was committed and acknowledged after its messages were consumed: nothing may come again.
        assertEquals(0, redelivered, "messages delivered again to the group on the new master");
        assertEquals(delayed, BrokerGroup.keysOf(delayedAfter).size(), "delayed messages after the failover");
        assertEquals(0, twice, "delayed messages the new master delivered again");
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

    /** Sends until SEND_OK; the route of a topic just made may take a moment to reach the nameserver. */
    private static SendResult sendWithRetry(DefaultMQProducer producer, Message m) {
        SendResult[] r = new SendResult[1];
        // The first try at once: without a poll delay Awaitility waits one poll interval first (200 ms a message).
        await("send to " + m.getTopic()).atMost(Duration.ofSeconds(30)).pollDelay(Duration.ZERO)
            .pollInterval(Duration.ofMillis(200)).ignoreExceptions().until(() -> {
                r[0] = producer.send(m);
                return r[0].getSendStatus() == SendStatus.SEND_OK;
            });
        return r[0];
    }

    /** The request header the producer would send with {@code m} to queue 0 of the group. */
    private static SendMessageRequestHeader sendHeader(DefaultMQProducer producer, Message m) {
        SendMessageRequestHeader h = new SendMessageRequestHeader();
        h.setProducerGroup(producer.getProducerGroup());
        h.setTopic(m.getTopic());
        h.setDefaultTopic("TBW102");
        h.setDefaultTopicQueueNums(4);
        h.setQueueId(0);
        h.setSysFlag(0);
        h.setBornTimestamp(System.currentTimeMillis());
        h.setFlag(m.getFlag());
        h.setProperties(MessageDecoder.messageProperties2String(m.getProperties()));
        h.setReconsumeTimes(0);
        h.setBatch(false);
        h.setBname(BrokerGroup.BROKER_NAME);
        return h;
    }

    /** The group's offset of a queue on a broker, or -1 when it has none. */
    private static long queryOffset(MQClientAPIImpl api, String addr, String consumerGroup, MessageQueue mq)
        throws Exception {
        try {
            return api.queryConsumerOffset(addr, queryHeader(consumerGroup, mq), RPC_TIMEOUT_MS);
        } catch (MQBrokerException e) {
            return -1;
        }
    }

    private static QueryConsumerOffsetRequestHeader queryHeader(String consumerGroup, MessageQueue mq) {
        QueryConsumerOffsetRequestHeader h = new QueryConsumerOffsetRequestHeader();
        h.setConsumerGroup(consumerGroup);
        h.setTopic(mq.getTopic());
        h.setQueueId(mq.getQueueId());
        h.setBrokerName(mq.getBrokerName());
        h.setSetZeroIfNotFound(false);
        return h;
    }

    /**
     * Consumes {@code topics} with {@code consumerGroup} from the offsets the broker holds (from the first message when
     * it holds none) until a poll comes back empty; returns how many messages came.
     */
    private int resume(String consumerGroup, List<String> topics, int consumedBefore) throws MQClientException {
        DefaultLitePullConsumer c = new DefaultLitePullConsumer(consumerGroup);
        c.setNamesrvAddr(group.namesrvAddr());
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.setAutoCommit(false);
        c.setPollNameServerInterval(1000);
        c.start();
        try {
            List<MessageQueue> mqs = new ArrayList<>();
            for (String t : topics) {
                List<java.util.Collection<MessageQueue>> found = new ArrayList<>();
                await("the route of " + t).atMost(Duration.ofSeconds(30)).ignoreExceptions()
                    .until(() -> found.add(c.fetchMessageQueues(t)));
                mqs.addAll(found.get(0));
            }
            c.assign(mqs);
            int got = 0;
            // Long enough for every queue's offset to be fetched and a pull to come back; then until quiet.
            long quietUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (System.nanoTime() < quietUntil && got <= consumedBefore) {
                int n = c.poll(500).size();
                got += n;
                if (n > 0) {
                    quietUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
                }
            }
            return got;
        } finally {
            c.shutdown();
        }
    }
}
