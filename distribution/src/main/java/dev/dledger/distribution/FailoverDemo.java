package dev.dledger.distribution;

import dev.dledger.raft.config.Peers;
import dev.dledger.raft.client.RaftClient;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
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
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * The failover demo of {@code bin/dledger/demo.sh}, against a running group (started by {@code fast-try.sh}): sends
 * messages with RocketMQ's own producer, reads every acknowledged one back with its consumer, kills the Raft leader's
 * broker process (SIGKILL, by the pid file {@code fast-try.sh} wrote) while a producer keeps sending, shows the new
 * leader taking writes, reads everything back again, and prints
 * {@code demo: sent S, acked A, read R, lost L, failover F ms}. Exit code 0 when nothing acknowledged was lost, 1 when
 * something was or the group did not recover, 2 on bad arguments.
 *
 * <p>Arguments: {@code --namesrv HOST:PORT --group RAFT_GROUP --peers n0-host:port;... --pid-dir DIR
 * [--messages N] [--token TOKEN]} (N default 3000, 1 KiB each; TOKEN: the brokers' raftAdminToken, which the Raft
 * role queries prove: without it a broker's Raft port answers none). Each run writes to a new topic, {@code DemoTopic_<run id>}.
 */
public final class FailoverDemo {

    private static final int BODY_BYTES = 1024;
    private static final int SENDER_THREADS = 4;
    private static final long WAIT_MS = 60_000;

    private final String namesrv;
    private final String group;
    private final Map<String, InetSocketAddress> peers;
    private final Path pidDir;
    private final int messages;
    /** The brokers' raftAdminToken, or null. */
    private final String token;
    private final String runId = Long.toString(System.currentTimeMillis(), 36);
    private final String topic = "DemoTopic_" + runId;
    private final List<Runnable> shutdowns = new ArrayList<>();

    private FailoverDemo(String namesrv, String group, Map<String, InetSocketAddress> peers, Path pidDir, int messages,
                         String token) {
        this.token = token;
        this.namesrv = namesrv;
        this.group = group;
        this.peers = peers;
        this.pidDir = pidDir;
        this.messages = messages;
    }

    /**
     * Runs the demo and exits the JVM with its result (see the class comment).
     *
     * @param args {@code --namesrv --group --peers --pid-dir [--messages] [--token]}
     */
    public static void main(String[] args) {
        FailoverDemo demo;
        try {
            demo = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("demo: " + e.getMessage());
            System.err.println("usage: FailoverDemo --namesrv HOST:PORT --group RAFT_GROUP --peers 'n0-host:port;...' "
                + "--pid-dir DIR [--messages N] [--token TOKEN]");
            System.exit(2);
            return;
        }
        int code;
        try {
            code = demo.run();
        } catch (Exception e) {
            System.err.println("demo: failed: " + e);
            code = 1;
        } finally {
            demo.shutdown();
        }
        System.exit(code);
    }

    static FailoverDemo parse(String[] args) {
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String key = args[i];
            if (!Set.of("--namesrv", "--group", "--peers", "--pid-dir", "--messages", "--token").contains(key)) {
                throw new IllegalArgumentException("unknown argument '" + key + "'");
            }
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException(key + " needs a value");
            }
            opts.put(key, args[++i]);
        }
        for (String required : List.of("--namesrv", "--group", "--peers", "--pid-dir")) {
            if (!opts.containsKey(required)) {
                throw new IllegalArgumentException(required + " is missing");
            }
        }
        Map<String, InetSocketAddress> peers;
        try {
            peers = Peers.parse(opts.get("--peers"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--peers: " + e.getMessage(), e);
        }
        int messages;
        try {
            messages = Integer.parseInt(opts.getOrDefault("--messages", "3000"));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--messages " + opts.get("--messages") + " is not a number", e);
        }
        if (messages < 1) {
            throw new IllegalArgumentException("--messages must be at least 1, not " + messages);
        }
        return new FailoverDemo(opts.get("--namesrv"), opts.get("--group"), peers, Path.of(opts.get("--pid-dir")),
            messages, opts.get("--token"));
    }

    private int run() throws Exception {
        long began = System.nanoTime();
        say("topic %s, %d messages of %d bytes, nameserver %s", topic, messages, BODY_BYTES, namesrv);
        String leader = findLeader(peers.keySet());
        say("Raft leader: %s (brokerId 0); followers: %s", leader, others(leader));

        // 1. Send and read back on the healthy group.
        DefaultMQProducer producer = producer();
        Set<String> acked = ConcurrentHashMap.newKeySet();
        AtomicInteger sent = new AtomicInteger();
        sendAll(producer, acked, sent);
        say("sent %d, acknowledged %d (%d ms)", sent.get(), acked.size(), sinceMs(began));
        Set<String> read = readBack(acked);
        say("read back %d of %d acknowledged", countIn(read, acked), acked.size());

        // 2. Kill the leader while a producer keeps sending (once every member is up, so the others form a quorum).
        waitFor("every member of " + peers.keySet() + " to answer",
            () -> peers.keySet().stream().noneMatch(id -> "DOWN".equals(role(id))));
        leader = findLeader(peers.keySet());
        long pid = leaderPid(leader);
        FailoverSender sender = new FailoverSender(producer);
        Thread senderThread = new Thread(sender, "demo-failover-sender");
        senderThread.start();
        waitFor("the failover sender's first acknowledgements", () -> sender.acked.size() >= 100);
        long killedAt = System.nanoTime();
        sender.killedAt.set(killedAt);
        say("killing the leader %s (broker pid %d) with SIGKILL while sending", leader, pid);
        kill(pid);
        waitFor("a send acknowledged after the kill", () -> sender.firstOkAfterKill.get() != 0);
        long failoverMs = TimeUnit.NANOSECONDS.toMillis(sender.firstOkAfterKill.get() - killedAt);
        Set<String> alive = new HashSet<>(peers.keySet());
        alive.remove(leader);
        String newLeader = findLeader(alive);
        say("new leader %s took writes %d ms after the kill", newLeader, failoverMs);
        int ackedAtFailover = sender.acked.size();
        int more = Math.max(100, messages / 10);
        waitFor(more + " more acknowledged sends", () -> sender.acked.size() >= ackedAtFailover + more);
        sender.stop.set(true);
        senderThread.join(WAIT_MS);
        say("the new leader acknowledged %d more sends", sender.acked.size() - ackedAtFailover);

        // 3. Everything acknowledged, before and after the failover, must be readable.
        acked.addAll(sender.acked);
        sent.addAndGet(sender.sent.get());
        read = readBack(acked);
        int readAcked = countIn(read, acked);
        int lost = acked.size() - readAcked;
        System.out.printf(Locale.ROOT, "demo: sent %d, acked %d, read %d, lost %d, failover %d ms (leader %s killed, "
            + "%s took over; %d s in all)%n", sent.get(), acked.size(), readAcked, lost, failoverMs, leader, newLeader,
            TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - began));
        return lost == 0 ? 0 : 1;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Sending and reading

    private DefaultMQProducer producer() throws MQClientException {
        DefaultMQProducer p = new DefaultMQProducer("demo-producer-" + runId);
        p.setNamesrvAddr(namesrv);
        p.setPollNameServerInterval(1000);
        p.setSendMsgTimeout(3000);
        p.setRetryTimesWhenSendFailed(2);
        p.start();
        shutdowns.add(p::shutdown);
        return p;
    }

    private void sendAll(DefaultMQProducer producer, Set<String> acked, AtomicInteger sent) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(SENDER_THREADS);
        try {
            int step = Math.max(1, messages / 10);
            List<Future<?>> jobs = new ArrayList<>();
            for (int t = 0; t < SENDER_THREADS; t++) {
                int first = t;
                jobs.add(pool.submit(() -> {
                    for (int i = first; i < messages; i += SENDER_THREADS) {
                        String key = runId + "-a" + i;
                        int n = sent.incrementAndGet();
                        if (send(producer, key)) {
                            acked.add(key);
                        }
                        if (n % step == 0) {
                            say("  sent %d/%d", n, messages);
                        }
                    }
                }));
            }
            for (Future<?> f : jobs) {
                f.get(10, TimeUnit.MINUTES);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private boolean send(DefaultMQProducer producer, String key) {
        try {
            return producer.send(new Message(topic, "demo", key, body(key))).getSendStatus() == SendStatus.SEND_OK;
        } catch (Exception e) {
            return false;
        }
    }

    /** Keeps sending until stopped; remembers what was acknowledged and when the first ack after the kill came. */
    private final class FailoverSender implements Runnable {
        final DefaultMQProducer producer;
        final Set<String> acked = ConcurrentHashMap.newKeySet();
        final AtomicInteger sent = new AtomicInteger();
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicLong killedAt = new AtomicLong();
        final AtomicLong firstOkAfterKill = new AtomicLong();

        FailoverSender(DefaultMQProducer producer) {
            this.producer = producer;
        }

        @Override
        public void run() {
            for (int i = 0; !stop.get(); i++) {
                String key = runId + "-b" + i;
                long kill = killedAt.get();
                long started = System.nanoTime();
                sent.incrementAndGet();
                if (send(producer, key)) {
                    acked.add(key);
                    if (kill != 0 && started >= kill && firstOkAfterKill.get() == 0) {
                        firstOkAfterKill.set(System.nanoTime());
                    }
                } else {
                    // A dead broker's address fails at once; pace the retries until the route moves.
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
                }
            }
        }
    }

    /** Reads the topic from the start of every queue until every key of {@code want} was seen or a minute passed. */
    private Set<String> readBack(Set<String> want) throws Exception {
        DefaultLitePullConsumer c = new DefaultLitePullConsumer("demo-consumer-" + runId + "-" + System.nanoTime());
        c.setNamesrvAddr(namesrv);
        c.setAutoCommit(false);
        c.setPullBatchSize(256);
        c.setPollNameServerInterval(1000);
        // A new group with nothing committed starts at each queue's first message; no seek (a seek while the pull
        // that assign starts is in flight can drop that pull's batch).
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.start();
        try {
            Collection<MessageQueue> queues = null;
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
            while (queues == null) {
                try {
                    queues = c.fetchMessageQueues(topic);
                } catch (MQClientException e) {
                    if (System.nanoTime() > deadline) {
                        throw e;
                    }
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
                }
            }
            c.assign(queues);
            Set<String> seen = new HashSet<>();
            int missing = want.size();
            int step = Math.max(1, want.size() / 5);
            int nextReport = step;
            while (missing > 0 && System.nanoTime() < deadline) {
                for (MessageExt m : c.poll(200)) {
                    String key = m.getKeys();
                    if (!java.util.Arrays.equals(body(key), m.getBody())) {
                        throw new IllegalStateException("message " + key + " came back with another body");
                    }
                    if (seen.add(key) && want.contains(key)) {
                        missing--;
                    }
                }
                int got = want.size() - missing;
                if (got >= nextReport) {
                    say("  read %d/%d", got, want.size());
                    nextReport = got + step;
                }
            }
            return seen;
        } finally {
            c.shutdown();
        }
    }

    private static int countIn(Set<String> read, Set<String> acked) {
        int n = 0;
        for (String k : acked) {
            if (read.contains(k)) {
                n++;
            }
        }
        return n;
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

    // ------------------------------------------------------------------------------------------------------------
    // The group

    /** Waits (up to a minute) until exactly one of {@code candidates} says it leads; returns its id. */
    private String findLeader(Set<String> candidates) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
        while (true) {
            List<String> leaders = new ArrayList<>();
            for (String id : candidates) {
                if ("LEADER".equals(role(id))) {
                    leaders.add(id);
                }
            }
            if (leaders.size() == 1) {
                return leaders.get(0);
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("no single Raft leader among " + candidates + " after " + WAIT_MS
                    + " ms (leaders: " + leaders + ")");
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200));
        }
    }

    private String role(String id) {
        try (RaftClient c = new RaftClient(group, Map.of(id, peers.get(id)), 1000, 1, token, null)) {
            return c.metadata(id).get(2, TimeUnit.SECONDS).role();
        } catch (Exception e) {
            return "DOWN";
        }
    }

    private List<String> others(String id) {
        List<String> l = new ArrayList<>(peers.keySet());
        l.remove(id);
        return l;
    }

    private long leaderPid(String leader) throws IOException {
        Path file = pidDir.resolve(leader + ".pid");
        if (!Files.isRegularFile(file)) {
            throw new IllegalStateException("no pid file " + file + " for the leader " + leader
                + "; start the group with bin/dledger/fast-try.sh start");
        }
        String text = Files.readString(file).trim();
        try {
            return Long.parseLong(text);
        } catch (NumberFormatException e) {
            throw new IllegalStateException("pid file " + file + " holds '" + text + "', not a pid", e);
        }
    }

    private static void kill(long pid) throws Exception {
        Optional<ProcessHandle> p = ProcessHandle.of(pid);
        if (p.isEmpty()) {
            throw new IllegalStateException("the leader's process " + pid + " is not running");
        }
        p.get().destroyForcibly();
        p.get().onExit().get(30, TimeUnit.SECONDS);
    }

    private static void waitFor(String what, java.util.function.BooleanSupplier done) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WAIT_MS);
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("gave up waiting for " + what + " after " + WAIT_MS + " ms");
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(20));
        }
    }

    private static long sinceMs(long startNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
    }

    private static void say(String format, Object... args) {
        System.out.println("demo: " + String.format(Locale.ROOT, format, args));
    }

    private void shutdown() {
        for (Runnable r : shutdowns) {
            try {
                r.run();
            } catch (RuntimeException e) {
                System.err.println("demo: client shutdown: " + e);
            }
        }
    }
}
