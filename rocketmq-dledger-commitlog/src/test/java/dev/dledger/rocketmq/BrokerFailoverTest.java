package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.client.producer.TransactionSendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.protocol.body.ClusterInfo;
import org.apache.rocketmq.remoting.protocol.route.BrokerData;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * A broker group on the Raft commit log, end to end, with every part real and in its own process: a nameserver and
 * three brokers ({@link RaftBrokerStartup}) as child JVMs, RocketMQ's own producer and consumer in this JVM. It
 * checks that the Raft leader is the broker registered as master (brokerId 0) and the others are slaves with
 * brokerId = index + 1; that every acknowledged message is consumed with its body; that killing the leader (SIGKILL)
 * under load loses no acknowledged message, and how long sends fail; that the killed broker comes back as a slave;
 * and that delayed, transactional and ordered messages work after the failover.
 */
class BrokerFailoverTest {

    private static final String CLUSTER = "RaftCluster";
    private static final String BROKER_NAME = "broker-raft";
    private static final int BROKERS = 3;
    private static final int BODY_BYTES = 1024;
    private static final int FIRST_BATCH = 2000;
    private static final Duration ROLE_WAIT = Duration.ofSeconds(60);
    private static final Duration CONSUME_WAIT = Duration.ofSeconds(60);
    private static final AtomicInteger GROUPS = new AtomicInteger();

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private ChildJvm namesrv;
    private final List<ChildJvm> brokers = new ArrayList<>();
    private final List<Integer> listenPorts = new ArrayList<>();
    private final Map<String, InetSocketAddress> raftPeers = new LinkedHashMap<>();
    private final List<Runnable> shutdowns = new ArrayList<>();
    private String namesrvAddr;
    private DefaultMQProducer routeReader;

