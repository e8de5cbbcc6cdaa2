package dev.dledger.distribution;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import dev.dledger.distribution.PackageCopies.Result;
import dev.dledger.raft.testing.FreePorts;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the package's script tests share: a copy of the tar.gz the build just made, unpacked into a temporary folder,
 * its confs moved to free ports, {@code bin/dledger/fast-try.sh} run from another folder, a round trip through
 * RocketMQ's own client, and no process of the package left after each test.
 */
abstract class FastTryScripts {

    static final int MESSAGES = 300;

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    Path home;
    final List<Long> pids = new ArrayList<>();
    final List<Runnable> shutdowns = new ArrayList<>();
    /** Environment added to {@link PackageCopies#smallServers} for the scripts this test runs. */
    final Map<String, String> extraEnv = new HashMap<>();

    @AfterEach
    void killLeftovers() {
        for (Runnable r : shutdowns) {
            try {
                r.run();
            } catch (RuntimeException e) {
                System.err.println("client shutdown: " + e);
            }
        }
        if (home != null) {
            for (ProcessHandle p : packageProcesses()) {
                System.err.println("killing a leftover process of the package: " + p.pid());
                p.destroyForcibly();
            }
        }
        for (long pid : pids) {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        }
    }

    static void assertOneLeaderTwoFollowers(Result status) {
        long leaders = status.output().lines().filter(l -> l.matches("n[0-2] .* LEADER .*")).count();
        long followers = status.output().lines().filter(l -> l.matches("n[0-2] .* FOLLOWER .*")).count();
        assertEquals(1, leaders, "one LEADER line expected:\n" + status.output());
        assertEquals(2, followers, "two FOLLOWER lines expected:\n" + status.output());
    }

    /** Runs {@code bin/mqadmin} of the package with {@code args}, printing its output. */
    Result mqadmin(String... args) throws Exception {
        return script("bin/mqadmin", args);
    }

    // ----------------------------------------------------------------------------------------------------------------

    void unpack() throws Exception {
        home = PackageCopies.unpack(tmp);
    }

    void checkLayout() throws Exception {
        for (String script : List.of("bin/mqnamesrv", "bin/mqbroker", "bin/mqadmin", "bin/dledger-cli",
            "bin/dledger-migrate", "bin/mqshutdown", "bin/dledger/fast-try.sh", "bin/dledger/demo.sh",
            "bin/mqbrokercontainer", "bin/dledger/container-fast-try.sh", "bin/mqwitness")) {
            assertTrue(Files.isExecutable(home.resolve(script)), script + " is missing or not executable");
        }
        for (String file : List.of("LICENSE", "README", "conf/dledger/namesrv.conf", "conf/dledger/broker-n0.conf",
            "conf/dledger/broker-n1.conf", "conf/dledger/broker-n2.conf", "conf/rmq.broker.logback.xml",
            "conf/rmq.namesrv.logback.xml", "conf/rmq.tools.logback.xml", "conf/hosts/broker.conf", "conf/hosts/namesrv.conf",
            "conf/systemd/dledger-rocketmq-broker.service", "conf/systemd/dledger-rocketmq-namesrv.service",
            "conf/container/namesrv.conf", "conf/container/container-0.conf", "conf/container/container-1.conf",
            "conf/container/container-2.conf", "conf/container/broker-a-n0.conf", "conf/container/broker-c-n2.conf",
            "conf/witness/broker-n0.conf", "conf/witness/broker-n1.conf", "conf/witness/broker-n2.conf")) {
            assertTrue(Files.isRegularFile(home.resolve(file)), file + " is missing");
        }
        try (Stream<Path> jars = Files.list(home.resolve("lib"))) {
            Set<String> names = jars.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
            for (String prefix : List.of("dledger-raft-", "rocketmq-dledger-commitlog-", "rocketmq-broker-5.5.1",
                "rocketmq-namesrv-5.5.0", "rocketmq-tools-5.5.0", "dledger-rocketmq-demo-", "migration-tool-")) {
                assertTrue(names.stream().anyMatch(n -> n.startsWith(prefix)), "lib/ has no " + prefix + "*.jar");
            }
        }
        Result migrate = exec(List.of(home.resolve("bin/dledger-migrate").toString(), "--help"), tmp, env());
        if (migrate.exit() == 3) {
            assertTrue(migrate.output().contains("not built yet"), migrate.output());
        } else {
            assertTrue(!migrate.output().contains("Could not find or load main class"), migrate.output());
        }
    }

    /** Gives the confs free ports (the nameserver, three listenPorts with their neighbours, three Raft ports). */
    String movePorts() throws IOException {
        return movePorts("conf/dledger");
    }

