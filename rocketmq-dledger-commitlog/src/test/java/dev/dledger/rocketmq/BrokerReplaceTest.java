package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.cli.DledgerCommand;
import dev.dledger.raft.transport.ClientProtocol;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Replacing a dead broker of a running group online, as the README tells an operator, with every part real: a
 * nameserver and three brokers ({@link RaftBrokerStartup}) as child JVMs, RocketMQ's producer and consumer here, and
 * {@code dledger-cli} ({@link DledgerCommand}, the main class of {@code bin/dledger-cli}) as a process for each step.
 *
 * <p>Under a steady synchronous send load: kill -9 a follower; start a new broker n3 with {@code raftJoin=true};
 * {@code member add n3 --address ...} on the leader (it catches n3 up before making it a voter); {@code member remove}
 * the dead one. The longest gap between two successful sends over these steps is printed and must stay below one
 * election timeout. Then every remaining broker restarts, one at a time, with its unchanged broker.conf (the old ones
 * still list the dead broker and not n3): each must run the group the log agreed on, reach n3 and admit it. The
 * leader goes first, stopped as {@code mqshutdown} stops it (SIGTERM): the group must take sends again within the
 * first half of the time the stopped broker takes to exit (it hands its leadership over first). At the
 * end, every acknowledged message is read back, and the nameserver lists the three live brokers only.
 */
class BrokerReplaceTest {

    private static final int BODY_BYTES = 1024;
    private static final int ELECTION_TIMEOUT_MS = 1000;
    private static final Duration ROLE_WAIT = Duration.ofSeconds(90);

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
    void deadFollowerIsReplacedOnlineAndRestartsAgreeOnTheNewMembers() throws Throwable {
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
        group = new BrokerGroup(tmp).withConf("raftElectionTimeoutMs=" + ELECTION_TIMEOUT_MS);
        group.start();
        int leader = group.awaitRoles(Set.of(0, 1, 2), ROLE_WAIT);
        int dead = leader == 1 ? 2 : 1;
        System.out.println("group up after " + sinceMs(began) + " ms: leader n" + leader + "; n" + dead
            + " will die and be replaced by n3");

        Sender sender = new Sender(group.producer("p-replace"), "ReplaceTopic");
        Thread senderThread = new Thread(sender, "replace-sender");
        senderThread.start();
        try {
            await().atMost(Duration.ofSeconds(60)).until(() -> sender.acked.size() >= 300);

            // 1. A follower dies.
            group.broker(dead).kill();
            awaitMoreAcks(sender, 200);

            // 2. The replace steps, timed from the successful sends.
            long replaceFrom = System.nanoTime();
            int fresh = group.addBroker();
            assertEquals(3, fresh);
            String address = "127.0.0.1:" + group.raftAddress(fresh).getPort();
            Cli add = cli("member", "add", "n3", "--address", address, "--wait-ms", "120000");
            assertEquals(0, add.exit, "member add n3: " + add.output);
            assertTrue(add.output.contains("n3 is a voter"), add.output);
            Cli remove = cli("member", "remove", "n" + dead);
            assertEquals(0, remove.exit, "member remove n" + dead + ": " + remove.output);
            awaitMoreAcks(sender, 200);
            long replaceTo = System.nanoTime();
            long gapMs = sender.longestGapMs(replaceFrom, replaceTo);
            System.out.println("replace steps took " + TimeUnit.NANOSECONDS.toMillis(replaceTo - replaceFrom)
                + " ms; longest gap between successful sends meanwhile: " + gapMs + " ms (election timeout "
                + ELECTION_TIMEOUT_MS + " ms)");
            assertTrue(gapMs < ELECTION_TIMEOUT_MS, "sends stopped for " + gapMs + " ms during the replace steps");

            Set<Integer> alive = new TreeSet<>(Set.of(0, 1, 2, 3));
            alive.remove(dead);
            leader = group.awaitRoles(alive, ROLE_WAIT);

            // 3. Bad input: one line each, nothing changes.
            Cli again = cli("member", "add", "n3", "--address", address);
            assertEquals(1, again.exit);
            assertTrue(again.output.contains("error: n3 is already a voter of group " + BrokerGroup.BROKER_NAME),
                again.output);
            Cli removeLeader = cli("member", "remove", "n" + leader);
            assertEquals(1, removeLeader.exit);
            assertTrue(removeLeader.output.contains("error: n" + leader + " leads group"), removeLeader.output);
            Cli removeGone = cli("member", "remove", "n" + dead);
            assertEquals(1, removeGone.exit);
            assertTrue(removeGone.output.contains("error: n" + dead + " is not a voter"), removeGone.output);

            // 4. Every remaining broker restarts, one at a time, on its unchanged broker.conf; the leader first. A
            // stop is a SIGTERM, as mqshutdown sends: the leader hands its leadership over before the broker's
            // shutdown (seconds of it), so the group takes sends again long before the stopped broker has exited.
            List<Integer> order = new ArrayList<>(alive);
            order.remove(Integer.valueOf(leader));
            order.add(0, leader);
            for (int i : order) {
                boolean led = i == leader;
                long stopAt = System.nanoTime();
                group.broker(i).stop(Duration.ofSeconds(30));
                long exitedAt = System.nanoTime();
                group.broker(i).start();
                leader = group.awaitRoles(alive, ROLE_WAIT);
                awaitMoreAcks(sender, 100);
                long stopMs = TimeUnit.NANOSECONDS.toMillis(exitedAt - stopAt);
                long stopGapMs = sender.longestGapMs(stopAt, exitedAt);
                System.out.println("n" + i + (led ? " (the leader)" : "") + " stopped in " + stopMs
                    + " ms; longest gap between successful sends meanwhile: " + stopGapMs + " ms");
                if (led) {
                    assertTrue(2 * stopGapMs < stopMs, "the group took no send for " + stopGapMs + " ms of the " + stopMs
                        + " ms its stopped leader took to exit");
                }
                awaitCaughtUp(alive, leader);
                System.out.println("n" + i + " restarted; leader n" + leader + ", every member caught up ("
                    + sinceMs(stopAt) + " ms)");
            }
            String conf0 = Files.readString(group.brokerDir(0).resolve("broker.conf"));
            assertTrue(conf0.contains("dLegerPeers=n0-") && !conf0.contains("n3-"), "broker.conf was rewritten");
        } finally {
            sender.stop.set(true);
            senderThread.join(30_000);
        }

        // 5. Everything acknowledged is read back; the route lists the three live brokers.
        Set<String> acked = new HashSet<>(sender.acked);
        List<MessageExt> all = group.drain("ReplaceTopic", null, got -> BrokerGroup.keysOf(got).containsAll(acked),
            Duration.ofSeconds(90));
        Set<String> consumed = BrokerGroup.checkBodies(all, BODY_BYTES);
        Set<String> lost = new HashSet<>(acked);
        lost.removeAll(consumed);
        Map<Long, String> route = group.brokerAddrs();
        System.out.println("replace: sent " + sender.sent + ", acked " + acked.size() + ", consumed " + consumed.size()
            + ", lost " + lost.size() + "; route " + route + " (at " + sinceMs(began) + " ms)");
        assertEquals(Set.of(), lost, "acknowledged messages lost");
        Set<String> routed = new TreeSet<>(route.values());
        Set<String> expected = new TreeSet<>();
        for (int i = 0; i < 4; i++) {
            if (i != dead) {
                expected.add(group.brokerAddr(i));
            }
        }
        assertEquals(expected, routed, "the route lists the live members only");
        assertEquals(group.brokerAddr(3), route.get(0L).equals(group.brokerAddr(3)) ? route.get(0L) : route.get(4L),
            "n3 is brokerId 4 as a slave (or 0 as master)");
    }

