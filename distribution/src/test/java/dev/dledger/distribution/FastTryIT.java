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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * The package end to end: unpacks the tar.gz the build just made into a temporary folder, gives its confs free ports
 * (the only change, as a user moving the group would make), runs {@code bin/dledger/fast-try.sh start} from another
 * folder, sends and reads messages with RocketMQ's own client, checks {@code status}, runs {@code stop}, and checks
 * that no process of the package is left. Also checks the package's layout and that {@code dledger-migrate} says
 * clearly when the migration tool is missing.
 */
class FastTryIT {

    private static final int MESSAGES = 300;

    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path tmp;

    private Path home;
    private final List<Long> pids = new ArrayList<>();
    private final List<Runnable> shutdowns = new ArrayList<>();
    /** Environment added to {@link PackageCopies#smallServers} for the scripts this test runs. */
    private final Map<String, String> extraEnv = new HashMap<>();

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

    /**
     * The whole life of a group, started twice (a group start is most of this test's time, so the two scenarios share
     * one): {@code start}, a round trip through RocketMQ's client, {@code status}; issue 14, items 1 and 3:
     * {@code bin/mqadmin updateBrokerConfig} on a broker of the running group, then {@code stop} (no process or pid
     * file left; a second {@code stop} has nothing to stop) and {@code start}: the group comes back whole (the updated
     * broker is still a Raft node), the nameserver runs, and the update is kept; a Raft key is refused, the tool
     * printing why. Then {@code stop} and {@code clean}.
     */
    @Test
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void fastTryStartsAGroupThatServesTheClientKeepsAnUpdateAcrossStopAndStartAndStopLeavesNoProcess()
        throws Exception {
        long began = System.nanoTime();
        unpack();
        checkLayout();
        String namesrv = movePorts();

        Result start = run("start");
        assertEquals(0, start.exit(), "fast-try.sh start failed:\n" + start.output());
        assertTrue(start.output().contains("the leader as brokerId 0 at 127.0.0.1:"), start.output());
        for (String name : List.of("namesrv", "n0", "n1", "n2")) {
            long pid = Long.parseLong(Files.readString(data().resolve("run").resolve(name + ".pid")).trim());
            pids.add(pid);
            assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), name + " (pid " + pid
                + ") is not running after start");
        }
        for (String log : List.of("store/n0/logs/broker.log", "store/n0/logs/raft.log", "store/namesrv/logs/namesrv.log")) {
            assertTrue(Files.size(data().resolve(log)) > 0, log + " is empty or missing");
        }
        System.out.println("fast-try start: group up " + sinceMs(began) + " ms after the test began");

        roundTrip(namesrv);
        System.out.println("fast-try: " + MESSAGES + " messages sent and read back (at " + sinceMs(began) + " ms)");

        Result status = run("status");
        assertEquals(0, status.exit(), "fast-try.sh status failed:\n" + status.output());
        assertOneLeaderTwoFollowers(status);
        assertTrue(status.output().contains("brokerId 0 at 127.0.0.1:"), status.output());

        Path n0Conf = home.resolve("conf/dledger/broker-n0.conf");
        String n0 = "127.0.0.1:" + PackageCopies.confValue(n0Conf, "listenPort");
        Result update = mqadmin("updateBrokerConfig", "-n", namesrv, "-b", n0, "-k", "fileReservedTime", "-v", "48");
        assertTrue(update.output().contains("update broker config success"), update.output());

        Result stop = run("stop");
        assertEquals(0, stop.exit(), "fast-try.sh stop failed:\n" + stop.output());
        for (long pid : pids) {
            assertTrue(ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true), "pid " + pid + " still runs after stop");
        }
        assertEquals(List.of(), packageProcesses().stream().map(ProcessHandle::pid).toList(),
            "processes of the package still run after stop");
        try (Stream<Path> left = Files.list(data().resolve("run"))) {
            assertEquals(List.of(), left.filter(p -> p.toString().endsWith(".pid")).toList(), "pid files left");
        }
        Result again = run("stop");
        assertEquals(0, again.exit(), again.output());
        assertTrue(again.output().contains("nothing to stop"), again.output());

        Result restart = run("start");
        Result restarted = run("status");
        assertTrue(restarted.output().contains("namesrv " + namesrv + ": running"), "the nameserver is not running "
            + "after stop and start:\n" + restarted.output() + "\n---- the start said:\n" + restart.output());
        assertEquals(0, restart.exit(), "fast-try.sh start after stop failed:\n" + restart.output());
        assertEquals(0, restarted.exit(), "fast-try.sh status failed:\n" + restarted.output());
        assertOneLeaderTwoFollowers(restarted);
        System.out.println("fast-try: stopped and started again (at " + sinceMs(began) + " ms)");
        Result config = mqadmin("getBrokerConfig", "-n", namesrv, "-b", n0);
        assertTrue(config.output().matches("(?s).*fileReservedTime\\s*=\\s*48.*"), config.output());
        assertTrue(config.output().matches("(?s).*enableDLegerCommitLog\\s*=\\s*true.*"), config.output());
        assertEquals("48", PackageCopies.confValue(n0Conf, "fileReservedTime"), "fileReservedTime in broker-n0.conf");
        assertEquals("true", PackageCopies.confValue(n0Conf, "enableDLegerCommitLog"), "enableDLegerCommitLog in broker-n0.conf");
        String kept = Files.readString(n0Conf);
        Result refused = mqadmin("updateBrokerConfig", "-n", namesrv, "-b", n0, "-k", "dLegerPeers", "-v", "n0-x:1");
        assertTrue(refused.output().contains("updateBrokerConfig refused: dLegerPeers"), refused.output());
        assertEquals(kept, Files.readString(n0Conf), "broker-n0.conf after a refused update");

        Result last = run("stop");
        assertEquals(0, last.exit(), "fast-try.sh stop failed:\n" + last.output());
        assertEquals(List.of(), packageProcesses().stream().map(ProcessHandle::pid).toList(),
            "processes of the package still run after stop");

        Result clean = run("clean");
        assertEquals(0, clean.exit(), clean.output());
        assertTrue(!Files.exists(data().resolve("store/n0")), "clean left store/n0");
        for (String inside : List.of("store", "run")) {
            assertTrue(!Files.exists(home.resolve(inside)), "the package folder has " + inside + "/: the data belongs "
                + "in DLEDGER_DATA, outside the package");
        }
        System.out.println("fast-try: start, round trip, status, update, stop, start, stop and clean in "
            + sinceMs(began) + " ms");
    }

    /**
     * Issue 19: {@code fast-try.sh --witness} runs the 2 + 1 group of conf/witness: two data brokers registered (the
     * leader as brokerId 0) and the witness started by {@code bin/mqwitness}, a Raft member never registered at the
     * nameserver; the group serves the client, and stop leaves no process.
     */
    @Test
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void fastTryWitnessRunsTwoDataBrokersAndAWitnessThatNeverRegisters() throws Exception {
        unpack();
        String namesrv = movePorts("conf/witness");
        extraEnv.put("DLEDGER_WITNESS_HEAP", "128m");
        Result start = run("--witness", "start");
        assertEquals(0, start.exit(), "fast-try.sh --witness start failed:\n" + start.output());
        assertTrue(start.output().contains("the leader as brokerId 0 at 127.0.0.1:"), start.output());
        List<Long> started = new ArrayList<>();
        for (String name : List.of("namesrv", "n0", "n1", "n2")) {
            long pid = Long.parseLong(Files.readString(data().resolve("run-witness").resolve(name + ".pid")).trim());
            pids.add(pid);
            started.add(pid);
            assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), name + " (pid " + pid
                + ") is not running after start");
        }
        String witnessCommand = ProcessHandle.of(started.get(3)).flatMap(p -> p.info().commandLine()).orElse("");
        assertTrue(witnessCommand.contains("-Xmx128m") && witnessCommand.contains("conf/witness/broker-n2.conf"),
            "the witness is not the light process of bin/mqwitness: " + witnessCommand);
        assertTrue(Files.size(data().resolve("store/witness-n2/logs/raft.log")) > 0, "the witness's raft.log is empty");

        roundTrip(namesrv);

        Result status = run("--witness", "status");
        assertEquals(0, status.exit(), "fast-try.sh --witness status failed:\n" + status.output());
        long leaders = status.output().lines().filter(l -> l.matches("n[0-1] .* LEADER .*")).count();
        long members = status.output().lines().filter(l -> l.matches("n[0-2] .* (LEADER|FOLLOWER) .*")).count();
        assertEquals(1, leaders, "one data broker LEADER line expected:\n" + status.output());
        assertEquals(3, members, "three members up expected:\n" + status.output());
        long routes = status.output().lines().filter(l -> l.matches("\\s*brokerId \\d+ at .*")).count();
        assertEquals(2, routes, "the two data brokers registered, the witness not:\n" + status.output());

        Result stop = run("--witness", "stop");
        assertEquals(0, stop.exit(), "fast-try.sh --witness stop failed:\n" + stop.output());
        assertEquals(List.of(), packageProcesses().stream().map(ProcessHandle::pid).toList(),
            "processes of the package still run after stop");
        Result clean = run("--witness", "clean");
        assertEquals(0, clean.exit(), clean.output());
        assertTrue(!Files.exists(data().resolve("store/witness-n2")), "clean left store/witness-n2");
    }

    private static void assertOneLeaderTwoFollowers(Result status) {
        long leaders = status.output().lines().filter(l -> l.matches("n[0-2] .* LEADER .*")).count();
        long followers = status.output().lines().filter(l -> l.matches("n[0-2] .* FOLLOWER .*")).count();
        assertEquals(1, leaders, "one LEADER line expected:\n" + status.output());
        assertEquals(2, followers, "two FOLLOWER lines expected:\n" + status.output());
    }

    /**
     * A broker conf that no longer puts its broker on the Raft log (as an earlier version's updateBrokerConfig left
     * it) is refused by {@code start}, naming the file and the key, before anything starts.
     */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void startRefusesABrokerConfThatLeftTheRaftLogBeforeStartingAnything() throws Exception {
        unpack();
        movePorts();
        Path n1Conf = home.resolve("conf/dledger/broker-n1.conf");
        PackageCopies.setKey(n1Conf, "enableDLegerCommitLog", "false");
        Result start = run("start");
        assertEquals(2, start.exit(), start.output());
        assertTrue(start.output().contains(n1Conf + ": enableDLegerCommitLog=false, so n1 would start as a stock broker"),
            start.output());
        assertTrue(!start.output().contains("started namesrv"), start.output());
        assertEquals(List.of(), packageProcesses().stream().map(ProcessHandle::pid).toList(), "processes after start");
        PackageCopies.setKey(n1Conf, "enableDLegerCommitLog", "true");
        PackageCopies.setKey(n1Conf, "dLegerSelfId", "n2");
        Result wrongId = run("start");
        assertEquals(2, wrongId.exit(), wrongId.output());
        assertTrue(wrongId.output().contains(n1Conf + ": dLegerSelfId=n2, expected n1"), wrongId.output());
    }

    /** Runs {@code bin/mqadmin} of the package with {@code args}, printing its output. */
    private Result mqadmin(String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(home.resolve("bin/mqadmin").toString());
        cmd.addAll(List.of(args));
        Result r = exec(cmd, tmp, env());
        System.out.println("---- mqadmin " + String.join(" ", args) + " (exit " + r.exit() + ")\n" + r.output());
        return r;
    }

    // ----------------------------------------------------------------------------------------------------------------

    private void unpack() throws Exception {
        home = PackageCopies.unpack(tmp);
    }

    private void checkLayout() throws Exception {
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
    private String movePorts() throws IOException {
        return movePorts("conf/dledger");
    }

    /**
     * As {@link #movePorts()} for the broker confs of {@code brokerConfs} (the nameserver's conf is always
     * conf/dledger's).
     */
    private String movePorts(String brokerConfs) throws IOException {
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

    private void roundTrip(String namesrv) throws Exception {
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

    private static byte[] body(String key) {
        return ("message " + key + " through the packaged group").getBytes(StandardCharsets.UTF_8);
    }

    // ----------------------------------------------------------------------------------------------------------------

    /** Runs fast-try.sh with {@code args} from the temporary folder (not the package's), printing its output. */
    private Result run(String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(home.resolve("bin/dledger/fast-try.sh").toString());
        cmd.addAll(List.of(args));
        Result r = exec(cmd, tmp, env());
        System.out.println("---- fast-try.sh " + String.join(" ", args) + " (exit " + r.exit() + ")\n" + r.output());
        return r;
    }

    private Map<String, String> env() {
        Map<String, String> env = new HashMap<>(PackageCopies.smallServers(data()));
        env.putAll(extraEnv);
        return env;
    }

    /** The data folder the scripts are given (DLEDGER_DATA): beside the package, as an operator's would be. */
    private Path data() {
        return tmp.resolve("data");
    }

    private Result exec(List<String> command, Path dir, Map<String, String> env) throws Exception {
        return PackageCopies.exec(command, dir, env);
    }

    /** Every live process whose command line names the unpacked package's folder. */
    private List<ProcessHandle> packageProcesses() {
        String marker = home.toString();
        return ProcessHandle.allProcesses()
            .filter(p -> p.pid() != ProcessHandle.current().pid())
            .filter(p -> p.info().commandLine().map(c -> c.contains(marker)).orElse(false))
            .toList();
    }

    private static long sinceMs(long startNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
    }

}
