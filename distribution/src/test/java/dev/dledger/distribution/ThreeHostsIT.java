package dev.dledger.distribution;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.distribution.PackageCopies.Result;
import dev.dledger.raft.testing.FreePorts;
import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * The package deployed as on three machines: three unpacked copies, one per "host" on its own loopback address
 * (127.0.0.2, 127.0.0.3, 127.0.0.4), each with its confs made from {@code conf/hosts/} (only the addresses, the ports
 * and the per-host lines changed, as an operator would), its own data folder outside the package, one nameserver and
 * one broker, every host on the same ports. Sends and reads with RocketMQ's client; kills the leader's host (its
 * broker and nameserver, {@code kill -9}) and restarts it; upgrades a follower's host in place (bin/mqshutdown, a new
 * copy of the package unpacked beside the old one, started with the same confs, finding its store); reads everything
 * back. Nothing acknowledged may be lost.
 */
class ThreeHostsIT {

    private static final List<String> HOSTS = List.of("127.0.0.2", "127.0.0.3", "127.0.0.4");
    private static final String GROUP = "RaftGroup0";
    private static final String TOPIC = "ThreeHostsTopic";
    private static final String TOKEN = "three-hosts-admin-token";
    private static final int BATCH = 200;

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    /** Per host: the package folder it runs from now. */
    private final Path[] packages = new Path[3];
    private final List<Process> processes = new ArrayList<>();
    private final List<Runnable> shutdowns = new ArrayList<>();
    private final Map<String, byte[]> acked = new HashMap<>();
    private String namesrvAddr;
    private String peers;
    private int raftPort;

    @AfterEach
    void stopEverything() {
        for (Runnable r : shutdowns) {
            try {
                r.run();
            } catch (RuntimeException e) {
                System.err.println("client shutdown: " + e);
            }
        }
        for (Process p : processes) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
    }

    @Test
    @Timeout(value = 900, unit = TimeUnit.SECONDS)
    void threeHostsServeThroughAHostKilledAndAHostUpgradedInPlace() throws Exception {
        for (String host : HOSTS) {
            assertTrue(PackageCopies.isFree(host, 0), "cannot bind " + host + ": the test needs the loopback range "
                + "127.0.0.0/8 (Linux has it)");
        }
        for (int h = 0; h < 3; h++) {
            packages[h] = PackageCopies.unpack(hostDir(h).resolve("v1"));
        }
        configure();
        for (int h = 0; h < 3; h++) {
            startNamesrv(h);
        }
        for (int h = 0; h < 3; h++) {
            startBroker(h);
        }
        int leader = awaitLeader(-1);
        System.out.println("three hosts: leader n" + leader + " on " + HOSTS.get(leader));
        for (int h = 0; h < 3; h++) {
            assertFalse(listens("127.0.0.1", raftPort), "a Raft port answers on 127.0.0.1: it must listen on its "
                + "host's address only");
            assertTrue(listens(HOSTS.get(h), raftPort), "no Raft port on " + HOSTS.get(h));
        }
        Result topic = tool(0, "mqadmin", "updateTopic", "-n", namesrvAddr, "-c", "RaftCluster", "-t", TOPIC,
            "-r", "4", "-w", "4");
        assertEquals(0, topic.exit(), topic.output());

        DefaultMQProducer producer = new DefaultMQProducer("three-hosts-producer");
        producer.setNamesrvAddr(namesrvAddr);
        producer.setSendMsgTimeout(5000);
        producer.start();
        shutdowns.add(producer::shutdown);
        send(producer, "a", BATCH);

        // The leader's host fails: its broker and its nameserver die at once.
        killHost(leader);
        int next = awaitLeader(leader);
        System.out.println("three hosts: host " + HOSTS.get(leader) + " killed, n" + next + " leads");
        send(producer, "b", BATCH);
        startNamesrv(leader);
        startBroker(leader);
        awaitCaughtUp();

        // A follower's host is upgraded in place: stop, unpack the new version beside the old, start from it.
        int current = awaitLeader(-1);
        int upgraded = 3 - current - leader;
        if (upgraded < 0 || upgraded > 2 || upgraded == current) {
            // The killed host leads again: upgrade one of the others.
            upgraded = (current + 1) % 3;
        }
        Result down = tool(upgraded, "mqshutdown", "broker", "-c", etc(upgraded).resolve("broker.conf").toString());
        assertEquals(0, down.exit(), "mqshutdown broker: " + down.output());
        assertTrue(down.output().contains("broker stopped"), down.output());
        Path old = packages[upgraded];
        packages[upgraded] = PackageCopies.unpack(hostDir(upgraded).resolve("v2"));
        assertFalse(packages[upgraded].equals(old), "the new copy is another folder");
        send(producer, "c", BATCH);
        startBroker(upgraded);
        awaitCaughtUp();
        send(producer, "d", BATCH);
        for (Path p : List.of(old, packages[upgraded])) {
            assertFalse(Files.exists(p.resolve("store")), p + " has a store: the data belongs in DLEDGER_DATA");
        }

        Map<String, byte[]> read = readAll();
        int lost = 0;
        for (Map.Entry<String, byte[]> e : acked.entrySet()) {
            if (!read.containsKey(e.getKey())) {
                lost++;
            } else {
                assertArrayEquals(e.getValue(), read.get(e.getKey()), "body of " + e.getKey());
            }
        }
        System.out.println("three hosts: acked " + acked.size() + ", read " + read.size() + ", lost " + lost
            + "; killed " + HOSTS.get(leader) + ", upgraded " + HOSTS.get(upgraded) + " in place");
        assertEquals(0, lost, "acknowledged messages lost");
    }

