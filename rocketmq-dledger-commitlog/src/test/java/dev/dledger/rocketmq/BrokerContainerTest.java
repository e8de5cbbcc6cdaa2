package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import dev.dledger.raft.store.MetaFiles;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several Raft brokers in one process (issue 18): a real nameserver, three broker containers as child JVMs, three
 * groups of three brokers (container c hosts node n&lt;c&gt; of every group on its one Raft port; group g prefers
 * n&lt;g&gt;), RocketMQ's own client. Container 2 starts with two groups; the third is added with the admin request
 * of {@code mqadmin addBroker}. Each container leads one group. Sends go to a topic of each group; container 0 is
 * killed (SIGKILL): its group elects a new leader, the other two keep theirs and take sends; it restarts and the
 * leaders are spread again (leadership transfer to the preferred leader), with no send refused meanwhile (the old
 * master forwards what reaches it to the new one). Every acknowledged message is read back.
 * Then {@code mqadmin removeBroker} takes one broker out of a running container; its group goes on. Last, a
 * container that leads a group is stopped with SIGTERM: it hands the leadership over before its brokers' shutdown,
 * and the group takes sends again within the first fifth of the time the container takes to exit (it shuts its
 * three brokers down one after the other; without the hand-over the group waited for its broker's turn and then for
 * its node to stop).
 */
@Tag("alone")
class BrokerContainerTest {

    private static final int BODY_BYTES = 256;
    private static final int MESSAGES = 40;
    /** Sent to cg0 before the kill, beyond {@link #MESSAGES}: more than its log's commit checkpoint interval (1,024). */
    private static final int CHECKPOINTED_MESSAGES = 1300;
    /** The keys {@code sendAll} sent more than once. */
    private static final Set<String> RETRIED = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private static final long RPC_TIMEOUT_MS = 5000;
    /** Generous: on a loaded 2-core machine three containers of three brokers take a while to start. */
    private static final Duration START_WAIT = Duration.ofSeconds(240);
    private static final Duration FAILOVER_WAIT = Duration.ofSeconds(90);
    /** A broker added to a running container catches up and is handed its group's leadership well within this. */
    private static final Duration SPREAD_WAIT = Duration.ofSeconds(90);
    /**
     * The election timeout of the test's brokers (raftElectionTimeoutMs, the default). The longest cg0 goes without an
     * acknowledged send while its leader moves back to the restarted container is reported against this, plus the
     * allowances of {@link #MOVE_ROUTE_POLL_MS} and of the machine (the longest the unmoved groups went meanwhile).
     */
    private static final long ELECTION_TIMEOUT_MS = 300;
    /**
     * How often the senders during the move back ask the nameserver for the route. A client learns of a new master
     * only from the nameserver, so a move costs the client up to one such interval after the new master registered,
     * however fast the transfer is: that much is allowed on top of the election timeout.
     */
    private static final long MOVE_ROUTE_POLL_MS = 200;
    /**
     * A node is caught up when its leader sees it at most this many entries behind: one append message (the Raft
     * library's default {@code maxEntriesPerMessage}), the lag from which a leader may hand its leadership over.
     */
    private static final long CAUGHT_UP_ENTRIES = 256;
    /**
     * Threads a broker added to a running container may start: its own RocketMQ thread pools and services (measured
     * about 100) and none of the Raft library's, which the group shares; loose, as the broker's pools start threads
     * on demand. A thread per group of the library is caught by the exact count of those (see checkAddedGroupCost).
     */
    private static final long MAX_THREADS_PER_GROUP = 150;

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private BrokerContainers cluster;

