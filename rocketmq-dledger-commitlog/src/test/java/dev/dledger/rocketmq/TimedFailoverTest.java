package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Timed messages due across a leader kill (issue 15): a real nameserver, three brokers on the Raft log as child JVMs,
 * RocketMQ's own client. 1,000 timer-wheel messages (deliver time now + 5..15 s) and 1,000 delay-level messages
 * (levels 2-4: 5 s, 10 s, 30 s) are sent; 1 s after the last send, while the old master is delivering the first of
 * them and the last are pending, it is killed with SIGKILL. The new master must deliver every message once, none before its time.
 *
 * <p>"Before its time" is judged by the broker's clock (all processes share this host's): a delivered message's store
 * time against its due time, the deliver time the client set (timer) or its born time plus the level's delay (delay
 * levels, so the check is lenient by the send's latency), less the broker's timer precision of 1 s (the wheel's
 * slots are 1 s wide, {@code timerPrecisionMs}; a message is delivered in its slot's second).
 */
class TimedFailoverTest {

    private static final int TIMER_MESSAGES = 1000;
    private static final int DELAY_MESSAGES = 1000;
    private static final int BODY_BYTES = 128;
    /** The broker's default {@code messageDelayLevel}: level i is DELAY_MS[i - 1]. */
    private static final long[] DELAY_MS = {1000, 5000, 10_000, 30_000};
    private static final long PRECISION_MS = 1000;
    private static final long KILL_AFTER_LAST_SEND_MS = 1000;
    private static final long RPC_TIMEOUT_MS = 5000;
    private static final Duration ROLE_WAIT = Duration.ofSeconds(180);

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
    void timerAndDelayMessagesDueAcrossALeaderKillAreDeliveredOnceAndNotEarly() throws Throwable {
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
        DefaultMQProducer producer = group.producer("p-timed");
        MQClientAPIImpl api = producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl();
        String topic = "TimedTopic";
        TopicConfig config = new TopicConfig(topic, 4, 4);
        config.setPerm(6);
        await("create " + topic).atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
            .ignoreExceptions().until(() -> {
                api.createTopic(group.brokerAddrs().get(0L), "TBW102", config, RPC_TIMEOUT_MS);
                return true;
            });
        // A first plain message, so the route is known and the first timed send is not late.
        sendWithRetry(producer, new Message(topic, "warm", "warm", BrokerGroup.body("warm", BODY_BYTES)));

        // Due time (ms, this host's clock) of every timer message, set just before its send; the delay of every
        // delay-level message (due at its born time plus the delay).
        Map<String, Long> timerDue = new ConcurrentHashMap<>();
        Map<String, Long> delayOf = new HashMap<>();
        List<Message> messages = new ArrayList<>();
        for (int i = 0; i < Math.max(TIMER_MESSAGES, DELAY_MESSAGES); i++) {
            if (i < TIMER_MESSAGES) {
                String key = "timer-" + i;
                messages.add(new Message(topic, "t", key, BrokerGroup.body(key, BODY_BYTES)));
            }
            if (i < DELAY_MESSAGES) {
                String key = "delay-" + i;
                int level = 2 + i % 3;
                Message m = new Message(topic, "d", key, BrokerGroup.body(key, BODY_BYTES));
                m.setDelayTimeLevel(level);
                messages.add(m);
                delayOf.put(key, DELAY_MS[level - 1]);
            }
        }
        // Sixteen senders: one at a time, a Raft round each, takes longer than the shortest delay on a busy host.
        long start = System.currentTimeMillis();
        ExecutorService senders = Executors.newFixedThreadPool(16);
        try {
            List<Future<SendResult>> sent = new ArrayList<>();
            for (Message m : messages) {
                sent.add(senders.submit(() -> {
                    if (m.getKeys().startsWith("timer-")) {
                        // Due 5 to 15 s after its send, spread by its number.
                        int i = Integer.parseInt(m.getKeys().substring("timer-".length()));
                        long due = System.currentTimeMillis() + 5000 + (10_000L * i) / TIMER_MESSAGES;
                        m.setDeliverTimeMs(due);
                        timerDue.put(m.getKeys(), due);
                    }
                    return sendWithRetry(producer, m);
                }));
            }
            for (Future<SendResult> f : sent) {
                f.get(120, TimeUnit.SECONDS);
            }
        } finally {
            senders.shutdownNow();
        }
        long sentMs = System.currentTimeMillis() - start;
        System.out.println("sent " + TIMER_MESSAGES + " timer and " + DELAY_MESSAGES + " delay-level messages in "
            + sentMs + " ms");

        // The leader dies 1 s after the last send (7 s after the first at the earliest): the first sends are due
        // (delivered or being delivered), the last ones pending (each is due 5 s or more after its send).
        await("the kill time").atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(50))
            .until(() -> System.currentTimeMillis() - start >= Math.max(sentMs + KILL_AFTER_LAST_SEND_MS, 7000));
        // The status request may go unanswered for a moment on a busy host: ask again until one node says it leads.
        int[] found = {-1};
        await("the leader to kill").atMost(Duration.ofSeconds(30)).pollDelay(Duration.ZERO)
            .pollInterval(Duration.ofMillis(100)).until(() -> {
                for (int i = 0; i < BrokerGroup.SIZE; i++) {
                    if ("LEADER".equals(group.raftRole(i))) {
                        found[0] = i;
                        return true;
                    }
                }
                return false;
            });
        int leader = found[0];
        group.broker(leader).kill();
        long killedAt = System.currentTimeMillis() - start;
        long dueBeforeKill = timerDue.values().stream().filter(d -> d - start < killedAt).count();
        System.out.println("leader n" + leader + " killed " + killedAt + " ms after the first timed send; "
            + dueBeforeKill + " timer messages were due by then");
        assertTrue(dueBeforeKill > 0 && dueBeforeKill < TIMER_MESSAGES, "the kill (" + killedAt + " ms, sends took "
            + sentMs + " ms) did not come while timed messages were due and pending");
        Set<Integer> alive = new HashSet<>(Set.of(0, 1, 2));
        alive.remove(leader);
        int newLeader = group.awaitRoles(alive, ROLE_WAIT);
        assertNotEquals(leader, newLeader);
        int newMaster = newLeader;

        // Everything is due 30 s after the last send at the latest; read the topic from its start after that.
        int expected = TIMER_MESSAGES + DELAY_MESSAGES;
        await("the last due time").atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(200))
            .until(() -> System.currentTimeMillis() - start >= sentMs + DELAY_MS[3] + 2000);
        List<MessageExt> got = group.drain(topic, null, l -> timedKeys(l).size() >= expected,
            Duration.ofSeconds(60));
        Map<String, Integer> times = new HashMap<>();
        List<String> early = new ArrayList<>();
        for (MessageExt m : got) {
            String key = m.getKeys();
            if ("warm".equals(key)) {
                continue;
            }
            times.merge(key, 1, Integer::sum);
            Long due = timerDue.get(key);
            if (due == null && delayOf.containsKey(key)) {
                due = m.getBornTimestamp() + delayOf.get(key);
            }
            if (due != null && m.getStoreTimestamp() < due - PRECISION_MS) {
                early.add(key + " stored " + m.getStoreTimestamp() + " due " + due);
            }
        }
        int delivered = (int) times.keySet().stream().filter(k -> timerDue.containsKey(k) || delayOf.containsKey(k))
            .count();
        int twice = (int) times.values().stream().filter(n -> n > 1).count();
        System.out.println("timed after failover: delivered " + delivered + "/" + expected + ", early " + early.size()
            + ", twice " + twice);
        System.out.println("the new master n" + newMaster + " answered " + logLines(newMaster, "in the log already")
            + " repeated deliveries from the log and refused " + logLines(newMaster, "is being delivered now")
            + " second puts of a delivery being put");
        List<String> twiceKeys = times.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey)
            .sorted().limit(20).toList();
        // For a failure: when (ms after the kill) and where each copy of the first repeated messages was stored.
        long killedAtMs = start + killedAt;
        for (String k : twiceKeys.stream().limit(5).toList()) {
            StringBuilder copies = new StringBuilder();
            for (MessageExt m : got) {
                if (k.equals(m.getKeys())) {
                    copies.append(" [stored ").append(m.getStoreTimestamp() - killedAtMs).append(" ms after the kill at ")
                        .append(m.getCommitLogOffset()).append(", queue ").append(m.getQueueId()).append(" offset ")
                        .append(m.getQueueOffset()).append(']');
                }
            }
            System.out.println("twice: " + k + copies);
        }
        assertEquals(List.of(), early.stream().limit(20).toList(), "delivered before their time");
        assertEquals(List.of(), twiceKeys, "delivered more than once (first 20)");
        assertEquals(expected, delivered, "timed messages delivered");
    }

    /** How many lines of broker {@code index}'s logs contain {@code text}. */
    private long logLines(int index, String text) throws IOException {
        long n = 0;
        List<Path> files;
        try (Stream<Path> all = Files.walk(group.brokerDir(index))) {
            // The broker's own logs and its console; not the store's files.
            files = all.filter(f -> Files.isRegularFile(f) && (f.getFileName().toString().equals("out.log")
                || f.toString().contains("rocketmqlogs") && f.toString().endsWith(".log"))).toList();
        }
        for (Path f : files) {
            try (Stream<String> lines = Files.lines(f, StandardCharsets.ISO_8859_1)) {
                n += lines.filter(l -> l.contains(text)).count();
            }
        }
        return n;
    }

    private static Set<String> timedKeys(List<MessageExt> messages) {
        Set<String> keys = BrokerGroup.keysOf(messages);
        keys.remove("warm");
        return keys;
    }

    /** Sends until SEND_OK. */
    private static SendResult sendWithRetry(DefaultMQProducer producer, Message m) {
        SendResult[] r = new SendResult[1];
        await("send to " + m.getTopic()).atMost(Duration.ofSeconds(60)).pollDelay(Duration.ZERO)
            .pollInterval(Duration.ofMillis(200)).ignoreExceptions().until(() -> {
                r[0] = producer.send(m);
                return r[0].getSendStatus() == SendStatus.SEND_OK;
            });
        assertEquals(SendStatus.SEND_OK, r[0].getSendStatus());
        return r[0];
    }
}