    // ----------------------------------------------------------------------------------------------------------------

    private Path hostDir(int h) {
        return tmp.resolve("host" + (h + 1));
    }

    /** Where the host's confs live: outside the package, as /etc/dledger-rocketmq would. */
    private Path etc(int h) {
        return hostDir(h).resolve("etc");
    }

    private Path data(int h) {
        return hostDir(h).resolve("data");
    }

    /** Makes each host's confs from the package's templates: addresses, ports, self id, the admin secrets. */
    private void configure() throws IOException {
        int namesrvPort = FreePorts.port();
        int listenPort = FreePorts.brokerPort();
        raftPort = FreePorts.port();
        List<String> ns = new ArrayList<>();
        List<String> ps = new ArrayList<>();
        for (int h = 0; h < 3; h++) {
            ns.add(HOSTS.get(h) + ":" + namesrvPort);
            ps.add("n" + h + "-" + HOSTS.get(h) + ":" + raftPort);
        }
        namesrvAddr = String.join(";", ns);
        peers = String.join(";", ps);
        for (int h = 0; h < 3; h++) {
            Files.createDirectories(etc(h));
            String host = HOSTS.get(h);
            Path broker = etc(h).resolve("broker.conf");
            Path namesrv = etc(h).resolve("namesrv.conf");
            Files.writeString(broker, template(h, "broker.conf")
                .replace("#raftSecret=", "raftSecret=three-hosts-group-secret")
                .replace("#raftAdminToken=", "raftAdminToken=" + TOKEN));
            Files.writeString(namesrv, template(h, "namesrv.conf"));
            PackageCopies.setKey(broker, "brokerIP1", host);
            PackageCopies.setKey(broker, "bindAddress", host);
            PackageCopies.setKey(broker, "dLegerSelfId", "n" + h);
            PackageCopies.setKey(broker, "listenPort", Integer.toString(listenPort));
            PackageCopies.setKey(broker, "namesrvAddr", namesrvAddr);
            PackageCopies.setKey(broker, "dLegerPeers", peers);
            // Small data files keep the test's disk use low; the template leaves the size at its default (1 GiB).
            Files.writeString(broker, "mappedFileSizeCommitLog=" + (16 << 20) + "\n",
                java.nio.file.StandardOpenOption.APPEND);
            PackageCopies.setKey(namesrv, "bindAddress", host);
            PackageCopies.setKey(namesrv, "listenPort", Integer.toString(namesrvPort));
        }
    }

    /** A template of conf/hosts with the documentation addresses 192.0.2.1-3 replaced by the hosts'. */
    private String template(int h, String name) throws IOException {
        String text = Files.readString(packages[h].resolve("conf/hosts").resolve(name));
        for (int i = 0; i < 3; i++) {
            text = text.replace("192.0.2." + (i + 1), HOSTS.get(i));
        }
        return text;
    }

    private void startNamesrv(int h) throws IOException {
        start(h, "namesrv", "bin/mqnamesrv", etc(h).resolve("namesrv.conf"));
    }

    private void startBroker(int h) throws IOException {
        start(h, "broker", "bin/mqbroker", etc(h).resolve("broker.conf"));
    }

    private void start(int h, String what, String script, Path conf) throws IOException {
        Path log = hostDir(h).resolve(what + "-console.log");
        ProcessBuilder pb = new ProcessBuilder(packages[h].resolve(script).toString(), "-c", conf.toString())
            .directory(hostDir(h).toFile()).redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().putAll(PackageCopies.smallServers(data(h)));
        processes.add(pb.start());
        System.out.println("three hosts: started the " + what + " of " + HOSTS.get(h) + " from " + packages[h]);
    }