    /** Waits until every member's commit index reaches the leader's commit index as it is now. */
    private void awaitCaughtUp(Set<Integer> members, int leader) {
        ClientProtocol.Response l = group.raftStatus(leader);
        long target = l == null ? Long.MAX_VALUE : l.index();
        await("every member reaches the leader's commit index " + target).atMost(Duration.ofSeconds(60))
            .pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
                List<String> behind = new ArrayList<>();
                for (int i : members) {
                    ClientProtocol.Response r = group.raftStatus(i);
                    if (r == null || r.index() < target) {
                        behind.add("n" + i + "=" + (r == null ? "DOWN" : r.index()));
                    }
                }
                assertEquals(List.of(), behind, "members behind commit index " + target);
            });
    }

    private static void awaitMoreAcks(Sender sender, int more) {
        int now = sender.acked.size();
        await("" + more + " more acknowledged sends").atMost(Duration.ofSeconds(90))
            .until(() -> sender.acked.size() >= now + more);
    }

    private record Cli(int exit, String output) {
    }

    /** Runs {@code dledger-cli} as an operator does, against the group's Raft ports with the admin token. */
    private Cli cli(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx96m", "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
            DledgerCommand.class.getName()));
        cmd.addAll(List.of(args));
        cmd.addAll(List.of("-g", BrokerGroup.BROKER_NAME, "-p", group.raftPeers(), "--token",
            BrokerGroup.RAFT_ADMIN_TOKEN));
        Path out = Files.createTempFile(tmp, "cli", ".out");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        if (!p.waitFor(180, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            throw new AssertionError("dledger-cli " + String.join(" ", args) + " did not end within 180 s:\n"
                + Files.readString(out));
        }
        Cli r = new Cli(p.exitValue(), Files.readString(out));
        System.out.println("$ dledger-cli " + String.join(" ", args) + " -g " + BrokerGroup.BROKER_NAME
            + " -p ... --token <token>\n" + r.output.strip() + "\n(exit " + r.exit + ")");
        return r;
    }

    private static long sinceMs(long startNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
    }

    /** One producer sending synchronously, one message after another, remembering when each send succeeded. */
    private static final class Sender implements Runnable {
        final DefaultMQProducer producer;
        final String topic;
        final Set<String> acked = ConcurrentHashMap.newKeySet();
        final ConcurrentLinkedQueue<Long> okAt = new ConcurrentLinkedQueue<>();
        final AtomicInteger sent = new AtomicInteger();
        final AtomicBoolean stop = new AtomicBoolean();

        Sender(DefaultMQProducer producer, String topic) {
            this.producer = producer;
            this.topic = topic;
        }

        @Override
        public void run() {
            for (int i = 0; !stop.get(); i++) {
                String key = "r-" + i;
                sent.incrementAndGet();
                boolean ok;
                try {
                    ok = producer.send(new Message(topic, "t", key, BrokerGroup.body(key, BODY_BYTES)))
                        .getSendStatus() == SendStatus.SEND_OK;
                } catch (Exception e) {
                    ok = false;
                }
                if (ok) {
                    acked.add(key);
                    okAt.add(System.nanoTime());
                } else {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
                }
            }
        }

        /** The longest time in [{@code from}, {@code to}] without a successful send, in ms. */
        long longestGapMs(long from, long to) {
            long last = from;
            long longest = 0;
            for (long t : okAt) {
                if (t < from) {
                    continue;
                }
                if (t > to) {
                    break;
                }
                longest = Math.max(longest, t - last);
                last = t;
            }
            longest = Math.max(longest, to - last);
            return TimeUnit.NANOSECONDS.toMillis(longest);
        }
    }
}