    @AfterEach
    void stopAll() throws InterruptedException {
        for (Runnable r : shutdowns) {
            try {
                r.run();
            } catch (RuntimeException e) {
                System.err.println("client shutdown: " + e);
            }
        }
        for (ChildJvm b : brokers) {
            b.kill();
        }
        if (namesrv != null) {
            namesrv.kill();
        }
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void leaderKillUnderLoadLosesNoAcknowledgedMessageAndTheGroupKeepsServing() throws Throwable {
        try {
            scenario();
        } catch (Throwable t) {
            printOutputs();
            throw t;
        }
    }

    private void scenario() throws Exception {
        long began = System.nanoTime();
        startCluster();
        int leader = awaitRoles(Set.of(0, 1, 2));
        System.out.println("broker group up after " + sinceMs(began) + " ms: raft leader n" + leader
            + " is brokerId 0 at " + brokerAddr(leader));

        // 1. Round trip on a healthy group.
        String topic = "RaftTopic";
        DefaultMQProducer producer = producer("p-main");
        Map<String, Boolean> acked = new ConcurrentHashMap<>();
        AtomicInteger sent = new AtomicInteger();
        ExecutorService senders = Executors.newFixedThreadPool(8);
        List<Future<?>> jobs = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            int first = t;
            jobs.add(senders.submit(() -> {
                for (int i = first; i < FIRST_BATCH; i += 8) {
                    String key = "a-" + i;
                    sent.incrementAndGet();
                    if (send(producer, topic, key)) {
                        acked.put(key, true);
                    }
                }
            }));
        }
        for (Future<?> f : jobs) {
            f.get(120, TimeUnit.SECONDS);
        }
        senders.shutdown();
        List<MessageExt> first = drain(topic, null, got -> keysOf(got).containsAll(acked.keySet()));
        Set<String> firstKeys = checkBodies(first);
        Set<String> firstLost = new HashSet<>(acked.keySet());
        firstLost.removeAll(firstKeys);
        System.out.println("broker round trip: sent " + sent + ", acked " + acked.size() + ", consumed "
            + firstKeys.size() + ", lost " + firstLost.size() + " (at " + sinceMs(began) + " ms)");
        assertTrue(acked.size() >= FIRST_BATCH * 0.95, "too few sends succeeded on a healthy group: " + acked.size());
        assertEquals(Set.of(), firstLost, "acknowledged messages not consumed");

        // 2. Kill the leader while a producer keeps sending.
        DefaultMQProducer failoverProducer = producer("p-failover");
        FailoverSender sender = new FailoverSender(failoverProducer, topic);
        Thread senderThread = new Thread(sender, "failover-sender");
        senderThread.start();
        await().atMost(Duration.ofSeconds(30)).until(() -> sender.acked.size() >= 200);
        long killedAt = System.nanoTime();
        sender.killedAt.set(killedAt);
        brokers.get(leader).kill();
        await("a send acknowledged after the leader was killed").atMost(Duration.ofSeconds(30))
            .until(() -> sender.firstOkAfterKill.get() != 0);
        long failoverMs = TimeUnit.NANOSECONDS.toMillis(sender.firstOkAfterKill.get() - killedAt);
        System.out.println("first SEND_OK " + failoverMs + " ms after the leader (n" + leader + ") was killed");
        int ackedAtFailover = sender.acked.size();
        await().atMost(Duration.ofSeconds(30)).until(() -> sender.acked.size() >= ackedAtFailover + 300);
        sender.stop.set(true);
        senderThread.join(30_000);
        assertTrue(!senderThread.isAlive(), "the failover sender did not stop");

        Set<Integer> alive = new HashSet<>(Set.of(0, 1, 2));
        alive.remove(leader);
        int newLeader = awaitRoles(alive);
        assertNotEquals(leader, newLeader);

        Set<String> allAcked = new HashSet<>(acked.keySet());
        allAcked.addAll(sender.acked);
        List<MessageExt> all = drain(topic, null, got -> keysOf(got).containsAll(allAcked));
        Set<String> consumed = checkBodies(all);
        Set<String> lost = new HashSet<>(allAcked);
        lost.removeAll(consumed);
        int duplicates = all.size() - consumed.size();
        int sentTotal = sent.get() + sender.sent.get();
        System.out.println("broker failover: sent " + sentTotal + ", acked " + allAcked.size() + ", consumed "
            + consumed.size() + ", lost " + lost.size() + ", duplicates " + duplicates + ", failover " + failoverMs
            + " ms (at " + sinceMs(began) + " ms)");
        assertEquals(Set.of(), lost, "acknowledged messages lost in the failover");
        assertTrue(failoverMs < 30_000, "sends failed for " + failoverMs + " ms after the leader was killed");

        // 3. The killed broker comes back as a slave.
        brokers.get(leader).start();
        int leaderAfterRestart = awaitRoles(Set.of(0, 1, 2));
        assertNotEquals(leader, leaderAfterRestart, "the restarted broker took the lead back");
        assertEquals(brokerAddr(leader), brokerAddrs().get((long) leader + 1),
            "the restarted broker is not registered as a slave with brokerId " + (leader + 1));
        System.out.println("n" + leader + " rejoined as brokerId " + (leader + 1) + " (at " + sinceMs(began) + " ms)");

        // 4. Delayed, transactional and ordered messages after the failover.
        checkDelayedMessage(producer);
        checkTransactionalMessage();
        checkOrderedMessages(producer);
        System.out.println("broker failover test done in " + sinceMs(began) + " ms");
    }