    /** Kills the host's broker and nameserver with SIGKILL and waits until they are gone. */
    private void killHost(int h) throws Exception {
        String host = HOSTS.get(h);
        for (Process p : processes) {
            if (!p.isAlive()) {
                continue;
            }
            String cmd = p.info().commandLine().orElse("");
            if (cmd.contains(etc(h).toString())) {
                p.destroyForcibly();
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "a process of " + host + " did not die");
            }
        }
        await("the processes of " + host + " gone").atMost(Duration.ofSeconds(30))
            .until(() -> !listens(host, raftPort));
    }

    private static boolean listens(String host, int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private Result tool(int h, String script, String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(packages[h].resolve("bin").resolve(script).toString());
        cmd.addAll(List.of(args));
        Result r = PackageCopies.exec(cmd, hostDir(h), PackageCopies.smallServers(data(h)));
        System.out.println("---- " + script + " " + String.join(" ", args) + " (exit " + r.exit() + ")\n" + r.output());
        return r;
    }

    private static final Pattern ROLE = Pattern.compile("^(n[0-2]) \\S+ role=(\\w+)", Pattern.MULTILINE);
    private static final Pattern LAG = Pattern.compile("^\\s*follower (n[0-2]) .*lag=(\\d+)", Pattern.MULTILINE);

    /** The Raft status of the group, as {@code bin/dledger-cli status} prints it (asked from a live host). */
    private String status() throws Exception {
        for (int h = 0; h < 3; h++) {
            if (listens(HOSTS.get(h), raftPort)) {
                Result r = PackageCopies.exec(List.of(packages[h].resolve("bin/dledger-cli").toString(), "status",
                    "-g", GROUP, "-p", peers, "--timeout-ms", "1500", "--token", TOKEN), hostDir(h),
                    PackageCopies.smallServers(data(h)));
                return r.output();
            }
        }
        return "";
    }

    /**
     * Whether every host but {@code not} listens on its Raft port. Until then a broker is still starting, and asking
     * the group ({@code bin/dledger-cli}, a JVM start each time) only takes processor time from it.
     */
    private boolean raftPortsOpen(int not) {
        for (int h = 0; h < 3; h++) {
            if (h != not && !listens(HOSTS.get(h), raftPort)) {
                return false;
            }
        }
        return true;
    }

    /**
     * The host of the Raft leader, once every host but {@code not} listens on its Raft port and one of them leads;
     * also registered as brokerId 0.
     */
    private int awaitLeader(int not) throws Exception {
        int[] found = {-1};
        await("a leader other than " + not).atMost(Duration.ofSeconds(180)).pollInterval(Duration.ofMillis(500))
            .until(() -> {
                if (!raftPortsOpen(not)) {
                    return false;
                }
                Matcher m = ROLE.matcher(status());
                while (m.find()) {
                    int h = m.group(1).charAt(1) - '0';
                    if (m.group(2).equals("LEADER") && h != not) {
                        found[0] = h;
                        return true;
                    }
                }
                return false;
            });
        return found[0];
    }

    /** Waits until both followers report lag 0 (nothing is being sent meanwhile). */
    private void awaitCaughtUp() {
        await("both followers caught up").atMost(Duration.ofSeconds(180)).pollInterval(Duration.ofMillis(500))
            .until(() -> {
                if (!raftPortsOpen(-1)) {
                    return false;
                }
                Matcher m = LAG.matcher(status());
                int zero = 0;
                while (m.find()) {
                    zero += m.group(2).equals("0") ? 1 : 0;
                }
                return zero == 2;
            });
    }

    /** Sends {@code count} messages with keys {@code prefix-i}; each is tried until acknowledged. */
    private void send(DefaultMQProducer producer, String prefix, int count) {
        for (int i = 0; i < count; i++) {
            String key = prefix + "-" + i;
            byte[] body = ("message " + key + " on three hosts").getBytes(StandardCharsets.UTF_8);
            SendResult[] r = new SendResult[1];
            await("send " + key).atMost(Duration.ofSeconds(60)).pollDelay(Duration.ZERO)
                .pollInterval(Duration.ofMillis(200)).ignoreExceptions()
                .until(() -> {
                    r[0] = producer.send(new Message(TOPIC, "it", key, body));
                    return r[0].getSendStatus() == SendStatus.SEND_OK;
                });
            acked.put(key, body);
        }
    }

    private Map<String, byte[]> readAll() {
        DefaultLitePullConsumer consumer = new DefaultLitePullConsumer("three-hosts-consumer");
        consumer.setNamesrvAddr(namesrvAddr);
        consumer.setAutoCommit(false);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        try {
            consumer.start();
        } catch (Exception e) {
            throw new AssertionError("consumer start", e);
        }
        shutdowns.add(consumer::shutdown);
        List<Collection<MessageQueue>> found = new ArrayList<>();
        await("the route of " + TOPIC).atMost(Duration.ofSeconds(60)).ignoreExceptions()
            .until(() -> found.add(consumer.fetchMessageQueues(TOPIC)));
        consumer.assign(found.get(0));
        Map<String, byte[]> read = new HashMap<>();
        Set<String> want = new LinkedHashSet<>(acked.keySet());
        try {
            await("every acknowledged message read").atMost(Duration.ofSeconds(90)).until(() -> {
                for (MessageExt m : consumer.poll(200)) {
                    read.put(m.getKeys(), m.getBody());
                }
                return read.keySet().containsAll(want);
            });
        } catch (org.awaitility.core.ConditionTimeoutException e) {
            // Counted as lost below.
        }
        return read;
    }
}
