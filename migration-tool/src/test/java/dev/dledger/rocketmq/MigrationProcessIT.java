package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.alibaba.fastjson2.JSON;
import com.alibaba.fastjson2.JSONObject;
import dev.dledger.migration.MigrateCommand;
import dev.dledger.raft.client.RaftClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.rocketmq.client.QueryResult;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
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
import org.apache.rocketmq.common.topic.TopicValidator;
import org.apache.rocketmq.remoting.protocol.admin.ConsumeStats;
import org.apache.rocketmq.remoting.protocol.admin.OffsetWrapper;
import org.apache.rocketmq.remoting.protocol.route.BrokerData;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * The migration of issue 7, end to end, every part a real process: a stock RocketMQ 5.5 master/slave pair
 * ({@code BrokerStartup}, ASYNC_MASTER brokerId 0 and SLAVE brokerId 1 with HA between them) and a nameserver; RocketMQ's
 * producer sends {@value #N} messages to three topics (seven queues, tags, keys) and one delayed message; a consumer
 * group consumes the first half of every queue and commits its offsets to the broker; the pair is stopped with SIGTERM.
 * Then {@code dledger-migrate} runs as a command (its own JVM, exit codes and output checked): {@code check},
 * {@code convert} in both modes, {@code verify}. Each result is served by a three-broker Raft group
 * ({@link RaftBrokerStartup}), one group after the other on the same stopped source: the consumer group resumes with
 * exactly the other half in order per queue (plus the delayed message), old messages are found by message id and by
 * key, and new messages go through the Raft leader (registered as brokerId 0) onto all three brokers.
 */
class MigrationProcessIT {

    private static final String CLUSTER = "DefaultCluster";
    private static final String BROKER_NAME = "broker-a";
    private static final String RAFT_SECRET = "migration-test-group-secret";
    private static final String RAFT_ADMIN_TOKEN = "migration-admin-token";
    private static final String GROUP = "cg-migration";
    private static final int N = 3000;
    private static final int NEW_MESSAGES = 70;
    private static final int BODY_BYTES = 600;
    private static final int FILE_SIZE = 1 << 20;
    private static final int CQ_FILE_SIZE = 20 * 20_000;
    private static final int INDEX_SLOTS = 5000;
    private static final int INDEX_ITEMS = 20_000;
    /** 30 s: longer than the stock broker takes to stop, so the message is still pending in the stopped source. */
    private static final int DELAY_LEVEL = 4;
    private static final int LOOKUPS = 25;
    private static final Map<String, Integer> TOPICS = new LinkedHashMap<>();
    private static final Duration WAIT = Duration.ofSeconds(90);
    private static final AtomicInteger CLIENTS = new AtomicInteger();

    static {
        TOPICS.put("Orders", 4);
        TOPICS.put("Payments", 2);
        TOPICS.put("Audit", 1);
    }

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private final Set<Integer> taken = new HashSet<>();
    private final List<ChildJvm> processes = new ArrayList<>();
    private final List<Runnable> shutdowns = new ArrayList<>();
    /** What the producer was told, per "topic/queueId", by queue offset. */
    private final Map<String, TreeMap<Long, Sent>> sent = new TreeMap<>();
    private String namesrvAddr;
    /** The max offset of every queue the last group served when it stopped, per "topic/queueId". */
    private Map<String, Long> servedQueues;
    /** The keys of the messages sent to the last group, per "topic/queueId", by queue offset. */
    private Map<String, TreeMap<Long, String>> servedFresh;
    private DefaultMQAdminExt routeReader;

    /** One acknowledged message. */
    private record Sent(String topic, int queueId, long queueOffset, String key, String msgId, String offsetMsgId) {
    }

    /** A finished command: exit code, standard output, standard error. */
    private record Run(int code, String out, String err) {
    }

    /** A broker process and its address. */
    private record Broker(String id, ChildJvm jvm, String addr, InetSocketAddress raft) {
    }

    @AfterEach
    void stopAll() throws InterruptedException {
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

    @Test
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void stockMasterSlavePairMigratesToRaftGroupsInBothModes() throws Throwable {
        try {
            scenario();
        } catch (Throwable t) {
            printOutputs();
            throw t;
        }
    }

    private void scenario() throws Exception {
        long began = System.nanoTime();
        namesrvAddr = "127.0.0.1:" + startNamesrv();

        // 1. The stock master/slave pair: N messages, a consumer group takes the first half, a delayed message.
        Broker master = stockBroker("master", 0, "ASYNC_MASTER");
        Broker slave = stockBroker("slave", 1, "SLAVE");
        DefaultMQAdminExt admin = admin();
        awaitRoute("the stock pair", Map.of(0L, master.addr(), 1L, slave.addr()));
        // The slave replicates from the first byte on: it is connected before anything is written. It learns the
        // master's HA address from a registration (stock 5.5.1 drops haMasterAddress from broker.conf).
        await("the slave's HA connection to the master").atMost(WAIT).ignoreExceptions()
            .until(() -> admin.getBrokerHAStatus(master.addr()).getHaConnectionInfo().size() == 1);
        System.out.println("stock pair up after " + sinceMs(began) + " ms");
        for (Map.Entry<String, Integer> t : TOPICS.entrySet()) {
            admin.createAndUpdateTopicConfig(master.addr(), new TopicConfig(t.getKey(), t.getValue(), t.getValue()));
        }
        DefaultMQProducer producer = producer();
        produce(producer);
        System.out.println(N + " messages produced after " + sinceMs(began) + " ms");
        awaitQueues("the stock slave replicated every message", slave.addr(), producer, counts());
        Map<String, Long> half = consumeFirstHalf();
        System.out.println("first half consumed after " + sinceMs(began) + " ms");
        long consumedBefore = half.values().stream().mapToLong(Long::longValue).sum();
        Message d = new Message("Orders", "TagD", "delayed-1", body("delayed-1"));
        d.setDelayTimeLevel(DELAY_LEVEL);
        SendResult delayed = producer.send(d);
        assertEquals(SendStatus.SEND_OK, delayed.getSendStatus());
        int delayedQueue = delayed.getMessageQueue().getQueueId();
        // The delayed message waits in the schedule topic's queue of its level; the slave has it too.
        Map<String, Long> all = counts();
        all.put(TopicValidator.RMQ_SYS_SCHEDULE_TOPIC + "/" + (DELAY_LEVEL - 1), 1L);
        awaitQueues("the stock slave replicated the delayed message", slave.addr(), producer, all);
        terminate(List.of(master, slave));
        long stoppedAt = System.currentTimeMillis();
        System.out.printf("stock pair: %d messages produced, %d consumed by %s, stopped after %d ms%n", N,
            consumedBefore, GROUP, sinceMs(began));

        Path source = tmp.resolve("master").resolve("store");
        Path slaveStore = tmp.resolve("slave").resolve("store");
        // SIGTERM flushed the committed offsets: consumerOffset.json holds exactly the first halves.
        JSONObject offsets = JSON.parseObject(Files.readString(source.resolve("config").resolve("consumerOffset.json")))
            .getJSONObject("offsetTable");
        for (Map.Entry<String, Long> h : half.entrySet()) {
            String[] tq = h.getKey().split("/");
            // The stock broker writes the queue ids as bare numbers.
            Map<?, ?> table = offsets.getJSONObject(tq[0] + "@" + GROUP);
            Object offset = table.entrySet().stream().filter(e -> String.valueOf(e.getKey()).equals(tq[1]))
                .map(Map.Entry::getValue).findFirst().orElse(null);
            assertEquals(h.getValue(), offset == null ? null : ((Number) offset).longValue(),
                "consumerOffset.json of the stopped master, " + h.getKey());
        }
        long inQueue = queueUnits(source, "Orders", delayedQueue);
        boolean delayedPending = inQueue == sent.get("Orders/" + delayedQueue).size();
        Map<String, String> sourceDigest = digest(source);

        // 2. check the stopped pair.
        Run check = cli("check", "--master", source.toString(), "--slave", slaveStore.toString());
        assertEquals(MigrateCommand.EXIT_OK, check.code(), check.err());
        assertTrue(check.out().contains("safe to migrate"), check.out());
        assertTrue(check.out().contains("slave is a prefix of the master") && check.out().contains("lags 0 bytes"),
            check.out());
        assertEquals(2, check.out().lines().filter(l -> l.contains("shut down cleanly: yes")).count(), check.out());
        assertTrue(check.out().contains("ConsumeQueues: ") && !check.out().contains("disagree"), check.out());
        long sourceMessages = N + 1 + (delayedPending ? 0 : 1);
        assertTrue(check.out().contains("messages: " + sourceMessages + " "), "N + the delayed message: " + check.out());

        // 3. Both modes, one Raft group after the other, on the same stopped source.
        Sent firstOld = sent.get("Orders/0").firstEntry().getValue();
        for (String mode : List.of("bridge", "rewrite")) {
            long t0 = System.nanoTime();
            Path base = tmp.resolve(mode);
            Map<String, InetSocketAddress> raft = new LinkedHashMap<>();
            for (int i = 0; i < 3; i++) {
                raft.put("n" + i, new InetSocketAddress("127.0.0.1", LoopbackPorts.freePort(taken)));
            }
            String peers = peers(raft);
            double rate = -1;
            long bytes = 0;
            // Each node's store is converted on its own (as on three machines), here all at once.
            List<String[]> converts = new ArrayList<>();
            List<String[]> verifies = new ArrayList<>();
            for (String id : raft.keySet()) {
                Path to = base.resolve(id).resolve("store");
                List<String> args = new ArrayList<>(List.of("convert", "--from", source.toString(), "--to",
                    to.toString(), "--group", BROKER_NAME, "--peers", peers, "--self-id", id, "--mode", mode));
                if (mode.equals("bridge")) {
                    args.add("--link");
                } else {
                    args.addAll(List.of("--seed", "n0", "--index-hash-slots", Integer.toString(INDEX_SLOTS),
                        "--index-max-items", Integer.toString(INDEX_ITEMS)));
                }
                converts.add(args.toArray(String[]::new));
                verifies.add(new String[] {"verify", "--from", source.toString(), "--to", to.toString()});
            }
            List<Run> converted = cliAll(converts);
            for (int i = 0; i < converted.size(); i++) {
                Run r = converted.get(i);
                assertEquals(MigrateCommand.EXIT_OK, r.code(), r.err());
                Matcher m = Pattern.compile("converted: (\\d+) messages, (\\d+) bytes in ([0-9.]+) s \\(([0-9.]+) MB/s\\)")
                    .matcher(r.out());
                assertTrue(m.find(), r.out());
                if (i == 0) {
                    assertEquals(sourceMessages, Long.parseLong(m.group(1)), r.out());
                    bytes = Long.parseLong(m.group(2));
                    rate = Double.parseDouble(m.group(4));
                }
            }
            for (Run v : cliAll(verifies)) {
                assertEquals(MigrateCommand.EXIT_OK, v.code(), v.err());
                assertTrue(v.out().contains("verified (" + mode + "): " + sourceMessages + " messages identical"),
                    v.out());
            }
            long migrationMs = sinceMs(t0);
            String summary = serve(mode, base, raft, half, delayedQueue, delayedPending, firstOld, stoppedAt);
            System.out.printf(Locale.ROOT, "MIGRATION %s: N=%d (%d topics, %d queues, 1 delayed); consumed before %d; "
                + "convert n0 %d bytes at %.1f MB/s (all 3 nodes with verify %d ms); %s%n", mode, N, TOPICS.size(),
                sent.size(), consumedBefore, bytes, rate, migrationMs, summary);
        }
        // 4. The way back: the rewrite group's store exported and served by a stock broker, nothing lost.
        System.out.println("EXPORT: " + exportBack(tmp.resolve("rewrite")));
        assertEquals(sourceDigest, digest(source), "the migration or a broker wrote into the source store");
        System.out.println("migration test done in " + sinceMs(began) + " ms");
    }

    // ----------------------------------------------------------------------------------------------------------------
    // The Raft group on a converted store

    /** Starts the group on the stores in {@code base}, checks everything, stops it; returns the counts. */
    private String serve(String mode, Path base, Map<String, InetSocketAddress> raft, Map<String, Long> half,
                         int delayedQueue, boolean delayedPending, Sent firstOld, long stoppedAt) throws Exception {
        long t0 = System.nanoTime();
        String peers = peers(raft);
        List<Broker> group = new ArrayList<>();
        for (String id : raft.keySet()) {
            group.add(raftBroker(base.resolve(id), id, peers, raft.get(id)));
        }
        Broker first = awaitRaftRoles(group);
        long upMs = sinceMs(t0);
        // In rewrite mode every node was converted from the source to the same log: any of them may lead first.
        System.out.println(mode + ": " + first.id() + " leads first, after " + upMs + " ms");
        DefaultMQAdminExt admin = admin();
        DefaultMQProducer producer = producer();
        MQClientAPIImpl api = producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl();

        // Every broker holds the whole history in its queues (in rewrite mode each node converted the source to the
        // same log); the delayed message, still in the schedule topic, is the source's last message.
        Map<String, Long> history = counts();
        history.remove("Orders/" + delayedQueue);
        history.put(TopicValidator.RMQ_SYS_SCHEDULE_TOPIC + "/" + (DELAY_LEVEL - 1), 1L);
        for (Broker b : group) {
            awaitQueues("broker " + b.id() + " holds the history", b.addr(), producer, history);
        }
        long historyMs = sinceMs(t0);
        // The group may have changed leader while it replicated the history on this busy machine.
        Broker leader = awaitRaftRoles(group);

        // The consumer group's offsets came along: the admin tool sees the first halves consumed.
        ConsumeStats stats = await("consume stats of " + GROUP).atMost(WAIT).ignoreExceptions()
            .until(() -> admin.examineConsumeStats(GROUP), s -> s.getOffsetTable().size() >= sent.size());
        for (Map.Entry<MessageQueue, OffsetWrapper> e : stats.getOffsetTable().entrySet()) {
            String q = e.getKey().getTopic() + "/" + e.getKey().getQueueId();
            if (half.containsKey(q)) {
                assertEquals(half.get(q), e.getValue().getConsumerOffset(), "committed offset of " + q);
            }
        }

        // Old messages by message id (as mqadmin queryMsgById looks them up) and by key.
        int byId = 0;
        int byKey = 0;
        int byOffset = 0;
        List<Sent> all = sent.values().stream().flatMap(m -> m.values().stream()).toList();
        for (int k = 0; k < LOOKUPS; k++) {
            Sent s = all.get(k * (all.size() - 1) / (LOOKUPS - 1));
            MessageExt m = admin.viewMessage(s.topic(), s.msgId());
            assertNotNull(m, "message id " + s.msgId());
            assertEquals(s.key(), primaryKey(m), "message id " + s.msgId());
            assertArrayEquals(body(s.key()), m.getBody());
            byId++;
            QueryResult q = admin.queryMessage(s.topic(), s.key(), 32, 0, Long.MAX_VALUE);
            assertEquals(1, q.getMessageList().size(), "key " + s.key() + " found " + q.getMessageList().size());
            assertArrayEquals(body(s.key()), q.getMessageList().get(0).getBody(), "key " + s.key());
            byKey++;
            if (mode.equals("bridge")) {
                // The offset in the old offset message id still addresses the message, now on the group's leader.
                long offset = MessageDecoder.decodeMessageId(s.offsetMsgId()).getOffset();
                MessageExt v = api.viewMessage(leader.addr(), s.topic(), offset, 5000);
                assertEquals(s.key(), primaryKey(v), "offset message id " + s.offsetMsgId());
                byOffset++;
            }
        }

        // The same consumer group resumes: exactly the other half, in order per queue, and the delayed message.
        Map<String, Long> expectedEnd = new TreeMap<>();
        for (Map.Entry<String, TreeMap<Long, Sent>> q : sent.entrySet()) {
            expectedEnd.put(q.getKey(), (long) q.getValue().size() + (q.getKey().equals("Orders/" + delayedQueue)
                ? 1 : 0));
        }
        DefaultLitePullConsumer consumer = consumer(null);
        Map<String, List<MessageExt>> resumed = new TreeMap<>();
        drain(consumer, resumed, half, expectedEnd);
        int resumedCount = 0;
        MessageExt delayedMsg = null;
        int delayedCopies = 0;
        Map<String, Long> end = new TreeMap<>();
        for (Map.Entry<String, List<MessageExt>> q : resumed.entrySet()) {
            List<MessageExt> got = q.getValue();
            TreeMap<Long, Sent> expected = sent.get(q.getKey());
            long from = half.get(q.getKey());
            for (int i = 0; i < got.size(); i++) {
                MessageExt m = got.get(i);
                assertEquals(from + i, m.getQueueOffset(), q.getKey() + ": resumed out of order or with a gap");
                Sent s = expected.get(m.getQueueOffset());
                if (s == null) {
                    assertEquals("delayed-1", primaryKey(m), q.getKey() + " offset " + m.getQueueOffset());
                    delayedMsg = delayedMsg == null ? m : delayedMsg;
                    delayedCopies++;
                } else {
                    assertEquals(s.key(), primaryKey(m), q.getKey() + " offset " + m.getQueueOffset());
                    resumedCount++;
                }
                assertArrayEquals(body(primaryKey(m)), m.getBody());
            }
            end.put(q.getKey(), from + got.size());
        }
        // A delayed message is delivered at least once: a leader change while it is due can deliver it twice, as in
        // stock RocketMQ (delay offsets reach the other brokers by the periodic metadata sync only).
        assertTrue(delayedCopies >= 1 && delayedCopies <= 2, "copies of the delayed message: " + delayedCopies);
        expectedEnd.merge("Orders/" + delayedQueue, delayedCopies - 1L, Long::sum);
        assertEquals(expectedEnd, end, "the queues' ends after resuming");
        assertEquals(N - half.values().stream().mapToLong(Long::longValue).sum(), resumedCount,
            "the consumer group gets exactly the other half");
        assertNotNull(delayedMsg, "the delayed message never arrived");
        // Stored when it was delivered: after the stop, the group's leader delivered it.
        String deliveredBy = delayedMsg.getStoreTimestamp() > stoppedAt ? "the raft leader" : "the stock master";
        if (delayedPending) {
            assertEquals("the raft leader", deliveredBy, "pending in the stopped source, so the group delivers it");
        }
        QueryResult dq = admin.queryMessage("Orders", "delayed-1", 32, 0, Long.MAX_VALUE);
        assertEquals(delayedCopies, dq.getMessageList().size(), "the delayed message by key");

        // New messages go through the Raft leader (brokerId 0), after the old ones in their queues.
        Map<String, TreeMap<Long, String>> fresh = new TreeMap<>();
        List<SendResult> freshResults = new ArrayList<>();
        String[] topics = TOPICS.keySet().toArray(String[]::new);
        for (int i = 0; i < NEW_MESSAGES; i++) {
            String key = mode + "-new-" + i;
            SendResult r = producer.send(new Message(topics[i % topics.length], "TagN", key, body(key)));
            assertEquals(SendStatus.SEND_OK, r.getSendStatus(), key);
            assertEquals(listenPort(leader.addr()), ((InetSocketAddress) MessageDecoder.decodeMessageId(
                r.getOffsetMsgId()).getAddress()).getPort(), "new message " + key + " stored by the leader");
            String q = r.getMessageQueue().getTopic() + "/" + r.getMessageQueue().getQueueId();
            fresh.computeIfAbsent(q, x -> new TreeMap<>()).put(r.getQueueOffset(), key);
            freshResults.add(r);
        }
        Map<String, Long> after = new TreeMap<>(expectedEnd);
        for (Map.Entry<String, TreeMap<Long, String>> q : fresh.entrySet()) {
            assertEquals(expectedEnd.get(q.getKey()), q.getValue().firstKey(), q.getKey() + ": queue offsets carry on");
            after.merge(q.getKey(), (long) q.getValue().size(), Long::sum);
        }
        Map<String, List<MessageExt>> newer = new TreeMap<>();
        drain(consumer, newer, expectedEnd, after);
        int freshCount = 0;
        for (Map.Entry<String, List<MessageExt>> q : newer.entrySet()) {
            List<String> keys = q.getValue().stream().map(MessageExt::getKeys).toList();
            assertEquals(new ArrayList<>(fresh.getOrDefault(q.getKey(), new TreeMap<>()).values()), keys, q.getKey());
            freshCount += keys.size();
        }
        assertEquals(NEW_MESSAGES, freshCount, "new messages consumed");

        // ... and onto every broker of the group: each has every queue complete and the messages' bytes.
        Map<String, Long> complete = after;
        long oldOffset = resumed.get("Orders/0").get(0).getCommitLogOffset();
        long newOffset = MessageDecoder.decodeMessageId(freshResults.get(0).getOffsetMsgId()).getOffset();
        for (Broker b : group) {
            awaitQueues("broker " + b.id() + " holds every queue", b.addr(), producer, complete);
            assertEquals(resumed.get("Orders/0").get(0).getKeys(), api.viewMessage(b.addr(), "Orders", oldOffset, 5000)
                .getKeys(), "an old message on " + b.id());
            assertEquals(freshResults.get(0).getMsgId(), api.viewMessage(b.addr(), topics[0], newOffset, 5000)
                .getMsgId(), "a new message on " + b.id());
        }
        assertEquals(firstOld.key(), primaryKey(admin.viewMessage(firstOld.topic(), firstOld.msgId())));

        consumer.shutdown();
        long checkedMs = sinceMs(t0);
        servedQueues = complete;
        servedFresh = fresh;
        terminate(group);
        return String.format(Locale.ROOT, "served %d ms, stopped %d ms; group up in %d ms, leader %s, history on 3/3 "
            + "brokers after %d ms, leader %s = brokerId 0; offsets carried over (%d queues); resumed %d (the other "
            + "half) + the delayed one (delivered by %s, %d time(s)); lookups by id %d/%d, by key %d/%d%s; %d new "
            + "messages through raft on 3/3 brokers, consumed %d", checkedMs, sinceMs(t0) - checkedMs, upMs, first.id(),
            historyMs, leader.id(), stats.getOffsetTable().size(), resumedCount, deliveredBy, delayedCopies, byId,
            LOOKUPS, byKey, LOOKUPS, mode.equals("bridge") ? ", by offset id " + byOffset + "/" + LOOKUPS : "",
            NEW_MESSAGES, freshCount);
    }

    /**
     * Exports the stopped group's store in {@code base} (node n0) with {@code dledger-migrate export}, starts a stock
     * broker (master/slave mode, brokerId 0) on it, and reads every queue from offset 0 with a new consumer group:
     * every message the group held, at its queue offset, with its bytes (the history, the delayed message, the new
     * ones). Returns a summary.
     */
    private String exportBack(Path base) throws Exception {
        long t0 = System.nanoTime();
        Path to = tmp.resolve("back").resolve("store");
        Run r = cli("export", "--from", base.resolve("n0").resolve("store").toString(), "--self-id", "n0", "--to",
            to.toString());
        assertEquals(MigrateCommand.EXIT_OK, r.code(), r.err());
        assertTrue(r.out().contains("export verified: "), r.out());
        long exportMs = sinceMs(t0);
        Broker back = stockBroker("back", 0, "ASYNC_MASTER");
        awaitRoute("the stock broker on the export", Map.of(0L, back.addr()));
        DefaultMQProducer producer = producer();
        awaitQueues("the stock broker serves every queue of the export", back.addr(), producer, servedQueues);
        DefaultLitePullConsumer c = new DefaultLitePullConsumer("cg-export-check");
        c.setInstanceName("migration-it-" + CLIENTS.incrementAndGet());
        c.setNamesrvAddr(namesrvAddr);
        c.setAutoCommit(false);
        c.setPullBatchSize(32);
        c.setPollNameServerInterval(1000);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        for (String topic : TOPICS.keySet()) {
            c.subscribe(topic, "*");
        }
        c.start();
        shutdowns.add(c::shutdown);
        Map<String, List<MessageExt>> got = new TreeMap<>();
        drain(c, got, Map.of(), servedQueues);
        long messages = 0;
        for (Map.Entry<String, Long> q : servedQueues.entrySet()) {
            List<MessageExt> list = got.getOrDefault(q.getKey(), List.of());
            assertEquals(q.getValue().longValue(), list.size(), q.getKey() + ": messages served by the stock broker");
            for (int i = 0; i < list.size(); i++) {
                MessageExt m = list.get(i);
                assertEquals(i, m.getQueueOffset(), q.getKey() + ": out of order or with a gap");
                Sent s = sent.getOrDefault(q.getKey(), new TreeMap<>()).get((long) i);
                String key = s != null ? s.key() : servedFresh.getOrDefault(q.getKey(), new TreeMap<>())
                    .getOrDefault((long) i, "delayed-1");
                assertEquals(key, primaryKey(m), q.getKey() + " offset " + i);
                assertArrayEquals(body(key), m.getBody(), q.getKey() + " offset " + i);
                messages++;
            }
        }
        c.shutdown();
        long servedMs = sinceMs(t0);
        terminate(List.of(back));
        return String.format(Locale.ROOT, "export of n0 in %d ms; a stock broker served all %d messages of %d "
            + "queues from offset 0, checked after %d ms", exportMs, messages, servedQueues.size(), servedMs);
    }

    /**
     * Polls {@code consumer} into {@code got} (per "topic/queueId") until every queue holds the messages from
     * {@code from} to {@code to}, then polls on until a poll comes back empty, so extra messages show.
     */
    private static void drain(DefaultLitePullConsumer consumer, Map<String, List<MessageExt>> got,
                              Map<String, Long> from, Map<String, Long> to) {
        long want = 0;
        for (Map.Entry<String, Long> e : to.entrySet()) {
            want += e.getValue() - from.getOrDefault(e.getKey(), 0L);
        }
        long deadline = System.nanoTime() + WAIT.toNanos();
        long have = 0;
        while (have < want && System.nanoTime() < deadline) {
            for (MessageExt m : consumer.poll(500)) {
                got.computeIfAbsent(m.getTopic() + "/" + m.getQueueId(), k -> new ArrayList<>()).add(m);
                have++;
            }
        }
        List<MessageExt> more;
        while (!(more = consumer.poll(1000)).isEmpty()) {
            for (MessageExt m : more) {
                got.computeIfAbsent(m.getTopic() + "/" + m.getQueueId(), k -> new ArrayList<>()).add(m);
            }
        }
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Producing and consuming on the stock pair

    private void produce(DefaultMQProducer producer) throws Exception {
        for (String topic : TOPICS.keySet()) {
            await("the route of " + topic).atMost(WAIT).ignoreExceptions()
                .until(() -> producer.fetchPublishMessageQueues(topic).size() == TOPICS.get(topic));
        }
        String[] topics = TOPICS.keySet().toArray(String[]::new);
        Map<String, TreeMap<Long, Sent>> acked = new ConcurrentHashMap<>();
        ExecutorService senders = Executors.newFixedThreadPool(4);
        List<Future<?>> jobs = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            int first = t;
            jobs.add(senders.submit(() -> {
                for (int i = first; i < N; i += 4) {
                    String topic = topics[i % topics.length];
                    String key = "k-" + i;
                    Message m = new Message(topic, i % 2 == 0 ? "TagA" : "TagB", "", body(key));
                    m.setKeys(List.of(key, "order-" + i));
                    SendResult r = producer.send(m);
                    assertEquals(SendStatus.SEND_OK, r.getSendStatus(), key);
                    Sent s = new Sent(topic, r.getMessageQueue().getQueueId(), r.getQueueOffset(), key, r.getMsgId(),
                        r.getOffsetMsgId());
                    TreeMap<Long, Sent> q = acked.computeIfAbsent(topic + "/" + s.queueId(), x -> new TreeMap<>());
                    synchronized (q) {
                        assertNull(q.put(s.queueOffset(), s), "queue offset given twice");
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : jobs) {
            f.get(180, TimeUnit.SECONDS);
        }
        senders.shutdown();
        sent.putAll(acked);
        int total = 0;
        for (Map.Entry<String, TreeMap<Long, Sent>> q : sent.entrySet()) {
            assertEquals(q.getValue().size() - 1, q.getValue().lastKey(), q.getKey() + ": queue offsets with a gap");
            total += q.getValue().size();
        }
        assertEquals(N, total);
        assertEquals(TOPICS.values().stream().mapToInt(Integer::intValue).sum(), sent.size(), "queues used");
    }

    private Map<String, Long> counts() {
        Map<String, Long> out = new TreeMap<>();
        sent.forEach((q, m) -> out.put(q, (long) m.size()));
        return out;
    }

    /** The consumer group takes the first half of every queue and commits that to the broker; returns the halves. */
    private Map<String, Long> consumeFirstHalf() throws Exception {
        Map<String, Long> half = new TreeMap<>();
        sent.forEach((q, m) -> half.put(q, (long) m.size() / 2));
        DefaultLitePullConsumer c = consumer(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        Map<String, Long> next = new HashMap<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!next.equals(half) && System.nanoTime() < deadline) {
            for (MessageExt m : c.poll(500)) {
                String q = m.getTopic() + "/" + m.getQueueId();
                long at = next.getOrDefault(q, 0L);
                if (m.getQueueOffset() == at && at < half.get(q)) {
                    assertEquals(sent.get(q).get(at).key(), primaryKey(m), q + " offset " + at);
                    assertArrayEquals(body(primaryKey(m)), m.getBody());
                    next.put(q, at + 1);
                }
            }
        }
        assertEquals(half, next, "the first half of every queue consumed");
        Map<MessageQueue, Long> commit = new HashMap<>();
        half.forEach((q, offset) -> {
            String[] tq = q.split("/");
            commit.put(new MessageQueue(tq[0], BROKER_NAME, Integer.parseInt(tq[1])), offset);
        });
        c.commitSync(commit, true);
        for (Map.Entry<MessageQueue, Long> e : commit.entrySet()) {
            assertEquals(e.getValue(), c.committed(e.getKey()), "offset committed to the broker for " + e.getKey());
        }
        c.shutdown();
        return half;
    }

    private DefaultMQProducer producer() throws Exception {
        DefaultMQProducer p = new DefaultMQProducer("p-migration-" + CLIENTS.incrementAndGet());
        p.setInstanceName("migration-it-" + CLIENTS.get());
        p.setNamesrvAddr(namesrvAddr);
        p.setPollNameServerInterval(1000);
        p.setSendMsgTimeout(5000);
        p.start();
        shutdowns.add(p::shutdown);
        return p;
    }

    private DefaultLitePullConsumer consumer(ConsumeFromWhere where) throws Exception {
        DefaultLitePullConsumer c = new DefaultLitePullConsumer(GROUP);
        c.setInstanceName("migration-it-" + CLIENTS.incrementAndGet());
        c.setNamesrvAddr(namesrvAddr);
        c.setAutoCommit(false);
        c.setPullBatchSize(32);
        c.setPollNameServerInterval(1000);
        if (where != null) {
            c.setConsumeFromWhere(where);
        }
        for (String topic : TOPICS.keySet()) {
            c.subscribe(topic, "*");
        }
        c.start();
        shutdowns.add(c::shutdown);
        return c;
    }

    private DefaultMQAdminExt admin() throws Exception {
        DefaultMQAdminExt a = new DefaultMQAdminExt("admin-migration-" + CLIENTS.incrementAndGet(), 5000);
        a.setInstanceName("migration-it-" + CLIENTS.get());
        a.setNamesrvAddr(namesrvAddr);
        a.start();
        shutdowns.add(a::shutdown);
        return a;
    }

    /** The first of a message's keys, the one its body is made from. */
    private static String primaryKey(MessageExt m) {
        return m.getKeys().split(" ")[0];
    }

    /** A body made from the key, so a body read back can be checked against its key. */
    private static byte[] body(String key) {
        byte[] unit = (key + "|").getBytes(StandardCharsets.UTF_8);
        byte[] b = new byte[BODY_BYTES];
        for (int i = 0; i < b.length; i++) {
            b[i] = unit[i % unit.length];
        }
        return b;
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Processes

    private int startNamesrv() throws Exception {
        int port = LoopbackPorts.freePort(taken);
        Path dir = tmp.resolve("namesrv");
        Files.createDirectories(dir);
        Path conf = dir.resolve("namesrv.conf");
        Files.writeString(conf, "listenPort=" + port + "\n");
        processes.add(new ChildJvm("namesrv", jvmArgs(dir), "org.apache.rocketmq.namesrv.NamesrvStartup",
            List.of("-c", conf.toString()), dir.resolve("out.log")).start());
        return port;
    }

    /** The settings every broker of the test shares: small files, so that little memory and disk are used. */
    private List<String> brokerConf(Path dir, int listenPort) {
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

    /** A stock broker ({@code BrokerStartup}) of the master/slave pair. */
    private Broker stockBroker(String name, int brokerId, String role) throws Exception {
        Path dir = tmp.resolve(name);
        Files.createDirectories(dir);
        int port = LoopbackPorts.brokerPort(taken);
        List<String> conf = brokerConf(dir, port);
        conf.add("brokerId=" + brokerId);
        conf.add("brokerRole=" + role);
        conf.add("haListenPort=" + (port + 1));
        // A slave that registered before its master learns the master's address at its next registration.
        conf.add("registerNameServerPeriod=10000");
        Path file = dir.resolve("broker.conf");
        Files.writeString(file, String.join("\n", conf) + "\n");
        ChildJvm jvm = new ChildJvm("stock " + name, jvmArgs(dir), "org.apache.rocketmq.broker.BrokerStartup",
            List.of("-c", file.toString()), dir.resolve("out.log")).start();
        processes.add(jvm);
        return new Broker(name, jvm, "127.0.0.1:" + port, null);
    }

    /** A broker of the Raft group through our launcher, on the converted store in {@code dir/store}. */
    private Broker raftBroker(Path dir, String id, String peers, InetSocketAddress raft) throws Exception {
        int port = LoopbackPorts.brokerPort(taken);
        List<String> conf = brokerConf(dir, port);
        conf.add("enableDLegerCommitLog=true");
        conf.add("dLegerGroup=" + BROKER_NAME);
        conf.add("dLegerPeers=" + peers);
        conf.add("dLegerSelfId=" + id);
        // Longer than the default 300 ms: on this shared 2-core machine the JVMs stall for that long at times.
        conf.add("raftElectionTimeoutMs=1000");
        // The status this test polls is an admin request: served only with the group secret and the admin token.
        conf.add("raftSecret=" + RAFT_SECRET);
        conf.add("raftAdminToken=" + RAFT_ADMIN_TOKEN);
        Path file = dir.resolve("broker.conf");
        Files.writeString(file, String.join("\n", conf) + "\n");
        ChildJvm jvm = new ChildJvm("raft " + dir.getParent().getFileName() + " " + id, jvmArgs(dir),
            RaftBrokerStartup.class.getName(), List.of("-c", file.toString()), dir.resolve("out.log")).start();
        processes.add(jvm);
        return new Broker(id, jvm, "127.0.0.1:" + port, raft);
    }

    private static List<String> jvmArgs(Path dir) {
        // C1 only: the servers start much faster on a small shared machine, and the test runs them for seconds.
        return List.of("-Xmx256m", "-Xms64m", "-XX:MaxDirectMemorySize=256m", "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1", "-Drocketmq.home.dir=" + dir, "-Duser.home=" + dir,
            "-Djava.net.preferIPv4Stack=true");
    }

    /** Stops the brokers together with SIGTERM; each must end as a JVM does on SIGTERM, after its shutdown hook. */
    private static void terminate(List<Broker> brokers) throws Exception {
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

    private static String peers(Map<String, InetSocketAddress> raft) {
        StringBuilder sb = new StringBuilder();
        raft.forEach((id, a) -> sb.append(sb.length() == 0 ? "" : ";").append(id).append("-127.0.0.1:")
            .append(a.getPort()));
        return sb.toString();
    }

    private static int listenPort(String addr) {
        return Integer.parseInt(addr.substring(addr.lastIndexOf(':') + 1));
    }

    /** Runs the commands at the same time, each in its own JVM; returns their results in order. */
    private List<Run> cliAll(List<String[]> commands) throws Exception {
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
    private Run cli(String... args) throws Exception {
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

    // ----------------------------------------------------------------------------------------------------------------
    // Waiting and looking

    /** Waits until the nameserver lists exactly {@code expected} (brokerId to address) for our broker name. */
    private void awaitRoute(String what, Map<Long, String> expected) {
        await(what + " registered").atMost(WAIT).pollInterval(Duration.ofMillis(200))
            .untilAsserted(() -> assertEquals(expected, route()));
    }

    /** The nameserver's brokerId to address table of our broker name (empty while it knows none). */
    private Map<Long, String> route() throws Exception {
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
    private Broker awaitRaftRoles(List<Broker> group) {
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
    private static void awaitQueues(String what, String addr, DefaultMQProducer client, Map<String, Long> counts) {
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

    /** The written units of a stock ConsumeQueue. */
    private static long queueUnits(Path store, String topic, int queueId) throws IOException {
        Path dir = store.resolve("consumequeue").resolve(topic).resolve(Integer.toString(queueId));
        long units = 0;
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.sorted().toList()) {
                ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(f));
                for (int pos = 0; pos + 20 <= b.limit() && b.getInt(pos + 8) > 0; pos += 20) {
                    units++;
                }
            }
        }
        return units;
    }

    /** SHA-256 of every file of a store's CommitLog, ConsumeQueues, index and config. */
    private static Map<String, String> digest(Path store) throws Exception {
        Map<String, String> out = new TreeMap<>();
        for (String sub : List.of("commitlog", "consumequeue", "index", "config")) {
            try (Stream<Path> s = Files.walk(store.resolve(sub))) {
                for (Path f : s.filter(Files::isRegularFile).toList()) {
                    MessageDigest md = MessageDigest.getInstance("SHA-256");
                    out.put(store.relativize(f).toString(), HexFormat.of().formatHex(md.digest(Files.readAllBytes(f))));
                }
            }
        }
        return out;
    }

    private static long sinceMs(long startNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
    }

    private void printOutputs() {
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
