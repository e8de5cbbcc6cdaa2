package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.impl.MQClientAPIImpl;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.junit.jupiter.api.AfterEach;
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
 * leaders are spread again (leadership transfer to the preferred leader). Every acknowledged message is read back.
 * Last, {@code mqadmin removeBroker} takes one broker out of a running container; its group goes on.
 */
class BrokerContainerTest {

    private static final int BODY_BYTES = 256;
    private static final int MESSAGES = 40;
    private static final long RPC_TIMEOUT_MS = 5000;
    /** Generous: on a loaded 2-core machine three containers of three brokers take a while to start. */
    private static final Duration START_WAIT = Duration.ofSeconds(240);
    private static final Duration FAILOVER_WAIT = Duration.ofSeconds(90);
    /** A broker added to a running container catches up and is handed its group's leadership well within this. */
    private static final Duration SPREAD_WAIT = Duration.ofSeconds(90);

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

        // Container 0 restarts: its node catches up and cg0's leadership is transferred back to it.
        cluster.container(0).start();
        long restarted = System.nanoTime();
        awaitSpread(Set.of(0, 1, 2), START_WAIT);
        System.out.printf("leaders per container after the restart: %s (spread again %d ms after the restart)%n",
            cluster.leadersPerContainer(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - restarted));
        sendAll(producer, topics, "after", acked);

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

        // mqadmin removeBroker -c <container 2> -b RaftContainerCluster:cg2:3 (n2's stable id): that broker stops,
        // its group elects a leader among the other two, and the container's other brokers go on.
        admin.removeBrokerFromContainer(cluster.adminAddr(2), BrokerContainers.CLUSTER, BrokerContainers.group(2), 3);
        await("cg2's node on container 2 stopped").atMost(Duration.ofSeconds(30))
            .until(() -> "DOWN".equals(cluster.raftRole(2, 2)));
        int cg2Leader = cluster.awaitLeader(2, Set.of(0, 1), FAILOVER_WAIT);
        assertTrue(cg2Leader == 0 || cg2Leader == 1);
        assertEquals("LEADER", cluster.raftRole(1, 1), "cg1 keeps its leader after the removal");
        System.out.printf("leaders per container after removeBroker cg2 from container 2: %s%n",
            cluster.leadersPerContainer());
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
        await("groups " + groups + " led from their own containers").atMost(atMost)
            .pollInterval(Duration.ofMillis(500)).until(() -> {
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
        for (String t : topics) {
            for (int i = 0; i < MESSAGES; i++) {
                String key = t + "-" + phase + "-" + i;
                await("send " + key).atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
                    .ignoreExceptions().until(() -> {
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
