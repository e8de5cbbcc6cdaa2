package dev.dledger.raft.transport;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.VoteRequest;
import dev.dledger.raft.transport.ClientProtocol.Response;
import dev.dledger.raft.transport.ClientProtocol.Status;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutual TLS on the port, with self-signed certificates made by the JDK's keytool: the group's certificate, and a
 * stranger's that the group does not trust.
 */
class TlsTransportTest {

    private static final String PASSWORD = "changeit";
    @TempDir
    static Path dir;
    private static TlsSettings group;
    private static TlsSettings stranger;
    private final List<NettyTransport> transports = new ArrayList<>();

    @BeforeAll
    static void makeCertificates() throws IOException, InterruptedException {
        Path groupStore = keytool("group");
        Path strangerStore = keytool("stranger");
        group = new TlsSettings(groupStore, PASSWORD, groupStore, PASSWORD);
        // The stranger trusts the group, but the group does not trust the stranger.
        stranger = new TlsSettings(strangerStore, PASSWORD, groupStore, PASSWORD);
    }

    /** A PKCS12 store with one self-signed EC key pair, valid for two days. */
    private static Path keytool(String name) throws IOException, InterruptedException {
        Path store = dir.resolve(name + ".p12");
        Path keytool = Path.of(System.getProperty("java.home"), "bin", "keytool");
        Process p = new ProcessBuilder(keytool.toString(), "-genkeypair", "-alias", name, "-keyalg", "EC",
            "-groupname", "secp256r1", "-dname", "CN=" + name, "-validity", "2", "-storetype", "PKCS12",
            "-keystore", store.toString(), "-storepass", PASSWORD, "-keypass", PASSWORD)
            .redirectErrorStream(true).start();
        boolean done = p.waitFor(120, TimeUnit.SECONDS);
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(done && p.exitValue() == 0, "keytool failed: " + output);
        assertTrue(Files.size(store) > 0);
        return store;
    }

    @AfterEach
    void stop() {
        transports.forEach(NettyTransport::close);
    }

    private NettyTransport start(TransportOptions options) {
        NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), options);
        transports.add(t);
        return t;
    }

    private static List<Message> pair(NettyTransport n0, NettyTransport n1) {
        List<Message> received = new CopyOnWriteArrayList<>();
        n0.register("g", "n0", m -> { });
        n1.register("g", "n1", received::add);
        n0.setPeers("g", Map.of("n1", n1.localAddress()));
        n1.setPeers("g", Map.of("n0", n0.localAddress()));
        n1.serveRequests("g", body -> CompletableFuture.completedFuture(
            ClientProtocol.encode(Response.of(Status.OK, "n1"))));
        return received;
    }

    @Test
    void peersWithTrustedCertificatesAndTheSecretExchangeMessages() {
        TransportOptions o = TransportOptions.defaults().withTls(group).withGroupSecret("a secret of sixteen+");
        NettyTransport a = start(o);
        NettyTransport b = start(o);
        List<Message> received = pair(a, b);
        VoteRequest m = new VoteRequest("n0", "n1", 4, -1, 0, true, false);
        await().atMost(Duration.ofSeconds(20)).until(() -> {
            a.send("g", m);
            return !received.isEmpty();
        });
        assertEquals(m, received.get(0));
    }

    @Test
    void peerWithAnUntrustedCertificateIsNotHeard() throws Exception {
        NettyTransport intruder = start(TransportOptions.defaults().withTls(stranger));
        NettyTransport b = start(TransportOptions.defaults().withTls(group));
        List<Message> received = pair(intruder, b);
        // A client with the group's certificate is served, which shows b is up and serving TLS...
        try (RaftClient good = new RaftClient("g", Map.of("n1", b.localAddress()), 5000, 1, null, group)) {
            assertEquals(Status.OK, good.metadata("n1").get(20, TimeUnit.SECONDS).status());
        }
        // ...and one with the stranger's certificate is refused in the TLS handshake.
        try (RaftClient bad = new RaftClient("g", Map.of("n1", b.localAddress()), 5000, 1, null, stranger)) {
            ExecutionException e = assertThrows(ExecutionException.class,
                () -> bad.metadata("n1").get(20, TimeUnit.SECONDS));
            System.out.println("client with an untrusted certificate got: " + e.getCause().getMessage());
            RaftClient.ClientException ce = assertInstanceOf(RaftClient.ClientException.class, e.getCause());
            // TLS 1.3: the client's side of the handshake completes first, then the node's alert closes the connection.
            assertTrue(ce.getMessage().contains("bad_certificate") || ce.getMessage().contains("TLS handshake with"),
                ce.getMessage());
        }
        assertOnlyTheTrustedPeerIsHeard(intruder, b, received);
    }

    /**
     * Sends from {@code outsider} and, as a positive control, from a peer with the group's certificate, to the same
     * node {@code b}, in turns, until several of the trusted peer's messages arrived: b hears peers, and the outsider,
     * which tried all along, was not heard once.
     */
    private void assertOnlyTheTrustedPeerIsHeard(NettyTransport outsider, NettyTransport b, List<Message> received) {
        NettyTransport friend = start(TransportOptions.defaults().withTls(group));
        friend.register("g", "n0", m -> { });
        friend.setPeers("g", Map.of("n1", b.localAddress()));
        int[] term = {50};
        await().atMost(Duration.ofSeconds(20)).until(() -> {
            outsider.send("g", new VoteRequest("n0", "n1", term[0]++, -1, 0, false, false));
            friend.send("g", new VoteRequest("n0", "n1", 1_000_000, -1, 0, false, false));
            // At least ten tries of the outsider's (each a new connection attempt) however fast the friend's five
            // messages arrive: they could all land within five rounds, and the outsider would have tried only five.
            return received.size() >= 5 && term[0] - 50 >= 10;
        });
        assertTrue(term[0] - 50 >= 10, "the outsider tried " + (term[0] - 50) + " times");
        for (Message m : received) {
            assertEquals(1_000_000, m.term(), "a message of the outsider was heard: " + m);
        }
    }

    @Test
    void plainTextPeerIsNotHeardOnATlsPort() {
        NettyTransport plain = start(TransportOptions.defaults());
        NettyTransport b = start(TransportOptions.defaults().withTls(group));
        List<Message> received = pair(plain, b);
        assertOnlyTheTrustedPeerIsHeard(plain, b, received);
    }

    @Test
    void unreadableStoreIsNamed() {
        TlsSettings missing = new TlsSettings(dir.resolve("missing.p12"), PASSWORD, null, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, missing::serverContext);
        assertTrue(e.getMessage().contains("missing.p12 is not a file"), e.getMessage());
        TlsSettings wrongPassword = new TlsSettings(group.keyStore(), "wrong", null, null);
        e = assertThrows(IllegalArgumentException.class, wrongPassword::serverContext);
        assertTrue(e.getMessage().contains("cannot read TLS key store"), e.getMessage());
    }
}