    /**
     * As {@link #movePorts()} for the broker confs of {@code brokerConfs} (the nameserver's conf is always
     * conf/dledger's).
     */
    String movePorts(String brokerConfs) throws IOException {
        int namesrvPort = FreePorts.port();
        String namesrv = "127.0.0.1:" + namesrvPort;
        PackageCopies.setKey(home.resolve("conf/dledger/namesrv.conf"), "listenPort", Integer.toString(namesrvPort));
        Path conf = home.resolve(brokerConfs);
        List<Integer> raft = List.of(FreePorts.port(), FreePorts.port(), FreePorts.port());
        String peers = "n0-127.0.0.1:" + raft.get(0) + ";n1-127.0.0.1:" + raft.get(1) + ";n2-127.0.0.1:" + raft.get(2);
        for (int i = 0; i < 3; i++) {
            Path broker = conf.resolve("broker-n" + i + ".conf");
            PackageCopies.setKey(broker, "listenPort", Integer.toString(FreePorts.brokerPort()));
            PackageCopies.setKey(broker, "namesrvAddr", namesrv);
            PackageCopies.setKey(broker, "dLegerPeers", peers);
        }
        return namesrv;
    }

    void roundTrip(String namesrv) throws Exception {
        String topic = "FastTryTopic";
        DefaultMQProducer producer = new DefaultMQProducer("fast-try-it-producer");
        producer.setNamesrvAddr(namesrv);
        producer.setSendMsgTimeout(5000);
        producer.start();
        shutdowns.add(producer::shutdown);
        Set<String> sent = new HashSet<>();
        for (int i = 0; i < MESSAGES; i++) {
            String key = "k-" + i;
            // A send refused (seen: "system busy" from a leader that just took over on a loaded machine) is tried
            // again every 500 ms; the first try goes at once.
            SendResult[] r = new SendResult[1];
            await("send " + i).atMost(Duration.ofSeconds(30))
                .pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(500))
                .ignoreExceptionsInstanceOf(org.apache.rocketmq.client.exception.MQClientException.class)
                .until(() -> {
                    r[0] = producer.send(new Message(topic, "it", key, body(key)));
                    return true;
                });
            assertEquals(SendStatus.SEND_OK, r[0].getSendStatus(), "send " + i);
            sent.add(key);
        }

        DefaultLitePullConsumer consumer = new DefaultLitePullConsumer("fast-try-it-consumer");
        consumer.setNamesrvAddr(namesrv);
        consumer.setAutoCommit(false);
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.start();
        shutdowns.add(consumer::shutdown);
        List<Collection<MessageQueue>> found = new ArrayList<>();
        await("the route of " + topic).atMost(Duration.ofSeconds(30)).ignoreExceptions()
            .until(() -> found.add(consumer.fetchMessageQueues(topic)));
        consumer.assign(found.get(0));
        Map<String, byte[]> read = new HashMap<>();
        await("every sent message read back").atMost(Duration.ofSeconds(60)).until(() -> {
            for (MessageExt m : consumer.poll(200)) {
                read.put(m.getKeys(), m.getBody());
            }
            return read.keySet().containsAll(sent);
        });
        for (String key : sent) {
            assertArrayEquals(body(key), read.get(key), "body of " + key);
        }
    }

    static byte[] body(String key) {
        return ("message " + key + " through the packaged group").getBytes(StandardCharsets.UTF_8);
    }

    // ----------------------------------------------------------------------------------------------------------------

    /** Runs fast-try.sh with {@code args} from the temporary folder (not the package's), printing its output. */
    Result run(String... args) throws Exception {
        return script("bin/dledger/fast-try.sh", args);
    }

    /** Runs the package's {@code path} with {@code args} from the temporary folder, printing its output. */
    private Result script(String path, String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(home.resolve(path).toString());
        cmd.addAll(List.of(args));
        Result r = exec(cmd, tmp, env());
        String name = path.substring(path.lastIndexOf('/') + 1);
        System.out.println("---- " + name + " " + String.join(" ", args) + " (exit " + r.exit() + ")\n" + r.output());
        return r;
    }

    Map<String, String> env() {
        Map<String, String> env = new HashMap<>(PackageCopies.smallServers(data()));
        env.putAll(extraEnv);
        return env;
    }

    /** The data folder the scripts are given (DLEDGER_DATA): beside the package, as an operator's would be. */
    Path data() {
        return tmp.resolve("data");
    }

    Result exec(List<String> command, Path dir, Map<String, String> env) throws Exception {
        return PackageCopies.exec(command, dir, env);
    }

    /** Every live process whose command line names the unpacked package's folder. */
    List<ProcessHandle> packageProcesses() {
        String marker = home.toString();
        return ProcessHandle.allProcesses()
            .filter(p -> p.pid() != ProcessHandle.current().pid())
            .filter(p -> p.info().commandLine().map(c -> c.contains(marker)).orElse(false))
            .toList();
    }

    static long sinceMs(long startNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
    }

}
