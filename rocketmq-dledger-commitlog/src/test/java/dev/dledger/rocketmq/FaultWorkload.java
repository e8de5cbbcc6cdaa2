package dev.dledger.rocketmq;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.apache.rocketmq.client.consumer.AllocateMessageQueueStrategy;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragely;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.hook.SendMessageContext;
import org.apache.rocketmq.client.hook.SendMessageHook;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageClientIDSetter;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.exception.RemotingTimeoutException;
import org.apache.rocketmq.remoting.exception.RemotingTooMuchRequestException;

/**
 * The client side of a broker fault run, with the records the checker reads: producers that each send unique keys
 * (the body is made from the key) with synchronous sends and resend a key after a failed send, and a push consumer
 * group of two members reading the topic all the time.
 *
 * <p>Every send is recorded before it leaves (so a consumed message can always be matched to a send), with its
 * message id ({@code UNIQ_KEY}, which the client keeps across its own retries of one send) and its outcome: SEND_OK,
 * a timeout (the message may or may not be stored), or a failure. Every attempt the client puts on the wire is
 * counted per message id through a send hook. Every delivery is recorded with its message id and commit log offset,
 * and checked at once against what was sent.
 *
 * <p>Thread-safe: the producers, the consumers' threads and the caller share the records.
 */
final class FaultWorkload {

    /** Sends of one key are given up after this many failed attempts. */
    static final int MAX_SENDS_PER_KEY = 5;

    /** One send of a key (one {@code send()} call, which the client may retry on the wire). */
    record Send(String msgId, String outcome, boolean ok, boolean timeout, int queueId, long queueOffset,
                String offsetMsgId, long answeredNanos) {
    }

    /** One delivery of a message to the consumer group, by group member {@code member}. */
    record Delivery(String msgId, long commitLogOffset, int queueId, long queueOffset, int reconsumeTimes,
                    int member, long atNanos) {
    }

    /** A rebalance of group member {@code member}: the queue ids of the run's topic it was given. */
    record Assignment(int member, long atNanos, Set<Integer> queueIds) {
    }

    /** The sends of one key, in order. */
    static final class Sent {
        final List<Send> sends = Collections.synchronizedList(new ArrayList<>());
        volatile boolean acked;

        List<Send> sends() {
            synchronized (sends) {
                return List.copyOf(sends);
            }
        }
    }

    private final BrokerGroup group;
    private final String topic;
    private final int bodyBytes;
    private final int producerCount;
    private final Map<String, Sent> sent = new ConcurrentHashMap<>();
    private final Map<String, List<Delivery>> delivered = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> wireAttempts = new ConcurrentHashMap<>();
    private final Queue<String> staleReads = new ConcurrentLinkedQueue<>();
    private final AtomicLong sendCalls = new AtomicLong();
    private final AtomicLong sendOk = new AtomicLong();
    private final AtomicLong sendTimeouts = new AtomicLong();
    private final AtomicLong sendFailures = new AtomicLong();
    private final AtomicLong deliveries = new AtomicLong();
    private final AtomicLong lastDeliveryNanos = new AtomicLong(System.nanoTime());
    private final AtomicBoolean stop = new AtomicBoolean();
    private final List<Thread> producers = new ArrayList<>();
    private final List<DefaultMQPushConsumer> consumers = new ArrayList<>();
    private final Queue<Assignment> assignments = new ConcurrentLinkedQueue<>();
    private volatile String consumerGroup;

    FaultWorkload(BrokerGroup group, String topic, int producerCount, int bodyBytes) {
        this.group = group;
        this.topic = topic;
        this.producerCount = producerCount;
        this.bodyBytes = bodyBytes;
    }

    /**
     * Creates the topic on every broker (so whichever leads serves it with the same queues) with {@code queues}
     * queues.
     */
    void createTopic(int queues) throws Exception {
        DefaultMQProducer admin = group.producer("topic-admin");
        TopicConfig tc = new TopicConfig(topic, queues, queues);
        for (int i = 0; i < BrokerGroup.SIZE; i++) {
            if (group.isWitness(i)) {
                continue;
            }
            admin.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl()
                .createTopic(group.brokerAddr(i), topic, tc, 5000);
        }
    }

