package dev.dledger.rocketmq;

import static dev.dledger.rocketmq.MigrationProcesses.BROKER_NAME;
import static dev.dledger.rocketmq.MigrationProcesses.INDEX_ITEMS;
import static dev.dledger.rocketmq.MigrationProcesses.INDEX_SLOTS;
import static dev.dledger.rocketmq.MigrationProcesses.peers;
import static dev.dledger.rocketmq.MigrationProcesses.terminate;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.migration.MigrateCommand;
import dev.dledger.rocketmq.MigrationProcesses.Broker;
import dev.dledger.rocketmq.MigrationProcesses.Run;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Timed messages across a migration and back, every part a real process (issue 17). A stock RocketMQ 5.5 master with
 * its slave ({@code BrokerStartup}, ASYNC_MASTER and SLAVE) takes plain messages, timer-wheel messages (deliver time
 * set by the client) and delay-level messages: some due within seconds (delivered by the stock master before it
 * stops), the rest due one to two minutes later. {@code dledger-migrate convert --live} converts the running
 * master's sealed files for three nodes;
 * the pair stops (SIGTERM); the same convert without {@code --live} takes the tail and the timer state. A three-broker
 * Raft group ({@link RaftBrokerStartup}) starts on the result and delivers the messages due while it runs, each at its
 * time and once. Then the group stops, {@code dledger-migrate export} turns its leader's store back into a stock store,
 * and a stock master/slave pair on it (the slave on a copy) delivers the rest, at their time and once; the
 * master then stops and the slave alone serves the same messages. Prints
 * {@code migrated timers: pending P, delivered P, early 0, twice 0}.
 */
class TimerMigrationIT {

    private static final String TOPIC = "Timed";
    private static final int QUEUES = 4;
    private static final int PLAIN = 200;
    /** Due 3 s after their send: the stock master delivers them before it stops. */
    private static final int TIMER_SOON = 200;
    /** Due while the Raft group runs. */
    private static final int TIMER_GROUP = 600;
    private static final int DELAY_GROUP = 600;
    /** Due after the group stopped: delivered by the stock broker on the export. */
    private static final int TIMER_BACK = 400;
    private static final int DELAY_BACK = 400;
    /**
     * The group is up about 30 s after the sends began (the pair's stop at about 20 s, the tail's convert, the group's
     * start); what comes due before that is delivered late by the group (reported, allowed). The group's phase ends
     * once the last of its messages came due (about 70 s); the back phase's messages come due 40 s later at the
     * earliest, so the group never delivers them (the test would find it among the group's deliveries).
     */
    private static final long TIMER_GROUP_FROM_MS = 50_000;
    private static final long TIMER_BACK_FROM_MS = 110_000;
    private static final long SPREAD_MS = 20_000;
    /**
     * Every broker's {@code messageDelayLevel} (the stock default's first eight levels run to 4 min; these keep the
     * test short): level 6 is 1 min, 8 is 2 min.
     */
    private static final String DELAY_LEVELS = "messageDelayLevel=1s 5s 10s 30s 45s 1m 90s 2m";
    private static final int LEVEL_GROUP = 6;
    private static final int LEVEL_BACK = 8;
    private static final long[] LEVEL_MS = {1_000, 5_000, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000};
    /** The timer wheel's precision ({@code timerPrecisionMs}): a message is delivered in its slot's second. */
    private static final long PRECISION_MS = 1000;
    private static final int BODY_BYTES = 600;
    private static final Duration WAIT = Duration.ofSeconds(120);

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private MigrationProcesses px;
    /** Due time of every timed message by key (the deliver time, or the born time plus the level's delay). */
    private final Map<String, Long> due = new ConcurrentHashMap<>();
    /** Store times of each key's deliveries (the plain messages' stores), over every broker that served. */
    private final Map<String, List<Long>> deliveries = new TreeMap<>();
    private final Map<String, Long> delayOf = new ConcurrentHashMap<>();

    @BeforeEach
    void processes() {
        px = new MigrationProcesses(tmp);
    }

    @AfterEach
    void stopAll() throws InterruptedException {
        px.close();
    }

    @Test
    @Timeout(value = 900, unit = TimeUnit.SECONDS)
    void pendingTimerAndDelayMessagesAreDeliveredAtTheirTimeAfterMigrationAndExport() throws Throwable {
        try {
            scenario();
        } catch (Throwable t) {
            px.printOutputs();
            throw t;
        }
    }