    @AfterEach
    void stopAll() throws InterruptedException {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void threeContainersSpreadTheLeadersSurviveAKillAndSpreadThemAgain() throws Throwable {
        try {
            scenario();
        } catch (Throwable t) {
            if (cluster != null) {
                cluster.printOutputs(System.err);
            }
            throw t;
        }
    }

    private void scenario() throws Exception {
        cluster = new BrokerContainers(tmp);
        Set<Integer> all = Set.of(0, 1, 2);
        cluster.start(List.of(all, all, Set.of(0, 1)));
        DefaultMQAdminExt admin = new DefaultMQAdminExt(BrokerGroup.clientGroup("container-admin"));
        admin.setNamesrvAddr(cluster.namesrvAddr());
        admin.start();
        cluster.onClose(admin::shutdown);
        // mqadmin addBroker -c <container 2> -b <its cg2.conf>: the third broker of cg2 joins at run time. The same
        // request as mqadmin's, with a longer timeout than its 20 s: the reply comes once the broker started, which
        // on a loaded machine can take longer. Sent once: a second add of a hosted group is refused.
        await("container 2's admin port").atMost(START_WAIT).pollInterval(Duration.ofMillis(500))
            .until(() -> LoopbackPortsProbe.open(cluster.adminAddr(2)));
        // Before the add, cg0 and cg1 are led from their own containers and cg2 (no preferredLeaderId in its confs)
        // from container 0 or 1: its node on container 2 does not run yet.
        awaitSpread(Set.of(0, 1), START_WAIT);
        cluster.awaitLeader(2, Set.of(0, 1), START_WAIT);
        System.out.printf("leaders per container before the add: %s%n", cluster.leadersPerContainer());
        JvmStats beforeAdd = JvmStats.of(cluster.container(2).pid());
        admin.getDefaultMQAdminExtImpl().getMqClientInstance().getMQClientAPIImpl()
            .addBroker(cluster.adminAddr(2), cluster.brokerConf(2, 2).toString(), 180_000);
        // A second add of the same group is refused with one line naming the file, and the first broker goes on.
        String second = null;
        try {
            admin.addBrokerToContainer(cluster.adminAddr(2), cluster.brokerConf(2, 2).toString());
        } catch (org.apache.rocketmq.client.exception.MQBrokerException e) {
            second = e.getErrorMessage();
        }
        System.out.println("a second addBroker of cg2: " + second);
        assertTrue(second != null && second.contains("hosted here already")
            && second.contains(cluster.brokerConf(2, 2).toString()), "second addBroker answered: " + second);

        // The container chose n2 for cg2: once caught up, cg2's node on container 2 is handed the leadership.
        long t0 = System.nanoTime();
        awaitSpread(Set.of(0, 1, 2), SPREAD_WAIT);
        System.out.printf("leaders per container before: %s (spread %d ms after the add)%n",
            cluster.leadersPerContainer(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
        checkAddedGroupCost(beforeAdd, JvmStats.of(cluster.container(2).pid()));

        DefaultMQProducer producer = cluster.producer("p-container");
        MQClientAPIImpl api = producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl();
        List<String> topics = new ArrayList<>();
        for (int g = 0; g < BrokerContainers.SIZE; g++) {
            String topic = "ContainerTopic" + g;
            topics.add(topic);
            String master = cluster.brokerAddr(g, g);
            await("create " + topic + " on " + BrokerContainers.group(g)).atMost(Duration.ofSeconds(60))
                .pollInterval(Duration.ofMillis(500)).ignoreExceptions().until(() -> {
                    api.createTopic(master, "TBW102", topicConfig(topic), RPC_TIMEOUT_MS);
                    return true;
                });
        }
        Map<String, Set<String>> acked = new TreeMap<>();
        for (String t : topics) {
            acked.put(t, new HashSet<>());
        }
        sendAll(producer, topics, "before", acked);
        // More of cg0 than the 1,024 entries between two commit checkpoints of its Raft log: after the kill the node
        // on container 0 starts from a checkpoint that covers some of what it stored, not from nothing, and its index
        // must be rebuilt for those (queried below).
        sendAll(producer, List.of(topics.get(0)), "bulk", CHECKPOINTED_MESSAGES, acked);
        // The checkpoint is written as the node applies entries it synced (every second, flush=async): a send at a
        // time until it covers most of them.
        java.util.concurrent.atomic.AtomicInteger more = new java.util.concurrent.atomic.AtomicInteger();
        MetaFiles cg0Meta = new MetaFiles(cluster.raftDir(0, 0));
        await("cg0's commit checkpoint on container 0").atMost(Duration.ofSeconds(60))
            .pollInterval(Duration.ofMillis(200)).ignoreExceptions().until(() -> {
                String key = topics.get(0) + "-more-" + more.getAndIncrement();
                SendResult r = producer.send(new Message(topics.get(0), "t", key, BrokerGroup.body(key, BODY_BYTES)));
                if (r.getSendStatus() == SendStatus.SEND_OK) {
                    acked.get(topics.get(0)).add(key);
                }
                return cg0Meta.readCommitCheckpoint() >= CHECKPOINTED_MESSAGES / 2;
            });
        System.out.printf("cg0's commit checkpoint on container 0 before the kill: entry %d of %d sends%n",
            cg0Meta.readCommitCheckpoint(), MESSAGES + CHECKPOINTED_MESSAGES + more.get());

        // kill -9 container 0: cg0 (led there) elects a new leader; cg1 and cg2 keep theirs and take sends.
        cluster.container(0).kill();
        long killed = System.nanoTime();
        int cg0Leader = cluster.awaitLeader(0, Set.of(1, 2), FAILOVER_WAIT);
        System.out.printf("leaders per container during (container 0 killed): %s; cg0 re-elected on container %d "
            + "in %d ms%n", cluster.leadersPerContainer(), cg0Leader,
            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed));
        assertEquals("LEADER", cluster.raftRole(1, 1), "cg1 keeps its leader on container 1");
        assertEquals("LEADER", cluster.raftRole(2, 2), "cg2 keeps its leader on container 2");
        sendAll(producer, topics, "during", acked);

        // Container 0 restarts: its node catches up and cg0's leadership is transferred back to it. Meanwhile a
        // sender per group sends without pause and records the longest time without an acknowledged send.
        List<Sender> senders = new ArrayList<>();
        Map<String, Long> termsBefore = new TreeMap<>();
        for (int g = 0; g < topics.size(); g++) {
            termsBefore.put(topics.get(g), leaderTerm(g));
        }
        for (String t : topics) {
            DefaultMQProducer p = cluster.producer("p-move-" + t, MOVE_ROUTE_POLL_MS);
            // No retries: a refusal a retry would have hidden is counted.
            p.setRetryTimesWhenSendFailed(0);
            senders.add(new Sender(p, t));
        }
        long cg0TermBefore = cluster.raftTerm(0, cg0Leader);
        cluster.container(0).start();
        long restarted = System.nanoTime();
        // The container's Raft nodes start once it booted its brokers; from then on the leadership comes back as soon
        // as cg0's node there caught up: that time, in election timeouts, is what balancing costs.
        await("cg0's node on the restarted container answers").atMost(START_WAIT).pollInterval(Duration.ofMillis(100))
            .until(() -> !"DOWN".equals(cluster.raftRole(0, 0)));
        long nodeBack = System.nanoTime();
        // When cg0's leader first sees the node within one append message of its log (from then on it counts the
        // node's steady time and may hand over): what comes before is the node's catch-up, what comes after the move.
        AtomicLong caughtUp = new AtomicLong();
        AtomicLong mostBehind = new AtomicLong(-1);
        awaitSpread(Set.of(0, 1, 2), START_WAIT, () -> {
            if (caughtUp.get() == 0) {
                long lag = cluster.lagOf(0, cg0Leader, 0);
                mostBehind.accumulateAndGet(lag, Math::max);
                if (lag >= 0 && lag <= CAUGHT_UP_ENTRIES) {
                    caughtUp.set(System.nanoTime());
                }
            }
        });
        long spread = System.nanoTime();
        long spreadMs = TimeUnit.NANOSECONDS.toMillis(spread - nodeBack);
        System.out.printf(Locale.ROOT, "leaders per container after the restart: %s (cg0's node on container 0 answered "
            + "%d ms after the restart; leaders spread again %d ms after that, %.1f election timeouts)%n",
            cluster.leadersPerContainer(), TimeUnit.NANOSECONDS.toMillis(nodeBack - restarted), spreadMs,
            spreadMs / (double) ELECTION_TIMEOUT_MS);
        if (caughtUp.get() != 0) {
            long catchUpMs = TimeUnit.NANOSECONDS.toMillis(caughtUp.get() - nodeBack);
            long moveMs = TimeUnit.NANOSECONDS.toMillis(spread - caughtUp.get());
            System.out.printf(Locale.ROOT, "move back of cg0: its node caught up (within %d entries of the leader's log, "
                + "at most %d behind) %d ms after it answered (%.1f election timeouts); leaders spread again %d ms after "
                + "that (%.1f)%n", CAUGHT_UP_ENTRIES, mostBehind.get(), catchUpMs,
                catchUpMs / (double) ELECTION_TIMEOUT_MS, moveMs, moveMs / (double) ELECTION_TIMEOUT_MS);
        } else {
            System.out.println("move back of cg0: its leader was not seen with the node caught up before the move");
        }
        // The move is over once every sender had acknowledgements from the group's master as the nameserver lists it
        // now (the client's route caught up).
        for (Sender s : senders) {
            long after = s.acknowledged();
            await(s.topic + " acknowledged after the move").atMost(Duration.ofSeconds(60))
                .pollInterval(Duration.ofMillis(200)).until(() -> s.acknowledged() >= after + 20);
        }
        for (Sender s : senders) {
            s.close();
            acked.get(s.topic).addAll(s.acked);
        }
        // Only cg0's leader moves; cg1's and cg2's senders measure what the machine does to sends in the same
        // window (on a loaded machine a container starting three brokers stalls every process for a while).
        long noise = Math.max(senders.get(1).longestGapMs(), senders.get(2).longestGapMs());
        long bound = ELECTION_TIMEOUT_MS + MOVE_ROUTE_POLL_MS + noise;
        for (Sender s : senders) {
            System.out.printf("%s during the move back: longest without an acknowledged send %d ms, %d acknowledged, "
                + "%d failed (%d refused) %s; raft term of its leader %d -> %d%n", s.topic, s.longestGapMs(),
                s.acknowledged(), s.failed.get(), s.refused.get(), s.reasons, termsBefore.get(s.topic),
                leaderTerm(topics.indexOf(s.topic)));
        }
        // The old master holds the sends that reach it while the leadership moves and forwards them to the new one
        // (SendForwardGuard), and stays listed as master until the new one registered: no send is refused, and none
        // finds a route without a master. (A send the client gave up on after its 3 s timeout is not a refusal.)
        assertEquals(0, senders.get(0).refused.get(), "sends of cg0 refused during the move back: "
            + senders.get(0).reasons);
        System.out.printf("move back of cg0: %d ms without an acknowledged send, bound %d ms (election timeout %d + "
            + "route poll %d + the unmoved groups' longest %d)%s%n", senders.get(0).longestGapMs(), bound,
            ELECTION_TIMEOUT_MS, MOVE_ROUTE_POLL_MS, noise, senders.get(0).longestGapMs() <= bound ? "" : ", over it");
        // Reported, not asserted: a wall-clock bound fails whenever the machine starves the processes (two cores, a
        // container booting three brokers), and a term count then shows the elections of a starved leader's
        // check-quorum too. The figures go to the README; the move itself is asserted above (leaders spread again)
        // and below (every acknowledged send read back).
        long cg0TermAfter = cluster.raftTerm(0, 0);
        System.out.printf("move back of cg0: raft term %d -> %d (%s)%n", cg0TermBefore, cg0TermAfter,
            cg0TermAfter == cg0TermBefore + 1 ? "one transfer" : "elections besides the transfer");
        // The senders' sends after the move (at least 20 each, acknowledged by the leaders spread again) are the sends
        // after the restart; every acknowledged one is read back below.

        for (String t : topics) {
            Set<String> want = acked.get(t);
            List<MessageExt> got = BrokerGroup.drain(cluster.namesrvAddr(), t, null,
                m -> BrokerGroup.keysOf(m).containsAll(want), Duration.ofSeconds(90));
            Set<String> keys = BrokerGroup.checkBodies(got, BODY_BYTES);
            Set<String> lost = new HashSet<>(want);
            lost.removeAll(keys);
            System.out.printf("%s: acked %d, read %d (%d distinct), lost %d%n", t, want.size(), got.size(),
                keys.size(), lost.size());
            assertEquals(Set.of(), lost, "acknowledged messages of " + t + " not read back");
        }
        // cg0's master is the node of the container that was killed: its index of what it stored before (deleted by
        // RocketMQ's index service at a start after a crash, its last file not being full) was rebuilt from the log,
        // so mqadmin queryMsgByKey finds each message sent before the kill, once.
        List<String> queried = new ArrayList<>();
        for (int i = 0; i < MESSAGES; i++) {
            queried.add(topics.get(0) + "-before-" + i);
        }
        for (int i = 0; i < CHECKPOINTED_MESSAGES; i += 25) {
            queried.add(topics.get(0) + "-bulk-" + i);
        }
        // Asked of the master the nameserver lists now, cg0's node on the restarted container: the admin client's
        // route may date from the outage, when another node was cg0's master.
        var adminClient = admin.getDefaultMQAdminExtImpl().getMqClientInstance();
        adminClient.updateTopicRouteInfoFromNameServer(topics.get(0));
        assertEquals(cluster.brokerAddr(0, 0), adminClient.getAnExistTopicRouteData(topics.get(0)).getBrokerDatas()
            .get(0).getBrokerAddrs().get(0L), "the admin client's route names cg0's node on container 0 as master");
        List<String> notFoundOnce = new ArrayList<>();
        for (String key : queried) {
            List<MessageExt> found;
            try {
                found = admin.queryMessage(topics.get(0), key, 32, 0, Long.MAX_VALUE).getMessageList();
            } catch (org.apache.rocketmq.client.exception.MQClientException e) {
                // The client's answer when no broker found the key (mqadmin prints it the same way).
                if (e.getResponseCode() != org.apache.rocketmq.remoting.protocol.ResponseCode.NO_MESSAGE) {
                    throw e;
                }
                found = List.of();
            }
            // A send the test retried may be stored twice (two offsets); one stored message found twice is an index
            // that holds it twice.
            long stored = found.stream().mapToLong(MessageExt::getCommitLogOffset).distinct().count();
            if (found.isEmpty() || stored != found.size() || (stored > 1 && !RETRIED.contains(key))) {
                notFoundOnce.add(key + " found " + found.size() + " times at " + stored + " offsets");
            }
        }
        System.out.printf("query by key on cg0's restarted master: %d of %d messages sent before the kill found, none "
            + "twice (%d sends of the test retried in all)%n",
            queried.size() - notFoundOnce.size(), queried.size(), RETRIED.size());
        assertEquals(List.of(), notFoundOnce.subList(0, Math.min(5, notFoundOnce.size())), notFoundOnce.size()
            + " messages of cg0 sent before the kill, queried by key on its restarted master, not found once");

        // mqadmin removeBroker -c <container 2> -b RaftContainerCluster:cg2:3 (n2's stable id): that broker stops,
        // its group elects a leader among the other two, and the container's other brokers go on.
        // cg2's node there leads: it hands the leadership over before it stops (review finding C3).
        assertEquals("LEADER", cluster.raftRole(2, 2), "cg2 leads on container 2 before the removal");
        // Lines in containers 0 and 1's logs before the removal: their refusals of cg2 before its add do not count.
        long[] linesBefore = new long[2];
        for (int c = 0; c < 2; c++) {
            linesBefore[c] = ChildJvm.tailOf(brokerLog(c), Integer.MAX_VALUE).lines().count();
        }
        long removing = System.nanoTime();
        admin.removeBrokerFromContainer(cluster.adminAddr(2), BrokerContainers.CLUSTER, BrokerContainers.group(2), 3);
        await("cg2's node on container 2 stopped").atMost(Duration.ofSeconds(30))
            .until(() -> "DOWN".equals(cluster.raftRole(2, 2)));
        int cg2Leader = cluster.awaitLeader(2, Set.of(0, 1), FAILOVER_WAIT);
        assertTrue(cg2Leader == 0 || cg2Leader == 1);
        String handOff = ChildJvm.tailOf(brokerLog(2), 2000).lines().filter(l -> l.contains("[cg2 n2]")
            && l.contains("handed the leadership to")).findFirst().orElse(null);
        System.out.printf("removeBroker cg2 (leader) from container 2: cg2 led from container %d %d ms after the "
            + "request; %s%n", cg2Leader, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - removing), handOff);
        assertTrue(handOff != null, "container 2 did not hand cg2's leadership over before the removal");
        // cg2's other nodes still count n2 a voter and go on sending to container 2: refused, one WARN per connection.
        for (int c = 0; c < 2; c++) {
            long warns = ChildJvm.tailOf(brokerLog(c), Integer.MAX_VALUE).lines().skip(linesBefore[c])
                .filter(l -> l.contains("WARN") && l.contains("refused") && l.contains("cg2")).count();
            System.out.printf("container %d: %d WARN lines of refused cg2 frames after the removal%n", c, warns);
            assertTrue(warns <= 2, "container " + c + " logged " + warns + " WARN lines of refused cg2 frames");
        }
        assertEquals("LEADER", cluster.raftRole(1, 1), "cg1 keeps its leader after the removal");
        System.out.printf("leaders per container after removeBroker cg2 from container 2: %s%n",
            cluster.leadersPerContainer());

        // Last, SIGTERM to container 1, as mqshutdown sends it: before it shuts any of its brokers down (one after the
        // other, seconds each) it hands cg1's leadership over, so cg1 takes sends again long before the container
        // has exited; a leader kept through the shutdown left cg1 without a master from its broker's turn until its
        // node stopped.
        DefaultMQProducer stopProducer = cluster.producer("p-stop-" + topics.get(1), MOVE_ROUTE_POLL_MS);
        stopProducer.setRetryTimesWhenSendFailed(0);
        Sender during = new Sender(stopProducer, topics.get(1));
        await(topics.get(1) + " acknowledged before the stop").atMost(Duration.ofSeconds(60))
            .until(() -> during.acknowledged() >= 20);
        long stopping = System.nanoTime();
        assertTrue(cluster.container(1).stop(Duration.ofSeconds(120)), "container 1 did not exit within 120 s");
        long stopMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopping);
        int cg1Leader = cluster.awaitLeader(1, Set.of(0, 2), FAILOVER_WAIT);
        long ackedAtExit = during.acknowledged();
        await(topics.get(1) + " acknowledged after container 1 exited").atMost(Duration.ofSeconds(60))
            .until(() -> during.acknowledged() >= ackedAtExit + 20);
        during.close();
        String handedCg1 = ChildJvm.tailOf(brokerLog(1), 5000).lines().filter(l -> l.contains("[cg1 n1]")
            && l.contains("handed the leadership to")).findFirst().orElse(null);
        System.out.printf("SIGTERM to container 1: exited in %d ms; cg1 led from container %d; longest without an "
            + "acknowledged send of %s %d ms, %d failed %s; %s%n", stopMs, cg1Leader, topics.get(1),
            during.longestGapMs(), during.failed.get(), during.reasons, handedCg1);
        assertTrue(5 * during.longestGapMs() < stopMs, "cg1 took no send for " + during.longestGapMs() + " ms of the "
            + stopMs + " ms container 1 took to exit");
        assertTrue(handedCg1 != null, "container 1 did not hand cg1's leadership over before its shutdown");
    }