    /** Starts the consumer group (two members, from the first offset). */
    void startConsumers() throws MQClientException {
        String name = BrokerGroup.clientGroup("c-faults");
        consumerGroup = name;
        for (int i = 0; i < 2; i++) {
            DefaultMQPushConsumer c = new DefaultMQPushConsumer(name);
            c.setNamesrvAddr(group.namesrvAddr());
            c.setInstanceName(name + "-member-" + i);
            c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
            c.setPollNameServerInterval(1000);
            c.setPersistConsumerOffsetInterval(1000);
            c.setHeartbeatBrokerInterval(1000);
            c.setConsumeThreadMin(2);
            c.setConsumeThreadMax(2);
            c.setPullBatchSize(32);
            c.setConsumeMessageBatchMaxSize(32);
            int member = i;
            AllocateMessageQueueStrategy averagely = new AllocateMessageQueueAveragely();
            c.setAllocateMessageQueueStrategy(new AllocateMessageQueueStrategy() {
                @Override
                public List<MessageQueue> allocate(String consumerGroup, String currentCid, List<MessageQueue> mqAll,
                                                   List<String> cidAll) {
                    List<MessageQueue> mine = averagely.allocate(consumerGroup, currentCid, mqAll, cidAll);
                    Set<Integer> ids = new TreeSet<>();
                    for (MessageQueue q : mine) {
                        if (topic.equals(q.getTopic())) {
                            ids.add(q.getQueueId());
                        }
                    }
                    if (mqAll.stream().anyMatch(q -> topic.equals(q.getTopic()))) {
                        assignments.add(new Assignment(member, System.nanoTime(), ids));
                    }
                    return mine;
                }

                @Override
                public String getName() {
                    return averagely.getName();
                }
            });
            c.subscribe(topic, "*");
            c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                for (MessageExt m : msgs) {
                    record(m, member);
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
            c.start();
            consumers.add(c);
            group.onClose(c::shutdown);
        }
    }

    private void record(MessageExt m, int member) {
        long now = System.nanoTime();
        deliveries.incrementAndGet();
        lastDeliveryNanos.set(now);
        String key = m.getKeys();
        Delivery d = new Delivery(m.getMsgId(), m.getCommitLogOffset(), m.getQueueId(), m.getQueueOffset(),
            m.getReconsumeTimes(), member, now);
        if (key == null || !sent.containsKey(key)) {
            staleReads.add("message " + d + " with key " + key + " was never sent");
        } else if (!Arrays.equals(BrokerGroup.body(key, bodyBytes), m.getBody())) {
            staleReads.add("message " + d + " with key " + key + " has a body that was never sent with it");
        }
        if (key != null) {
            delivered.computeIfAbsent(key, k -> Collections.synchronizedList(new ArrayList<>())).add(d);
        }
    }

    /** Starts the producers, each on its own thread with its own client. */
    void startProducers() throws MQClientException {
        for (int t = 0; t < producerCount; t++) {
            DefaultMQProducer p = group.producer("p-faults");
            p.getDefaultMQProducerImpl().registerSendMessageHook(new WireCounter());
            String prefix = "p" + t + "-";
            Thread thread = new Thread(() -> produce(p, prefix), "faults-producer-" + t);
            thread.setDaemon(true);
            thread.start();
            producers.add(thread);
        }
    }

    private void produce(DefaultMQProducer producer, String prefix) {
        for (long n = 0; !stop.get(); n++) {
            String key = prefix + n;
            Sent s = new Sent();
            sent.put(key, s);
            for (int attempt = 1; attempt <= MAX_SENDS_PER_KEY; attempt++) {
                Send r = send(producer, key);
                s.sends.add(r);
                if (r.ok()) {
                    s.acked = true;
                    break;
                }
                if (stop.get()) {
                    break;
                }
                // Back off while no broker takes writes (a dead or refusing broker answers at once).
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100L * attempt));
            }
        }
    }

    private Send send(DefaultMQProducer producer, String key) {
        Message m = new Message(topic, "faults", key, BrokerGroup.body(key, bodyBytes));
        sendCalls.incrementAndGet();
        try {
            SendResult r = producer.send(m);
            String id = MessageClientIDSetter.getUniqID(m);
            if (r.getSendStatus() == SendStatus.SEND_OK) {
                sendOk.incrementAndGet();
                return new Send(id, "SEND_OK", true, false, r.getMessageQueue().getQueueId(), r.getQueueOffset(),
                    r.getOffsetMsgId(), System.nanoTime());
            }
            sendFailures.incrementAndGet();
            return new Send(id, r.getSendStatus().name(), false, false, -1, -1, null, System.nanoTime());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            sendFailures.incrementAndGet();
            return new Send(MessageClientIDSetter.getUniqID(m), "interrupted", false, false, -1, -1, null,
                System.nanoTime());
        } catch (Exception e) {
            boolean timeout = isTimeout(e);
            (timeout ? sendTimeouts : sendFailures).incrementAndGet();
            String what = e.getClass().getSimpleName() + ": " + String.valueOf(e.getMessage()).split("\\R", 2)[0];
            return new Send(MessageClientIDSetter.getUniqID(m), (timeout ? "timeout " : "failed ") + what, false,
                timeout, -1, -1, null, System.nanoTime());
        }
    }

    private static boolean isTimeout(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof RemotingTimeoutException || t instanceof RemotingTooMuchRequestException) {
                return true;
            }
        }
        return false;
    }

    /** Counts the attempts the client puts on the wire, per message id. */
    private final class WireCounter implements SendMessageHook {
        @Override
        public String hookName() {
            return "faults-wire-counter";
        }

        @Override
        public void sendMessageBefore(SendMessageContext context) {
            String id = MessageClientIDSetter.getUniqID(context.getMessage());
            if (id != null) {
                wireAttempts.computeIfAbsent(id, k -> new AtomicInteger()).incrementAndGet();
            }
        }

        @Override
        public void sendMessageAfter(SendMessageContext context) {
        }
    }

    /** Stops the producers and waits for them (a send in progress ends within the client's send timeout). */
    void stopProducers() throws InterruptedException {
        stop.set(true);
        for (Thread t : producers) {
            t.join(TimeUnit.SECONDS.toMillis(30));
            if (t.isAlive()) {
                throw new IllegalStateException(t.getName() + " did not stop within 30 s");
            }
        }
    }

    /** Stops the consumer group. */
    void stopConsumers() {
        for (DefaultMQPushConsumer c : consumers) {
            c.shutdown();
        }
    }

    /** Nanos ({@link System#nanoTime()}) of the latest delivery. */
    long lastDeliveryNanos() {
        return lastDeliveryNanos.get();
    }

    /** The keys acknowledged (SEND_OK) but not delivered yet. */
    List<String> ackedNotDelivered() {
        List<String> out = new ArrayList<>();
        sent.forEach((k, s) -> {
            if (s.acked && !delivered.containsKey(k)) {
                out.add(k);
            }
        });
        Collections.sort(out);
        return out;
    }

    /**
     * Where the consumption stands, for a drain that takes long: per queue of the run's topic, how many acknowledged
     * keys are not delivered yet and the lowest queue offset among them, against the highest queue offset delivered;
     * then each member's latest assignment.
     */
    String drainProgress() {
        Map<Integer, long[]> missing = new TreeMap<>();
        sent.forEach((k, s) -> {
            if (!s.acked || delivered.containsKey(k)) {
                return;
            }
            for (Send r : s.sends()) {
                if (r.ok()) {
                    long[] m = missing.computeIfAbsent(r.queueId(), q -> new long[] {0, Long.MAX_VALUE});
                    m[0]++;
                    m[1] = Math.min(m[1], r.queueOffset());
                }
            }
        });
        Map<Integer, Long> highest = new TreeMap<>();
        delivered.values().forEach(ds -> {
            synchronized (ds) {
                for (Delivery d : ds) {
                    highest.merge(d.queueId(), d.queueOffset(), Math::max);
                }
            }
        });
        StringBuilder b = new StringBuilder();
        missing.forEach((q, m) -> b.append(" queue ").append(q).append(": ").append(m[0])
            .append(" not delivered from offset ").append(m[1]).append(", delivered up to ")
            .append(highest.getOrDefault(q, -1L)).append(';'));
        Map<Integer, Assignment> latest = new TreeMap<>();
        for (Assignment a : assignments) {
            latest.put(a.member(), a);
        }
        long now = System.nanoTime();
        latest.forEach((m, a) -> b.append(" member ").append(m).append(" has ").append(a.queueIds()).append(" since ")
            .append((now - a.atNanos()) / 1_000_000_000L).append(" s;"));
        return b.length() == 0 ? " nothing missing" : b.toString();
    }

    Map<String, Sent> sent() {
        return sent;
    }

    Map<String, List<Delivery>> delivered() {
        return delivered;
    }

    /** The consumer group's name (null before {@link #startConsumers()}). */
    String consumerGroup() {
        return consumerGroup;
    }

    /** Every rebalance of the group's members, in the order they happened. */
    List<Assignment> assignments() {
        return List.copyOf(assignments);
    }

    /** How many times the client put message {@code msgId} on the wire (0 if never). */
    int wireAttempts(String msgId) {
        AtomicInteger n = wireAttempts.get(msgId);
        return n == null ? 0 : n.get();
    }

    List<String> staleReads() {
        return List.copyOf(staleReads);
    }

    long sendCalls() {
        return sendCalls.get();
    }

    long sendOk() {
        return sendOk.get();
    }

    long sendTimeouts() {
        return sendTimeouts.get();
    }

    long sendFailures() {
        return sendFailures.get();
    }

    long deliveries() {
        return deliveries.get();
    }
}