    private static long sinceMs(long startNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Message kinds

    private void checkDelayedMessage(DefaultMQProducer producer) throws Exception {
        String topic = "RaftDelayTopic";
        Message m = new Message(topic, "delayed", "d-1", body("d-1"));
        m.setDelayTimeLevel(1);
        SendResult r = producer.send(m);
        assertEquals(SendStatus.SEND_OK, r.getSendStatus());
        List<MessageExt> got = drain(topic, null, l -> keysOf(l).contains("d-1"));
        MessageExt d = got.stream().filter(x -> "d-1".equals(x.getKeys())).findFirst().orElse(null);
        assertNotNull(d, "the delayed message never arrived");
        assertArrayEquals(body("d-1"), d.getBody());
        long delayMs = d.getStoreTimestamp() - d.getBornTimestamp();
        System.out.println("delayed message (level 1) delivered " + delayMs + " ms after it was sent");
        assertTrue(delayMs >= 900, "a level-1 delayed message was delivered after " + delayMs + " ms");
    }

    private void checkTransactionalMessage() throws Exception {
        String topic = "RaftTxTopic";
        TransactionMQProducer tx = new TransactionMQProducer("p-tx-" + GROUPS.incrementAndGet());
        tx.setNamesrvAddr(namesrvAddr);
        tx.setPollNameServerInterval(1000);
        tx.setTransactionListener(new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                return LocalTransactionState.COMMIT_MESSAGE;
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                return LocalTransactionState.COMMIT_MESSAGE;
            }
        });
        tx.start();
        shutdowns.add(tx::shutdown);
        TransactionSendResult r = tx.sendMessageInTransaction(new Message(topic, "tx", "t-1", body("t-1")), null);
        assertEquals(SendStatus.SEND_OK, r.getSendStatus());
        assertEquals(LocalTransactionState.COMMIT_MESSAGE, r.getLocalTransactionState());
        List<MessageExt> got = drain(topic, null, l -> keysOf(l).contains("t-1"));
        MessageExt t = got.stream().filter(x -> "t-1".equals(x.getKeys())).findFirst().orElse(null);
        assertNotNull(t, "the committed transactional message never arrived");
        assertArrayEquals(body("t-1"), t.getBody());
        System.out.println("transactional message committed and consumed");
    }

    private void checkOrderedMessages(DefaultMQProducer producer) throws Exception {
        String topic = "RaftOrderTopic";
        int count = 100;
        MessageQueue queue = null;
        List<String> order = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            String key = "o-" + i;
            SendResult r = producer.send(new Message(topic, "ordered", key, body(key)),
                (mqs, msg, arg) -> mqs.get(0), null);
            assertEquals(SendStatus.SEND_OK, r.getSendStatus(), "ordered send " + i);
            if (queue == null) {
                queue = r.getMessageQueue();
            }
            assertEquals(queue, r.getMessageQueue(), "ordered send " + i + " went to another queue");
            order.add(key);
        }
        List<MessageExt> got = drain(topic, List.of(queue), l -> keysOf(l).containsAll(order));
        checkBodies(got);
        List<String> consumedOrder = got.stream().map(MessageExt::getKeys).toList();
        assertEquals(order, consumedOrder, "ordered messages came back out of order");
        for (int i = 1; i < got.size(); i++) {
            assertEquals(got.get(i - 1).getQueueOffset() + 1, got.get(i).getQueueOffset(), "queue offsets have a gap");
        }
        System.out.println("ordered messages: " + count + " sent to " + queue + " and consumed in order");
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Producing and consuming

    /** Sends one message; a failed send (after the client's own retries) returns false. */
    private static boolean send(DefaultMQProducer producer, String topic, String key) {
        try {
            return producer.send(new Message(topic, "t", key, body(key))).getSendStatus() == SendStatus.SEND_OK;
        } catch (Exception e) {
            return false;
        }
    }

    /** Keeps sending until stopped, remembering what was acknowledged and when the first ack after the kill came. */
    private static final class FailoverSender implements Runnable {
        final DefaultMQProducer producer;
        final String topic;
        final Set<String> acked = ConcurrentHashMap.newKeySet();
        final AtomicInteger sent = new AtomicInteger();
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicLong killedAt = new AtomicLong();
        final AtomicLong firstOkAfterKill = new AtomicLong();

        FailoverSender(DefaultMQProducer producer, String topic) {
            this.producer = producer;
            this.topic = topic;
        }

        @Override
        public void run() {
            for (int i = 0; !stop.get(); i++) {
                String key = "b-" + i;
                long kill = killedAt.get();
                long started = System.nanoTime();
                sent.incrementAndGet();
                if (send(producer, topic, key)) {
                    acked.add(key);
                    if (kill != 0 && started >= kill && firstOkAfterKill.get() == 0) {
                        firstOkAfterKill.set(System.nanoTime());
                    }
                } else {
                    // Pace the retries while no broker takes writes (a dead address fails at once).
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
                }
            }
        }
    }

    private DefaultMQProducer producer(String group) throws MQClientException {
        DefaultMQProducer p = new DefaultMQProducer(group + "-" + GROUPS.incrementAndGet());
        p.setNamesrvAddr(namesrvAddr);
        p.setPollNameServerInterval(1000);
        p.setSendMsgTimeout(3000);
        p.setRetryTimesWhenSendFailed(2);
        p.start();
        shutdowns.add(p::shutdown);
        return p;
    }

    /**
     * Reads {@code topic} from offset 0 of {@code queues} (all of the topic's queues when null) until {@code done}
     * holds for what was read or the wait runs out, then reads on until a poll comes back empty (so duplicates show).
     */
    private List<MessageExt> drain(String topic, Collection<MessageQueue> queues, Predicate<List<MessageExt>> done)
        throws MQClientException {
        DefaultLitePullConsumer c = new DefaultLitePullConsumer("c-" + GROUPS.incrementAndGet());
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
                c.seek(mq, 0);
            }
            List<MessageExt> got = new ArrayList<>();
            long deadline = System.nanoTime() + CONSUME_WAIT.toNanos();
            while (!done.test(got) && System.nanoTime() < deadline) {
                got.addAll(c.poll(200));
            }
            if (done.test(got)) {
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

    private static Set<String> keysOf(List<MessageExt> messages) {
        Set<String> keys = new HashSet<>();
        for (MessageExt m : messages) {
            keys.add(m.getKeys());
        }
        return keys;
    }

    /** Checks every message's body against its key; returns the distinct keys. */
    private static Set<String> checkBodies(List<MessageExt> messages) {
        Set<String> keys = new HashSet<>();
        for (MessageExt m : messages) {
            assertArrayEquals(body(m.getKeys()), m.getBody(), "body of message " + m.getKeys() + " at queue offset "
                + m.getQueueOffset() + " of " + m.getQueueId());
            keys.add(m.getKeys());
        }
        return keys;
    }

    /** A 1 KiB body made from the key, so a body read back can be checked against its key. */
    private static byte[] body(String key) {
        byte[] unit = (key + "|").getBytes(StandardCharsets.UTF_8);
        byte[] b = new byte[BODY_BYTES];
        for (int i = 0; i < b.length; i++) {
            b[i] = unit[i % unit.length];
        }
        return b;
    }

    // ----------------------------------------------------------------------------------------------------------------
    // The cluster

    private void startCluster() throws Exception {
        Set<Integer> taken = new HashSet<>();
        int namesrvPort = LoopbackPorts.freePort(taken);
        namesrvAddr = "127.0.0.1:" + namesrvPort;
        Path nsDir = tmp.resolve("namesrv");
        Files.createDirectories(nsDir);
        Path nsConf = nsDir.resolve("namesrv.conf");
        Files.writeString(nsConf, "listenPort=" + namesrvPort + "\n");
        namesrv = new ChildJvm("namesrv", jvmArgs(nsDir), "org.apache.rocketmq.namesrv.NamesrvStartup",
            List.of("-c", nsConf.toString()), nsDir.resolve("out.log")).start();

        StringBuilder peers = new StringBuilder();
        for (int i = 0; i < BROKERS; i++) {
            int raftPort = LoopbackPorts.freePort(taken);
            raftPeers.put("n" + i, new InetSocketAddress("127.0.0.1", raftPort));
            peers.append(i == 0 ? "" : ";").append("n").append(i).append("-127.0.0.1:").append(raftPort);
            listenPorts.add(LoopbackPorts.brokerPort(taken));
        }
        for (int i = 0; i < BROKERS; i++) {
            Path dir = tmp.resolve("broker-n" + i);
            Files.createDirectories(dir);
            Path conf = dir.resolve("broker.conf");
            Files.writeString(conf, String.join("\n",
                "brokerClusterName=" + CLUSTER,
                "brokerName=" + BROKER_NAME,
                "brokerIP1=127.0.0.1",
                "listenPort=" + listenPorts.get(i),
                "namesrvAddr=" + namesrvAddr,
                "storePathRootDir=" + dir.resolve("store"),
                "storePathCommitLog=" + dir.resolve("store").resolve("commitlog"),
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
                "") + "\n");
            brokers.add(new ChildJvm("broker n" + i, jvmArgs(dir), RaftBrokerStartup.class.getName(),
                List.of("-c", conf.toString()), dir.resolve("out.log")).start());
        }
        routeReader = producer("route-reader");
    }

    private static List<String> jvmArgs(Path dir) {
        // C1 only: the servers start much faster on a small shared machine, and the test runs them for seconds.
        return List.of("-Xmx256m", "-Xms64m", "-XX:MaxDirectMemorySize=256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Drocketmq.home.dir=" + dir, "-Duser.home=" + dir, "-Djava.net.preferIPv4Stack=true");
    }

    private String brokerAddr(int index) {
        return "127.0.0.1:" + listenPorts.get(index);
    }

    /** The nameserver's brokerId to address table of our broker name (empty while it knows none). */
    private Map<Long, String> brokerAddrs() {
        try {
            ClusterInfo info = routeReader.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl()
                .getBrokerClusterInfo(2000);
            BrokerData data = info.getBrokerAddrTable().get(BROKER_NAME);
            return data == null ? Map.of() : new HashMap<>(data.getBrokerAddrs());
        } catch (Exception e) {
            return Map.of();
        }
    }

    /** The Raft role of node {@code index} as it reports it, or "DOWN" when it does not answer. */
    private String raftRole(int index) {
        String id = "n" + index;
        try (RaftClient c = new RaftClient(BROKER_NAME, Map.of(id, raftPeers.get(id)), 1000, 1)) {
            return c.metadata(id).get(2, TimeUnit.SECONDS).role();
        } catch (Exception e) {
            return "DOWN";
        }
    }

    /**
     * Waits until exactly one of {@code alive} leads the Raft group, the nameserver lists it as brokerId 0, and every
     * other live broker as a slave with brokerId = index + 1; returns the leader's index.
     */
    private int awaitRoles(Set<Integer> alive) {
        int[] leader = {-1};
        await("raft leader registered as master, followers as slaves").atMost(ROLE_WAIT)
            .pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
                List<Integer> leaders = new ArrayList<>();
                for (int i : alive) {
                    if ("LEADER".equals(raftRole(i))) {
                        leaders.add(i);
                    }
                }
                assertEquals(1, leaders.size(), "raft leaders among " + alive + ": " + leaders);
                int l = leaders.get(0);
                Map<Long, String> addrs = brokerAddrs();
                Map<Long, String> expected = new HashMap<>();
                expected.put(0L, brokerAddr(l));
                for (int i : alive) {
                    if (i != l) {
                        expected.put((long) i + 1, brokerAddr(i));
                    }
                }
                assertEquals(expected, addrs, "nameserver route of " + BROKER_NAME);
                leader[0] = l;
            });
        return leader[0];
    }

    private void printOutputs() {
        List<ChildJvm> all = new ArrayList<>();
        if (namesrv != null) {
            all.add(namesrv);
        }
        all.addAll(brokers);
        for (ChildJvm c : all) {
            System.err.println("===== " + c.name() + " output (tail) =====");
            System.err.println(c.tail(60));
        }
        for (int i = 0; i < brokers.size(); i++) {
            Path log = tmp.resolve("broker-n" + i).resolve("logs").resolve("rocketmqlogs").resolve("broker.log");
            System.err.println("===== broker n" + i + " broker.log (tail) =====");
            System.err.println(ChildJvm.tailOf(log, 40));
        }
        System.err.println("the processes' files are kept in " + tmp);
    }
}