    /** Container {@code c}'s log file (its brokers and the Raft library log there). */
    private Path brokerLog(int c) {
        return cluster.containerDir(c).resolve("logs").resolve("rocketmqlogs").resolve("broker_default.log");
    }

    /**
     * The threads and heap container 2 gained with its third group (added with {@code addBroker}): printed, and the
     * threads of the Raft library (driver loops, fsync threads) must not grow at all: the group shares the
     * container's. The whole process's threads must grow by at most {@link #MAX_THREADS_PER_GROUP} (the broker's own
     * thread pools).
     */
    private static void checkAddedGroupCost(JvmStats before, JvmStats after) {
        long threads = after.threads().size() - before.threads().size();
        long raftBefore = before.count(JvmStats.RAFT_THREAD);
        long raftAfter = after.count(JvmStats.RAFT_THREAD);
        List<String> newRaft = new ArrayList<>(after.threads().stream().filter(JvmStats.RAFT_THREAD).toList());
        newRaft.removeAll(before.threads());
        System.out.printf("added group: threads +%d (%d -> %d), heap +%d MiB (%d -> %d MiB live); Raft threads %d -> "
            + "%d, new: %s%n", threads, before.threads().size(), after.threads().size(),
            (after.heapUsed() - before.heapUsed()) >> 20, before.heapUsed() >> 20, after.heapUsed() >> 20, raftBefore,
            raftAfter, newRaft);
        assertEquals(raftBefore, raftAfter, "the added group started Raft threads of its own: " + newRaft);
        assertTrue(threads <= MAX_THREADS_PER_GROUP, "the added group started " + threads + " threads, more than "
            + MAX_THREADS_PER_GROUP);
    }

