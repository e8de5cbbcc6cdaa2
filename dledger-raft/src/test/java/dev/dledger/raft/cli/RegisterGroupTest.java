package dev.dledger.raft.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.config.Peers;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.KeyValueStateMachine;
import dev.dledger.raft.testing.FreePorts;
import dev.dledger.raft.transport.ClientProtocol;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three register nodes as {@code dledger register} starts them (in this JVM, each on its own port and store):
 * {@code write} and {@code read} through the client protocol, a linearizable read after the leader stops, and a
 * restarted node rebuilt from its snapshot plus the log.
 */
class RegisterGroupTest {

    @TempDir
    Path dir;

    private final Map<String, RunningServer> servers = new LinkedHashMap<>();
    private String peers;

    @AfterEach
    void stop() {
        servers.values().forEach(RunningServer::close);
    }

    private RunningServer start(String id) {
        Map<String, String> flags = new LinkedHashMap<>();
        flags.put("selfId", id);
        flags.put("peers", peers);
        flags.put("storeBaseDir", dir.toString());
        flags.put("bindAddress", "127.0.0.1");
        flags.put("snapshotThreshold", "40");
        flags.put("mappedFileSizeForEntryData", "65536");
        flags.put("mappedFileSizeForEntryIndex", "32768");
        RunningServer s = RunningServer.start(ServerConfig.load(null, flags, Map.of(),
            new ServerConfig.CommandDefaults("register", true, "kv")));
        servers.put(id, s);
        return s;
    }

    private static String[] run(int expectedCode, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = DledgerCommand.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        assertEquals(expectedCode, code, "out: " + out + " err: " + err);
        return new String[] {out.toString().strip(), err.toString().strip()};
    }

    private String leader() {
        return servers.entrySet().stream().filter(e -> e.getValue().nodes().get(0).status().role() == Role.LEADER)
            .map(Map.Entry::getKey).findFirst().orElse(null);
    }

    @Test
    void writeReadFailoverAndRestartFromSnapshot() throws Exception {
        peers = FreePorts.peers(FreePorts.take(3));
        for (String id : new String[] {"n0", "n1", "n2"}) {
            start(id);
        }
        await().atMost(Duration.ofSeconds(10)).until(() -> leader() != null);

        assertTrue(run(0, "write", "-p", peers, "-k", "color", "-v", "blue")[0].startsWith("wrote color at index "));
        assertEquals("blue", run(0, "read", "-p", peers, "-k", "color")[0]);
        assertTrue(run(1, "read", "-p", peers, "-k", "shape")[1].contains("key 'shape' is not set"));
        try (RaftClient client = new RaftClient("default", Peers.parse(peers), 3000, 10)) {
            for (int i = 0; i < 100; i++) {
                assertEquals(ClientProtocol.Status.OK,
                    client.append(KeyValueStateMachine.set("k" + (i % 25), "v" + i)).get().status());
            }
            ClientProtocol.Response notACommand = client.append("plain".getBytes(StandardCharsets.UTF_8)).get();
            assertEquals(ClientProtocol.Status.OK, notACommand.status(), "a plain append is taken and skipped");
        }
        assertTrue(run(0, "write", "-p", peers, "-k", "color", "-v", "red")[0].startsWith("wrote color"));
        assertEquals("red", run(0, "read", "-p", peers, "-k", "color")[0]);

        String old = leader();
        servers.remove(old).close();
        assertEquals("red", run(0, "read", "-p", peers, "-k", "color")[0], "read at the new leader");
        assertEquals("v99", run(0, "read", "-p", peers, "-k", "k24", "--lease")[0]);
        run(0, "write", "-p", peers, "-k", "after", "-v", "failover");

        Path oldDir = dir.resolve("dledger-" + old);
        assertTrue(Files.exists(oldDir.resolve("snapshot").resolve("data")), "a snapshot every 40 entries");
        RunningServer back = start(old);
        RunningServer lead = servers.get(leader());
        KeyValueStateMachine restarted = (KeyValueStateMachine) back.stateMachines().get(0);
        KeyValueStateMachine reference = (KeyValueStateMachine) lead.stateMachines().get(0);
        await().atMost(Duration.ofSeconds(10)).until(() -> restarted.appliedIndex() >= reference.appliedIndex()
            && restarted.size() == reference.size());
        for (String key : new String[] {"color", "after", "k0", "k13", "k24"}) {
            assertEquals(new String(reference.query(KeyValueStateMachine.get(key)), StandardCharsets.UTF_8),
                new String(restarted.query(KeyValueStateMachine.get(key)), StandardCharsets.UTF_8), key);
        }
        assertEquals(27, restarted.size(), "color, after and k0..k24");
    }

    @Test
    void readFromAPlainLogGroupSaysItServesNoKeyValueReads() {
        peers = FreePorts.peers(FreePorts.take(1));
        Map<String, String> flags = Map.of("selfId", "n0", "peers", peers, "storeBaseDir", dir.toString(),
            "bindAddress", "127.0.0.1");
        servers.put("n0", RunningServer.start(ServerConfig.load(null, flags, Map.of(),
            new ServerConfig.CommandDefaults("appender", true, "log"))));
        await().atMost(Duration.ofSeconds(10)).until(() -> leader() != null);
        assertTrue(run(1, "read", "-p", peers, "-k", "x")[1].contains("serves no key-value reads"));
    }
}
