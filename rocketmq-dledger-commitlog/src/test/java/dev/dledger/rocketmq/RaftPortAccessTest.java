package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.cli.DledgerCommand;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Who a broker's Raft port serves, end to end: a nameserver and three brokers through the launcher as real processes,
 * and the real {@code dledger-cli} ({@link DledgerCommand}, the main class of {@code bin/dledger-cli}) as a process.
 *
 * <p>With a stock {@code broker.conf} (no raftSecret, no raftAdminToken) append, leadership transfer, member remove and
 * status are refused with a clear error, and nothing reaches any broker's Raft log. With raftSecret and raftAdminToken
 * the admin status and a leadership transfer work for the token, and are refused without it; appends stay refused.
 */
class RaftPortAccessTest {

    private static final Duration UP = Duration.ofSeconds(120);

    @TempDir
    Path tmp;

    private BrokerGroup group;

    @AfterEach
    void stopAll() throws InterruptedException {
        if (group != null) {
            group.close();
        }
    }

    /** The result of one CLI run: its exit code and what it printed (stdout and stderr). */
    private record Cli(int exit, String output) {
    }

    /** Runs {@code dledger-cli} with {@code args} in a child JVM and waits for it. */
    private Cli cli(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx96m", "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
            DledgerCommand.class.getName()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile(tmp, "cli", ".out");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            throw new AssertionError("dledger-cli " + String.join(" ", args) + " did not end within 60 s:\n"
                + Files.readString(out));
        }
        Cli r = new Cli(p.exitValue(), Files.readString(out));
        System.out.println("$ dledger-cli " + String.join(" ", args).replace(BrokerGroup.RAFT_ADMIN_TOKEN, "<token>")
            + "\n" + r.output.strip() + "\n(exit " + r.exit + ")");
        return r;
    }

    private String peers() {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < BrokerGroup.SIZE; i++) {
            b.append(i == 0 ? "" : ";").append("n").append(i).append("-127.0.0.1:").append(group.raftAddress(i).getPort());
        }
        return b.toString();
    }

    private List<String> base(String command) {
        return new ArrayList<>(List.of(command, "-g", BrokerGroup.BROKER_NAME, "-p", peers(), "--timeout-ms", "3000"));
    }

    private Cli run(List<String> args) throws IOException, InterruptedException {
        return cli(args.toArray(String[]::new));
    }

    /** Waits until the nameserver lists three brokers with one master (brokerId 0); returns the master's index. */
    private int awaitMaster() {
        int[] master = {-1};
        await("three brokers registered, one as master").atMost(UP).pollInterval(Duration.ofMillis(500))
            .until(() -> {
                Map<Long, String> addrs = group.brokerAddrs();
                if (addrs.size() != BrokerGroup.SIZE || !addrs.containsKey(0L)) {
                    return false;
                }
                for (int i = 0; i < BrokerGroup.SIZE; i++) {
                    if (addrs.get(0L).equals(group.brokerAddr(i))) {
                        master[0] = i;
                    }
                }
                return master[0] >= 0;
            });
        return master[0];
    }

    private static void sendSome(DefaultMQProducer producer, String topic, int count) {
        for (int i = 0; i < count; i++) {
            Message m = new Message(topic, ("m" + i).getBytes(StandardCharsets.UTF_8));
            int n = i;
            String[] last = {""};
            try {
                // The first try at once; a refused send is tried again every 500 ms.
                await("send " + n).atMost(Duration.ofSeconds(60)).pollDelay(Duration.ZERO)
                    .pollInterval(Duration.ofMillis(500)).until(() -> {
                        try {
                            return producer.send(m).getSendStatus() == SendStatus.SEND_OK;
                        } catch (Exception e) {
                            last[0] = e.toString();
                            return false;
                        }
                    });
            } catch (org.awaitility.core.ConditionTimeoutException e) {
                String route;
                try {
                    route = String.valueOf(producer.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl()
                        .getTopicRouteInfoFromNameServer("TBW102", 3000));
                } catch (Exception re) {
                    route = re.toString();
                }
                throw new AssertionError("send " + n + " failed for 60 s, last: " + last[0] + "; TBW102 route: "
                    + route, e);
            }
        }
    }

    /** Whether {@code marker} occurs in any file under {@code dir} (the Raft log's data and index files). */
    private static boolean anyFileContains(Path dir, String marker) throws IOException {
        byte[] needle = marker.getBytes(StandardCharsets.UTF_8);
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                byte[] data = Files.readAllBytes(f);
                outer:
                for (int i = 0; i + needle.length <= data.length; i++) {
                    for (int j = 0; j < needle.length; j++) {
                        if (data[i + j] != needle[j]) {
                            continue outer;
                        }
                    }
                    return true;
                }
            }
        }
        return false;
    }

    /** Every line of the broker's output and log files that contains {@code text}. */
    private List<String> brokerLines(int index, String text) throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> files = Files.walk(group.brokerDir(index))) {
            for (Path f : files.filter(p -> Files.isRegularFile(p) && p.toString().endsWith(".log")).toList()) {
                for (String line : Files.readAllLines(f, StandardCharsets.ISO_8859_1)) {
                    if (line.contains(text)) {
                        out.add(line);
                    }
                }
            }
        }
        return out;
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void aStockBrokerConfRefusesEveryClientRequestAndNothingReachesTheLogs() throws Throwable {
        group = new BrokerGroup(tmp, false);
        try {
            group.start();
            int master = awaitMaster();
            DefaultMQProducer producer = group.producer("p-port");
            sendSome(producer, "PortTopic", 5);
            int follower = (master + 1) % BrokerGroup.SIZE;
            String marker = "intruder-" + UUID.randomUUID();

            List<String> append = base("append");
            append.addAll(List.of("-d", marker));
            Cli a = run(append);
            assertNotEquals(0, a.exit(), "append on a broker's Raft port must be refused:\n" + a.output());
            assertFalse(a.output().contains("appended index="), a.output());
            assertTrue(a.output().contains("not served: request of group '" + BrokerGroup.BROKER_NAME + "': the client "
                + "API of this port is off"), a.output());

            List<String> transfer = base("leadership-transfer");
            transfer.addAll(List.of("--to", "n" + follower));
            Cli t = run(transfer);
            assertNotEquals(0, t.exit(), t.output());
            assertTrue(t.output().contains("not served: "), t.output());

            List<String> remove = base("member");
            remove.addAll(List.of("remove", "n" + follower));
            Cli r = run(remove);
            assertNotEquals(0, r.exit(), r.output());
            assertTrue(r.output().contains("not served: "), r.output());

            Cli s = run(base("status"));
            assertNotEquals(0, s.exit(), s.output());
            assertFalse(s.output().contains("role="), "no status is served without the admin token:\n" + s.output());

            // Nothing changed: the master is the same, every send still works, no log holds the entry.
            sendSome(producer, "PortTopic", 2);
            assertEquals(group.brokerAddr(master), group.brokerAddrs().get(0L), "the leader did not move");
            assertEquals(BrokerGroup.SIZE, group.brokerAddrs().size(), "no member was removed");
            for (int i = 0; i < BrokerGroup.SIZE; i++) {
                assertFalse(anyFileContains(group.raftLogDir(i), marker), "the appended bytes reached n" + i
                    + "'s Raft log");
                assertEquals(List.of(), brokerLines(i, "[BUG]"), "n" + i + " logged a dispatch bug");
                assertEquals(List.of(), brokerLines(i, "skipped the raft log entry"), "n" + i);
            }
            List<String> refusals = new ArrayList<>();
            for (int i = 0; i < BrokerGroup.SIZE; i++) {
                refusals.addAll(brokerLines(i, "refused a client request"));
            }
            assertFalse(refusals.isEmpty(), "the brokers log the refusals");
            System.out.println("a broker logged: " + refusals.get(0).strip());
        } catch (Throwable e) {
            group.printOutputs(System.err);
            throw e;
        }
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    void withTheSecretAndTheAdminTokenStatusAndTransferWorkForTheTokenOnly() throws Throwable {
        group = new BrokerGroup(tmp, true);
        try {
            group.start();
            int leader = group.awaitRoles(Set.of(0, 1, 2), UP);
            String token = BrokerGroup.RAFT_ADMIN_TOKEN;

            List<String> status = base("status");
            status.addAll(List.of("--token", token));
            Cli s = run(status);
            assertEquals(0, s.exit(), s.output());
            assertEquals(1, s.output().lines().filter(l -> l.contains(" role=LEADER ")).count(), s.output());
            assertEquals(2, s.output().lines().filter(l -> l.matches("\\s+follower n\\d match=\\d+ lag=\\d+")).count(),
                "each follower's match index and lag:\n" + s.output());

            int target = (leader + 1) % BrokerGroup.SIZE;
            List<String> noToken = base("leadership-transfer");
            noToken.addAll(List.of("--to", "n" + target));
            Cli refused = run(noToken);
            assertNotEquals(0, refused.exit(), refused.output());
            assertTrue(refused.output().contains("authentication failed: this node requires a client token"),
                refused.output());
            Cli noStatus = run(base("status"));
            assertNotEquals(0, noStatus.exit(), noStatus.output());

            List<String> append = base("append");
            append.addAll(List.of("-d", "intruder", "--token", token));
            Cli a = run(append);
            assertNotEquals(0, a.exit(), a.output());
            assertTrue(a.output().contains("not served: request APPEND"), a.output());

            List<String> transfer = base("leadership-transfer");
            transfer.addAll(List.of("--to", "n" + target, "--token", token));
            Cli t = run(transfer);
            assertEquals(0, t.exit(), t.output());
            // The transfer starts a heartbeat interval after it is asked for (announced first): wait for its end.
            await("n" + target + " leads after the transfer").atMost(UP)
                .until(() -> group.awaitRoles(Set.of(0, 1, 2), UP) == target);
            await("n" + target + " registered as master").atMost(UP)
                .until(() -> group.brokerAddr(target).equals(group.brokerAddrs().get(0L)));

            // mqadmin brokerStatus asks GET_BROKER_RUNTIME_INFO: each broker adds its Raft log's folder and disk use.
            DefaultMQProducer admin = group.producer("p-status");
            for (int i = 0; i < BrokerGroup.SIZE; i++) {
                Map<String, String> info = admin.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl()
                    .getBrokerRuntimeInfo(group.brokerAddr(i), 5000).getTable();
                System.out.println("brokerStatus n" + i + ": raftLogDir=" + info.get("raftLogDir") + " raftLogDiskBytes="
                    + info.get("raftLogDiskBytes") + " raftLogDiskRatio=" + info.get("raftLogDiskRatio") + " raftRole="
                    + info.get("raftRole") + " raftTerm=" + info.get("raftTerm") + " commitLogDiskRatio="
                    + info.get("commitLogDiskRatio"));
                assertEquals(group.raftLogDir(i).toAbsolutePath().toString(), info.get("raftLogDir"));
                assertTrue(Long.parseLong(info.get("raftLogDiskBytes")) > 0, String.valueOf(info));
                double ratio = Double.parseDouble(info.get("raftLogDiskRatio"));
                assertTrue(ratio > 0 && ratio <= 1, String.valueOf(info));
                assertEquals(i == target ? "LEADER" : "FOLLOWER", info.get("raftRole"), String.valueOf(info));
            }
        } catch (Throwable e) {
            group.printOutputs(System.err);
            throw e;
        }
    }
}