    /**
     * Sends to one topic without pause on a thread of its own (each send as soon as the previous one ended), keeping
     * the acknowledged keys and the longest time between two acknowledgements (from its start to the first one too).
     */
    private static final class Sender implements AutoCloseable {
        final String topic;
        final Set<String> acked = java.util.concurrent.ConcurrentHashMap.newKeySet();
        final java.util.concurrent.atomic.AtomicLong failed = new java.util.concurrent.atomic.AtomicLong();
        /** Failed sends that were not the client's timeout: a broker refused them, or the route had no master. */
        final java.util.concurrent.atomic.AtomicLong refused = new java.util.concurrent.atomic.AtomicLong();
        /** Why sends failed: the first words of each distinct reason, with counts. */
        final Map<String, Integer> reasons = new java.util.concurrent.ConcurrentSkipListMap<>();
        private final java.util.concurrent.atomic.AtomicLong longestNanos = new java.util.concurrent.atomic.AtomicLong();
        private final Thread thread;
        private volatile boolean running = true;

        Sender(DefaultMQProducer producer, String topic) {
            this.topic = topic;
            this.thread = new Thread(() -> run(producer), "sender-" + topic);
            thread.setDaemon(true);
            thread.start();
        }

        private void run(DefaultMQProducer producer) {
            long last = System.nanoTime();
            for (int i = 0; running; i++) {
                String key = topic + "-move-" + i;
                try {
                    SendResult r = producer.send(new Message(topic, "t", key, BrokerGroup.body(key, BODY_BYTES)));
                    if (r.getSendStatus() == SendStatus.SEND_OK) {
                        long now = System.nanoTime();
                        acked.add(key);
                        longestNanos.accumulateAndGet(now - last, Math::max);
                        last = now;
                        continue;
                    }
                    reasons.merge(String.valueOf(r.getSendStatus()), 1, Integer::sum);
                } catch (Exception e) {
                    // refused or timed out: counted, and the next send follows at once
                    // The innermost cause says why (a client exception wraps the broker's answer or the timeout).
                    Throwable root = e;
                    while (root.getCause() != null && root.getCause() != root) {
                        root = root.getCause();
                    }
                    String why = root.getClass().getSimpleName() + ": " + root.getMessage();
                    reasons.merge(why.substring(0, Math.min(why.length(), 200)).replace('\n', ' '), 1, Integer::sum);
                    if (!clientTimeout(e)) {
                        refused.incrementAndGet();
                    }
                }
                failed.incrementAndGet();
            }
        }

