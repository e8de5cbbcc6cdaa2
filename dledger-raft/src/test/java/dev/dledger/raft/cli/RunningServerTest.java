package dev.dledger.raft.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.config.Peers;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.testing.FreePorts;
import dev.dledger.raft.transport.ClientProtocol;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Two server processes' worth of nodes in this JVM: several groups behind one port, and the metrics endpoint. */
class RunningServerTest {

    @TempDir
    Path dir;

    private final List<RunningServer> servers = new ArrayList<>();

    @AfterEach
    void stop() {
        servers.forEach(RunningServer::close);
    }

    @Test
    void securedServerServesClientsWithTheTokenOnly() throws Exception {
        int port = FreePorts.take(1)[0];
        String peers = "n0-127.0.0.1:" + port;
        Path f = dir.resolve("secure.properties");
        Files.write(f, List.of("group=g", "selfId=n0", "peers=" + peers, "storeBaseDir=" + dir.resolve("store"),
            "bindAddress=127.0.0.1", "secret=the-secret-of-group-g", "clientToken=token-of-g",
            "mappedFileSizeForEntryData=65536", "mappedFileSizeForEntryIndex=32768"));
        servers.add(RunningServer.start(ServerConfig.load(f, Map.of(), Map.of(),
            new ServerConfig.CommandDefaults("server", false, "log"))));
        await().atMost(Duration.ofSeconds(10))
            .until(() -> servers.get(0).nodes().get(0).status().role() == Role.LEADER);

        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = DledgerCommand.execute(new PrintWriter(out, true), new PrintWriter(err, true), "append", "-g", "g",
            "-p", peers, "--token", "token-of-g", "-d", "secured");
        assertEquals(0, code, "out: " + out + " err: " + err);
        assertTrue(out.toString().startsWith("appended index="), out.toString());

        StringWriter badOut = new StringWriter();
        StringWriter badErr = new StringWriter();
        code = DledgerCommand.execute(new PrintWriter(badOut, true), new PrintWriter(badErr, true), "append", "-g", "g",
            "-p", peers, "--token", "wrong-token", "-d", "refused");
        System.out.println("dledger append with a wrong token printed: " + badErr.toString().strip());
        assertEquals(2, code, "out: " + badOut + " err: " + badErr);
        assertTrue(badErr.toString().contains("authentication failed: wrong client token"), badErr.toString());

        StringWriter noneErr = new StringWriter();
        code = DledgerCommand.execute(new PrintWriter(new StringWriter(), true), new PrintWriter(noneErr, true),
            "append", "-g", "g", "-p", peers, "-d", "refused");
        assertEquals(2, code, noneErr.toString());
        assertTrue(noneErr.toString().contains("this node requires a client token"), noneErr.toString());
    }

    @Test
    void twoGroupsShareEachNodesPortAndBothTakeWrites() throws Exception {
        int[] ports = FreePorts.take(2);
        String peers = "n0-127.0.0.1:" + ports[0] + ";n1-127.0.0.1:" + ports[1];
        for (String id : new String[] {"n0", "n1"}) {
            Path f = dir.resolve(id + ".properties");
            Files.write(f, List.of("groups=orders,payments", "selfId=" + id, "storeBaseDir=" + dir.resolve("store"),
                "bindAddress=127.0.0.1", "orders.peers=" + peers, "payments.peers=" + peers,
                "metricsPort=" + (id.equals("n0") ? "0" : "-1"), "mappedFileSizeForEntryData=65536",
                "mappedFileSizeForEntryIndex=32768"));
            servers.add(RunningServer.start(ServerConfig.load(f, Map.of(), Map.of(),
                new ServerConfig.CommandDefaults("server", false, "log"))));
        }
        for (int g = 0; g < 2; g++) {
            int group = g;
            await().atMost(Duration.ofSeconds(10)).until(() -> servers.stream()
                .anyMatch(s -> s.nodes().get(group).status().role() == Role.LEADER));
        }
        for (String group : new String[] {"orders", "payments"}) {
            try (RaftClient client = new RaftClient(group, Peers.parse(peers), 3000, 10)) {
                for (int i = 0; i < 20; i++) {
                    assertEquals(ClientProtocol.Status.OK,
                        client.append((group + i).getBytes(StandardCharsets.UTF_8)).get().status());
                }
            }
        }
        assertTrue(Files.isDirectory(dir.resolve("store").resolve("payments").resolve("dledger-n1").resolve("data")));

        StringWriter out = new StringWriter();
        servers.get(0).describe(new PrintWriter(out));
        assertEquals(2, out.toString().lines().count(), out.toString());
        assertTrue(out.toString().contains("group payments node n0 (log, flush async) listening on 127.0.0.1:"
            + ports[0]), out.toString());

        int metricsPort = servers.get(0).metricsPort();
        assertTrue(metricsPort > 0);
        HttpResponse<String> scrape = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
            URI.create("http://127.0.0.1:" + metricsPort + "/metrics")).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, scrape.statusCode());
        for (String group : new String[] {"orders", "payments"}) {
            assertTrue(scrape.body().contains("dledger_commit_index{group=\"" + group + "\",node=\"n0\"}"),
                scrape.body());
        }
        assertEquals(-1, servers.get(1).metricsPort());
    }
}
