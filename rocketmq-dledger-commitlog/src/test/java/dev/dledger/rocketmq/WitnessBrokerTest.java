package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 19 end to end: a broker group of two data brokers (n0, n1) and a witness (n2, {@code raftWitness=true}: the
 * Raft node only) as real processes, with the real nameserver and producer and consumer. While a producer keeps
 * sending: kill -9 of the leader (the other data broker becomes master), its restart; kill -9 of the follower data
 * broker while sends go on (only the leader and the witness hold them), its restart, and at once kill -9 of the leader
 * (the returning follower gets the tail through the witness). Every acknowledged message is consumed with its body,
 * the witness is never listed at the nameserver, and its disk holds under a tenth of a data broker's. Prints
 * {@code witness: data disk D1 and D2 bytes, witness disk W bytes, lost N}.
 */
class WitnessBrokerTest {

    private static final int BODY_BYTES = 1024;
    private static final int WITNESS = 2;
    private static final Duration ROLE_WAIT = Duration.ofSeconds(120);
    private static final Duration STEP_WAIT = Duration.ofSeconds(120);

    @TempDir
    Path tmp;

    private BrokerGroup group;

    @AfterEach
    void stopAll() throws InterruptedException {
        if (group != null) {
            group.close();
        }
    }

    @Test
    @Timeout(value = 900, unit = TimeUnit.SECONDS)
    void twoDataBrokersAndAWitnessLoseNothingThroughKillsAndTheWitnessKeepsLittle() throws Throwable {
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
        // Small data files, so that the witness can drop whole files of a run of a few MB.
        group = new BrokerGroup(tmp).withWitness(WITNESS).withConf("mappedFileSizeCommitLog=" + (128 << 10));
        group.start();
        Set<Integer> witnesses = Set.of(WITNESS);
        int leader = group.awaitRoles(Set.of(0, 1, 2), witnesses, ROLE_WAIT);
        System.out.println("witness group up: n" + leader + " is the master, n" + WITNESS + " the witness ("
            + group.raftRole(WITNESS) + ")");

        String topic = "WitnessTopic";
        Sender sender = new Sender(group.producer("p-witness"), topic);
        Thread t = new Thread(sender, "witness-sender");
        t.start();
        try {
            sender.awaitAcked(600);

            // 1. kill -9 of the leader: the other data broker becomes the master.
            group.broker(leader).kill();
            int other = 1 - leader;
            group.awaitRoles(Set.of(other, WITNESS), witnesses, ROLE_WAIT);
            System.out.println("n" + leader + " killed; n" + other + " is the master");
            sender.awaitAcked(sender.acked.size() + 300);

            // 2. The killed broker comes back and catches up.
            group.broker(leader).start();
            int now = group.awaitRoles(Set.of(0, 1, 2), witnesses, ROLE_WAIT);
            sender.awaitAcked(sender.acked.size() + 300);
            System.out.println("n" + leader + " restarted; n" + now + " is the master");

            // 3. kill -9 of the follower data broker; sends go on: the leader and the witness hold them.
            int follower = 1 - now;
            group.broker(follower).kill();
            sender.awaitAcked(sender.acked.size() + 800);
            System.out.println("n" + follower + " killed; " + sender.acked.size() + " acknowledged so far");

            // 4. The follower returns, and the leader is killed at once: the follower gets the tail the leader and
            // the witness held through the witness, and becomes the master.
            group.broker(follower).start();
            group.broker(now).kill();
            group.awaitRoles(Set.of(follower, WITNESS), witnesses, ROLE_WAIT);
            System.out.println("n" + follower + " restarted, n" + now + " killed; n" + follower + " is the master");
            sender.awaitAcked(sender.acked.size() + 300);

            // 5. Both data brokers up again.
            group.broker(now).start();
            group.awaitRoles(Set.of(0, 1, 2), witnesses, ROLE_WAIT);
            sender.awaitAcked(sender.acked.size() + 100);
        } finally {
            sender.stop.set(true);
            t.join(TimeUnit.SECONDS.toMillis(60));
        }

        Set<String> acked = new HashSet<>(sender.acked);
        List<MessageExt> consumed = group.drain(topic, null, got -> BrokerGroup.keysOf(got).containsAll(acked),
            Duration.ofSeconds(180));
        Set<String> lost = new HashSet<>(acked);
        lost.removeAll(BrokerGroup.checkBodies(consumed, BODY_BYTES));
        assertTrue(group.brokerAddrs().values().stream().noneMatch(a -> a.equals(group.brokerAddr(WITNESS))),
            "the witness is listed at the nameserver: " + group.brokerAddrs());

        // The witness drops the bodies both data brokers hold: give it the heartbeats that tell it so.
        long[] disk = new long[3];
        await("the witness's disk under a tenth of a data broker's").atMost(Duration.ofSeconds(90))
            .pollInterval(Duration.ofSeconds(1)).until(() -> {
                for (int i = 0; i < 3; i++) {
                    disk[i] = diskBytes(group.brokerDir(i).resolve("store"));
                }
                return disk[WITNESS] * 10 < Math.min(disk[0], disk[1]);
            });
        System.out.println("witness: sent " + sender.sent + ", acked " + acked.size() + ", consumed "
            + BrokerGroup.keysOf(consumed).size() + "; memory (RSS) n0 " + rssKib(0) + " KiB, n1 " + rssKib(1)
            + " KiB, witness " + rssKib(WITNESS) + " KiB");
        System.out.println("witness: data disk " + disk[0] + " and " + disk[1] + " bytes, witness disk "
            + disk[WITNESS] + " bytes, lost " + lost.size());
        assertEquals(Set.of(), lost, "acknowledged messages lost");
    }

    /** Bytes the folder takes on disk (allocated blocks, as {@code du} counts them: data files are sparse). */
    private static long diskBytes(Path folder) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("du", "-s", "-B1", folder.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (p.waitFor() != 0) {
            throw new IOException("du " + folder + ": " + out);
        }
        return Long.parseLong(out.split("\\s+")[0]);
    }

    /** The resident memory of broker {@code i}'s process, from /proc; -1 when unknown. */
    private long rssKib(int i) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(group.broker(i).pid()), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /** Keeps sending until stopped, remembering what was acknowledged. */
    private static final class Sender implements Runnable {
        final DefaultMQProducer producer;
        final String topic;
        final Set<String> acked = ConcurrentHashMap.newKeySet();
        final AtomicBoolean stop = new AtomicBoolean();
        volatile int sent;

        Sender(DefaultMQProducer producer, String topic) {
            this.producer = producer;
            this.topic = topic;
        }

        void awaitAcked(int count) {
            await(count + " sends acknowledged").atMost(STEP_WAIT).pollInterval(Duration.ofMillis(100))
                .until(() -> acked.size() >= count);
        }

        @Override
        public void run() {
            for (int i = 0; !stop.get(); i++) {
                String key = "w-" + i;
                sent++;
                boolean ok;
                try {
                    Message m = new Message(topic, "t", key, BrokerGroup.body(key, BODY_BYTES));
                    SendResult r = producer.send(m);
                    ok = r.getSendStatus() == SendStatus.SEND_OK;
                } catch (Exception e) {
                    ok = false;
                }
                if (ok) {
                    acked.add(key);
                } else {
                    // Pace the retries while no broker takes writes (a dead address fails at once).
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
                }
            }
        }
    }
}