        long acknowledged() {
            return acked.size();
        }

        /**
         * Whether the client gave up waiting for an answer (its send timeout), rather than being answered with a
         * refusal (a broker's response code, SYSTEM_BUSY of a full send queue included) or finding no master.
         */
        private static boolean clientTimeout(Throwable e) {
            for (Throwable c = e; c != null; c = c.getCause()) {
                if (c instanceof org.apache.rocketmq.client.exception.MQBrokerException) {
                    return false;
                }
            }
            for (Throwable c = e; c != null; c = c.getCause()) {
                if (c instanceof org.apache.rocketmq.remoting.exception.RemotingTimeoutException
                    || c instanceof org.apache.rocketmq.remoting.exception.RemotingTooMuchRequestException
                    && String.valueOf(c.getMessage()).contains("call timeout")) {
                    return true;
                }
            }
            return false;
        }

        long longestGapMs() {
            return TimeUnit.NANOSECONDS.toMillis(longestNanos.get());
        }

        @Override
        public void close() throws InterruptedException {
            running = false;
            thread.join(TimeUnit.SECONDS.toMillis(30));
        }
    }

    /** The raft term of group g's node on container g (its leader when spread), or -1 when it does not answer. */
    private long leaderTerm(int g) {
        return cluster.raftTerm(g, g);
    }