    private void scenario() throws Exception {
        long began = System.nanoTime();
        px.startNamesrv();
        Broker master = px.stockBroker("master", 0, "ASYNC_MASTER", DELAY_LEVELS);
        px.awaitRoute("the stock master", Map.of(0L, master.addr()));
        // The source is a master/slave pair, as in production; the conversion reads the master's store.
        Broker slave = px.stockBroker("slave", 1, "SLAVE", DELAY_LEVELS);
        px.awaitRoute("the stock pair", Map.of(0L, master.addr(), 1L, slave.addr()));
        px.admin().createAndUpdateTopicConfig(master.addr(), new TopicConfig(TOPIC, QUEUES, QUEUES));
        DefaultMQProducer producer = px.producer();
        await("the route of " + TOPIC).atMost(WAIT).ignoreExceptions()
            .until(() -> producer.fetchPublishMessageQueues(TOPIC).size() == QUEUES);
        long sendStart = System.currentTimeMillis();
        send(producer);
        long timed = TIMER_SOON + TIMER_GROUP + TIMER_BACK + DELAY_GROUP + DELAY_BACK;
        System.out.printf("sent %d plain, %d timer and %d delay-level messages in %d ms%n", PLAIN,
            TIMER_SOON + TIMER_GROUP + TIMER_BACK, DELAY_GROUP + DELAY_BACK, System.currentTimeMillis() - sendStart);
        // The soon ones are delivered by the stock master: in its store before the stop.
        awaitQueueTotal("the stock master delivered the soon timer messages", master.addr(), producer,
            PLAIN + TIMER_SOON);

        Path source = tmp.resolve("master").resolve("store");
        Map<String, InetSocketAddress> raft = px.raftPorts();
        String peers = peers(raft);
        Path base = tmp.resolve("raft");
        List<String[]> converts = new ArrayList<>();
        for (String id : raft.keySet()) {
            converts.add(new String[] {"convert", "--from", source.toString(), "--to",
                base.resolve(id).resolve("store").toString(), "--group", BROKER_NAME, "--peers", peers, "--self-id",
                id, "--mode", "rewrite", "--seed", "n0", "--index-hash-slots", Integer.toString(INDEX_SLOTS),
                "--index-max-items", Integer.toString(INDEX_ITEMS)});
        }
        // 1. The live pass while the master serves, then the stop, then the tail.
        List<String[]> live = converts.stream().map(a -> Stream.concat(Stream.of(a), Stream.of("--live"))
            .toArray(String[]::new)).toList();
        for (Run r : px.cliAll(live)) {
            assertEquals(MigrateCommand.EXIT_OK, r.code(), r.err());
            assertTrue(r.out().contains("live pass: "), r.out());
        }
        terminate(List.of(master, slave));
        long stoppedAt = System.currentTimeMillis();
        long deliveredInSource = unitsIn(source, TOPIC) - PLAIN;
        long pending = timed - deliveredInSource;
        System.out.printf("stock master stopped %d ms after the sends began: %d timed messages delivered, %d "
            + "pending%n", stoppedAt - sendStart, deliveredInSource, pending);
        assertTrue(pending >= TIMER_GROUP + DELAY_GROUP + TIMER_BACK + DELAY_BACK, "pending " + pending);
        long tail0 = System.nanoTime();
        List<Run> tails = px.cliAll(converts);
        for (Run r : tails) {
            assertEquals(MigrateCommand.EXIT_OK, r.code(), r.err());
            assertTrue(r.out().contains("going on after "), "the tail only: " + r.out());
        }
        long tailMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - tail0);

        // 2. The Raft group: everything due while it runs is delivered, at its time, once.
        List<Broker> group = new ArrayList<>();
        for (String id : raft.keySet()) {
            group.add(px.raftBroker(base.resolve(id), id, peers, raft.get(id), DELAY_LEVELS));
        }
        Broker leader = px.awaitRaftRoles(group);
        long groupUpAt = System.currentTimeMillis();
        System.out.printf("raft group up %d ms after the stop (tail converted in %d ms), leader %s%n",
            groupUpAt - stoppedAt, tailMs, leader.id());
        long groupDueBy = sendStart + Math.max(TIMER_GROUP_FROM_MS + SPREAD_MS, LEVEL_MS[LEVEL_GROUP - 1])
            + 20_000;
        int groupExpected = PLAIN + TIMER_SOON + TIMER_GROUP + DELAY_GROUP;
        consume("cg-timer-group", groupExpected, groupDueBy);
        assertEquals(groupExpected, deliveries.size(), "messages delivered on the raft group: " + missing("group"));
        leader = px.awaitRaftRoles(group);
        for (Broker b : group) {
            awaitQueueTotal("broker " + b.id() + " holds every delivery", b.addr(), producer, groupExpected);
        }
        terminate(group);

