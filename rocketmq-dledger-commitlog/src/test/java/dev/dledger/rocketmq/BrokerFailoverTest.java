package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
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
import java.util.stream.Stream;
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

    private static final int BODY_BYTES = 1024;
    private static final int FIRST_BATCH = 2000;
    private static final Duration ROLE_WAIT = Duration.ofSeconds(60);
    private static final Duration CONSUME_WAIT = Duration.ofSeconds(60);

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
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void leaderKillUnderLoadLosesNoAcknowledgedMessageAndTheGroupKeepsServing() throws Throwable {
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
        long began = System.nanoTime();
        group = new BrokerGroup(tmp);
        group.start();
        int leader = group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT);
        System.out.println("broker group up after " + sinceMs(began) + " ms: raft leader n" + leader
            + " is brokerId 0 at " + group.brokerAddr(leader));

        // 1. Round trip on a healthy group.
        String topic = "RaftTopic";
        DefaultMQProducer producer = group.producer("p-main");
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
        List<MessageExt> first = group.drain(topic, null, got -> BrokerGroup.keysOf(got).containsAll(acked.keySet()),
            CONSUME_WAIT);
        Set<String> firstKeys = BrokerGroup.checkBodies(first, BODY_BYTES);
        Set<String> firstLost = new HashSet<>(acked.keySet());
        firstLost.removeAll(firstKeys);
        System.out.println("broker round trip: sent " + sent + ", acked " + acked.size() + ", consumed "
            + firstKeys.size() + ", lost " + firstLost.size() + " (at " + sinceMs(began) + " ms)");
        assertTrue(acked.size() >= FIRST_BATCH * 0.95, "too few sends succeeded on a healthy group: " + acked.size());
        assertEquals(Set.of(), firstLost, "acknowledged messages not consumed");

        // 2. Kill the leader while a producer keeps sending.
        DefaultMQProducer failoverProducer = group.producer("p-failover");
        FailoverSender sender = new FailoverSender(failoverProducer, topic);
        Thread senderThread = new Thread(sender, "failover-sender");
        senderThread.start();
        await().atMost(Duration.ofSeconds(30)).until(() -> sender.acked.size() >= 200);
        long killedAt = System.nanoTime();
        sender.killedAt.set(killedAt);
        group.broker(leader).kill();
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
        int newLeader = group.awaitRoles(alive, ROLE_WAIT);
        assertNotEquals(leader, newLeader);

        Set<String> allAcked = new HashSet<>(acked.keySet());
        allAcked.addAll(sender.acked);
        List<MessageExt> all = group.drain(topic, null, got -> BrokerGroup.keysOf(got).containsAll(allAcked), CONSUME_WAIT);
        Set<String> consumed = BrokerGroup.checkBodies(all, BODY_BYTES);
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
        group.broker(leader).start();
        int leaderAfterRestart = group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT);
        assertNotEquals(leader, leaderAfterRestart, "the restarted broker took the lead back");
        assertEquals(group.brokerAddr(leader), group.brokerAddrs().get((long) leader + 1),
            "the restarted broker is not registered as a slave with brokerId " + (leader + 1));
        System.out.println("n" + leader + " rejoined as brokerId " + (leader + 1) + " (at " + sinceMs(began) + " ms)");
        // RocksDB's native library: one file in the store, written again at the restart; none left in the temporary
        // folder by the killed process (RocksDB's own copy there is deleted only at a normal exit).
        assertEquals(List.of(), group.rocksDbCopiesInTmp(leader), "RocksDB library copies in n" + leader + "'s tmp");
        try (Stream<Path> inStore = Files.list(group.brokerDir(leader).resolve("store").resolve("native"))) {
            assertEquals(1, inStore.filter(f -> f.getFileName().toString().startsWith("librocksdbjni")).count(),
                "RocksDB's library in n" + leader + "'s store");
        }

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
        List<MessageExt> got = group.drain(topic, null, l -> BrokerGroup.keysOf(l).contains("d-1"), CONSUME_WAIT);
        MessageExt d = got.stream().filter(x -> "d-1".equals(x.getKeys())).findFirst().orElse(null);
        assertNotNull(d, "the delayed message never arrived");
        assertArrayEquals(body("d-1"), d.getBody());
        long delayMs = d.getStoreTimestamp() - d.getBornTimestamp();
        System.out.println("delayed message (level 1) delivered " + delayMs + " ms after it was sent");
        assertTrue(delayMs >= 900, "a level-1 delayed message was delivered after " + delayMs + " ms");
    }

    private void checkTransactionalMessage() throws Exception {
        String topic = "RaftTxTopic";
        TransactionMQProducer tx = new TransactionMQProducer(BrokerGroup.clientGroup("p-tx"));
        tx.setNamesrvAddr(group.namesrvAddr());
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
        group.onClose(tx::shutdown);
        TransactionSendResult r = tx.sendMessageInTransaction(new Message(topic, "tx", "t-1", body("t-1")), null);
        assertEquals(SendStatus.SEND_OK, r.getSendStatus());
        assertEquals(LocalTransactionState.COMMIT_MESSAGE, r.getLocalTransactionState());
        List<MessageExt> got = group.drain(topic, null, l -> BrokerGroup.keysOf(l).contains("t-1"), CONSUME_WAIT);
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
        List<MessageExt> got = group.drain(topic, List.of(queue), l -> BrokerGroup.keysOf(l).containsAll(order), CONSUME_WAIT);
        BrokerGroup.checkBodies(got, BODY_BYTES);
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

    /** A 1 KiB body made from the key, so a body read back can be checked against its key. */
    private static byte[] body(String key) {
        return BrokerGroup.body(key, BODY_BYTES);
    }
}