    /** Whether something listens at host:port. */
    private static final class LoopbackPortsProbe {
        static boolean open(String hostPort) {
            int colon = hostPort.lastIndexOf(':');
            try (java.net.Socket s = new java.net.Socket()) {
                s.connect(new java.net.InetSocketAddress(hostPort.substring(0, colon),
                    Integer.parseInt(hostPort.substring(colon + 1))), 1000);
                return true;
            } catch (java.io.IOException e) {
                return false;
            }
        }
    }

    /** Waits until group g is led from container g and registered so, for every group of {@code groups}. */
    private void awaitSpread(Set<Integer> groups, Duration atMost) {
        awaitSpread(groups, atMost, () -> { });
    }

    /** {@link #awaitSpread(Set, Duration)}, running {@code eachPoll} before each look (a sample taken meanwhile). */
    private void awaitSpread(Set<Integer> groups, Duration atMost, Runnable eachPoll) {
        // Polled every 100 ms: the time to spread again is reported in election timeouts (300 ms).
        await("groups " + groups + " led from their own containers").atMost(atMost)
            .pollInterval(Duration.ofMillis(100)).until(() -> {
                eachPoll.run();
                for (int g : groups) {
                    if (!"LEADER".equals(cluster.raftRole(g, g))
                        || !cluster.brokerAddr(g, g).equals(cluster.brokerAddrs(g).get(0L))) {
                        return false;
                    }
                }
                return true;
            });
    }