        // 3. The way back: the leader's store exported; a stock master/slave pair on it delivers the rest, and the
        // slave, on a copy of the export, holds every message once it replicated what its master delivered.
        Path backStore = tmp.resolve("back").resolve("store");
        Run export = px.cli("export", "--from", base.resolve(leader.id()).resolve("store").toString(), "--self-id",
            leader.id(), "--to", backStore.toString(), "--index-hash-slots", Integer.toString(INDEX_SLOTS),
            "--index-max-items", Integer.toString(INDEX_ITEMS));
        assertEquals(MigrateCommand.EXIT_OK, export.code(), export.err());
        assertTrue(export.out().contains("export verified: ") && export.out().contains("timer: "), export.out());
        // The slave's host gets a copy of the export, as stock requires: an empty stock slave replicates only from the
        // start of its master's last CommitLog file.
        MigrationProcesses.copyTree(backStore, tmp.resolve("back-slave").resolve("store"));
        Broker back = px.stockBroker("back", 0, "ASYNC_MASTER", DELAY_LEVELS);
        px.awaitRoute("the stock master on the export", Map.of(0L, back.addr()));
        // A stock slave serves pulls only with slaveReadEnable (else it answers "retry at the master").
        Broker backSlave = px.stockBroker("back-slave", 1, "SLAVE", "slaveReadEnable=true", DELAY_LEVELS);
        px.awaitRoute("the stock pair on the export", Map.of(0L, back.addr(), 1L, backSlave.addr()));
        long backDueBy = sendStart + Math.max(TIMER_BACK_FROM_MS + SPREAD_MS, LEVEL_MS[LEVEL_BACK - 1]) + 20_000;
        deliveries.clear();
        int all = PLAIN + (int) timed;
        consume("cg-timer-back", all, backDueBy);
        assertEquals(all, deliveries.size(), "messages on the stock master of the export: " + missing("export"));
        awaitQueueTotal("the stock slave replicated the export and what its master delivered", backSlave.addr(),
            producer, all);
        terminate(List.of(back));
        px.awaitRoute("the stock slave alone", Map.of(1L, backSlave.addr()));
        // Read again from the slave alone: the checks below run on what it serves.
        Map<String, List<Long>> fromMaster = new TreeMap<>(deliveries);
        deliveries.clear();
        consume("cg-timer-slave", all, System.currentTimeMillis());
        assertEquals(fromMaster, deliveries, "what the stock slave serves against what its master served");
        System.out.printf("export served by a stock master/slave pair: %d messages from the master, the same %d "
            + "from the slave alone after the master stopped%n", fromMaster.size(), deliveries.size());
        terminate(List.of(backSlave));