    /** Sends {@link #MESSAGES} to each topic; every acknowledged key is recorded. Every send must be acknowledged. */
    private static void sendAll(DefaultMQProducer producer, List<String> topics, String phase,
                                Map<String, Set<String>> acked) {
        sendAll(producer, topics, phase, MESSAGES, acked);
    }

    private static void sendAll(DefaultMQProducer producer, List<String> topics, String phase, int count,
                                Map<String, Set<String>> acked) {
        for (String t : topics) {
            for (int i = 0; i < count; i++) {
                String key = t + "-" + phase + "-" + i;
                int[] tries = {0};
                // Sent at once; again every 200 ms while a broker refuses it (or the answer is late: then it may be
                // stored twice, which the query by key below allows for such a key only).
                await("send " + key).atMost(Duration.ofSeconds(60)).pollDelay(Duration.ZERO)
                    .pollInterval(Duration.ofMillis(200)).ignoreExceptions().until(() -> {
                        if (++tries[0] > 1) {
                            RETRIED.add(key);
                        }
                        SendResult r = producer.send(new Message(t, "t", key, BrokerGroup.body(key, BODY_BYTES)));
                        return r.getSendStatus() == SendStatus.SEND_OK;
                    });
                acked.get(t).add(key);
            }
        }
    }

    private static TopicConfig topicConfig(String topic) {
        TopicConfig c = new TopicConfig(topic, 2, 2);
        c.setPerm(6);
        return c;
    }
}