        // Every timed message once, none early; those pending at the stop delivered after it.
        int early = 0;
        int twice = 0;
        int deliveredAfterStop = 0;
        long lateMax = 0;
        List<String> bad = new ArrayList<>();
        for (Map.Entry<String, List<Long>> e : deliveries.entrySet()) {
            if (e.getValue().size() > 1) {
                twice++;
                bad.add(e.getKey() + " stored at " + e.getValue());
            }
            Long d = due.get(e.getKey());
            if (d == null) {
                continue;
            }
            long at = e.getValue().get(0);
            if (at < d - PRECISION_MS) {
                early++;
                bad.add(e.getKey() + " stored " + (d - at) + " ms before its time");
            }
            if (at > stoppedAt) {
                deliveredAfterStop++;
                lateMax = Math.max(lateMax, at - d);
            }
        }
        System.out.printf(Locale.ROOT, "migrated timers: pending %d, delivered %d, early %d, twice %d (latest %d ms "
            + "after its time; the group up %d ms after the stop; test %d s)%n", pending, deliveredAfterStop, early,
            twice, lateMax, groupUpAt - stoppedAt, TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - began));
        assertEquals(List.of(), bad.stream().limit(20).toList(), "early or twice");
        assertEquals(pending, deliveredAfterStop, "pending at the stop, delivered after it");
        for (Run r : tails) {
            assertTrue(r.out().contains("timer: "), "the timer state carried: " + r.out());
        }
    }

    /** Sends the plain and timed messages from four threads. */
    private void send(DefaultMQProducer producer) throws Exception {
        List<Message> messages = new ArrayList<>();
        for (int i = 0; i < PLAIN; i++) {
            messages.add(message("plain-" + i));
        }
        int[][] timers = {{TIMER_SOON, 3_000, 0}, {TIMER_GROUP, (int) TIMER_GROUP_FROM_MS, 1},
            {TIMER_BACK, (int) TIMER_BACK_FROM_MS, 2}};
        for (int[] t : timers) {
            for (int i = 0; i < t[0]; i++) {
                Message m = message("timer-" + t[2] + "-" + i);
                // Set just before the send, below: due t[1] ms after it, spread over SPREAD_MS.
                m.putUserProperty("dueIn", Long.toString(t[1] + (t[2] == 0 ? 0 : SPREAD_MS * i / t[0])));
                messages.add(m);
            }
        }
        for (int[] d : new int[][] {{DELAY_GROUP, LEVEL_GROUP}, {DELAY_BACK, LEVEL_BACK}}) {
            for (int i = 0; i < d[0]; i++) {
                Message m = message("delay-" + d[1] + "-" + i);
                m.setDelayTimeLevel(d[1]);
                delayOf.put(m.getKeys(), LEVEL_MS[d[1] - 1]);
                messages.add(m);
            }
        }
        ExecutorService senders = Executors.newFixedThreadPool(4);
        try {
            List<Future<SendResult>> results = new ArrayList<>();
            for (Message m : messages) {
                results.add(senders.submit(() -> {
                    String dueIn = m.getUserProperty("dueIn");
                    if (dueIn != null) {
                        long at = System.currentTimeMillis() + Long.parseLong(dueIn);
                        m.setDeliverTimeMs(at);
                        due.put(m.getKeys(), at);
                    }
                    SendResult r = producer.send(m);
                    assertEquals(SendStatus.SEND_OK, r.getSendStatus(), m.getKeys());
                    return r;
                }));
            }
            for (Future<SendResult> f : results) {
                f.get(180, TimeUnit.SECONDS);
            }
        } finally {
            senders.shutdown();
        }
    }

    private static Message message(String key) {
        byte[] unit = (key + "|").getBytes(StandardCharsets.UTF_8);
        byte[] body = new byte[BODY_BYTES];
        for (int i = 0; i < body.length; i++) {
            body[i] = unit[i % unit.length];
        }
        return new Message(TOPIC, key.substring(0, key.indexOf('-')), key, body);
    }

    /**
     * Reads the topic from its first offset with a new consumer group until {@code expected} distinct keys came (or
     * {@code dueBy} plus the wait passed), then on until a poll comes back empty; records each key's store times.
     */
    private void consume(String groupName, int expected, long dueBy) throws Exception {
        DefaultLitePullConsumer c = new DefaultLitePullConsumer(groupName);
        c.setInstanceName(MigrationProcesses.instanceName());
        c.setNamesrvAddr(px.namesrvAddr());
        c.setAutoCommit(false);
        c.setPullBatchSize(32);
        c.setPollNameServerInterval(1000);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(TOPIC, "*");
        c.start();
        px.onClose(c::shutdown);
        long deadline = Math.max(System.currentTimeMillis(), dueBy) + WAIT.toMillis();
        while (deliveries.size() < expected && System.currentTimeMillis() < deadline) {
            record(c.poll(500));
        }
        // Late copies show up here (a delivery twice lands after the first in the same queue).
        long settle = System.currentTimeMillis() + 5000;
        while (System.currentTimeMillis() < settle) {
            record(c.poll(500));
        }
        c.shutdown();
    }

    private void record(List<MessageExt> polled) {
        for (MessageExt m : polled) {
            String key = m.getKeys();
            Long level = delayOf.get(key);
            if (level != null) {
                due.putIfAbsent(key, m.getBornTimestamp() + level);
            }
            deliveries.computeIfAbsent(key, k -> new ArrayList<>()).add(m.getStoreTimestamp());
        }
    }

    /** A few keys sent but not delivered, for a failure message. */
    private String missing(String where) {
        List<String> out = new ArrayList<>();
        for (String k : due.keySet()) {
            if (!deliveries.containsKey(k) && due.get(k) < System.currentTimeMillis() - 20_000) {
                out.add(k);
            }
        }
        for (String k : delayOf.keySet()) {
            if (!deliveries.containsKey(k) && !due.containsKey(k)) {
                out.add(k);
            }
        }
        return where + ": " + out.size() + " due and not delivered, e.g. " + out.stream().sorted().limit(10).toList();
    }

    /** Waits until the queues of the topic on {@code addr} hold {@code total} messages together. */
    private static void awaitQueueTotal(String what, String addr, DefaultMQProducer client, long total) {
        var api = client.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl();
        await(what).atMost(WAIT).pollInterval(Duration.ofMillis(500)).ignoreExceptions().untilAsserted(() -> {
            long sum = 0;
            for (int q = 0; q < QUEUES; q++) {
                sum += api.getMaxOffset(addr, new MessageQueue(TOPIC, BROKER_NAME, q), 3000);
            }
            assertEquals(total, sum, what);
        });
    }

    /** The written units of every ConsumeQueue of {@code topic} in a stopped stock store. */
    private static long unitsIn(Path store, String topic) throws Exception {
        long units = 0;
        Path dir = store.resolve("consumequeue").resolve(topic);
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(f));
                for (int pos = 0; pos + 20 <= b.limit() && b.getInt(pos + 8) > 0; pos += 20) {
                    units++;
                }
            }
        }
        return units;
    }
}
