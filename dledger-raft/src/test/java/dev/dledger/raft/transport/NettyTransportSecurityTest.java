package dev.dledger.raft.transport;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.VoteRequest;
import dev.dledger.raft.transport.ClientProtocol.Response;
import dev.dledger.raft.transport.ClientProtocol.Status;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The secured port: the group secret handshake between peers, the client token, and the per-connection and
 * per-address limits, over real sockets. The refusals are printed so that the test output shows them.
 */
class NettyTransportSecurityTest {

    private static final String SECRET = "correct horse battery staple";
    private static final String TOKEN = "client-token-1";
    private final List<NettyTransport> transports = new ArrayList<>();

    @AfterEach
    void stop() {
        transports.forEach(NettyTransport::close);
    }

    private NettyTransport start(TransportOptions options) {
        NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), options);
        transports.add(t);
        return t;
    }

    /**
     * Two transports that know each other as n0 and n1 of group g; returns what n1 receives. n1 knows its peer before
     * n0 does: n0 connects as soon as it knows n1 (setPeers), and n1 would refuse a peer it does not know yet.
     */
    private List<Message> pair(NettyTransport n0, NettyTransport n1) {
        List<Message> received = new CopyOnWriteArrayList<>();
        n1.register("g", "n1", received::add);
        n1.setPeers("g", Map.of("n0", n0.localAddress()));
        n0.register("g", "n0", m -> { });
        n0.setPeers("g", Map.of("n1", n1.localAddress()));
        return received;
    }

    private static VoteRequest vote(long term) {
        return new VoteRequest("n0", "n1", term, -1, 0, false, false);
    }

    /**
     * A peer of a group the other side no longer hosts (a group removed from a container) is refused at each
     * handshake and connects again after each refusal: one WARN on each side for it, not one per connection.
     */
    @Test
    void aHandshakeRefusedAgainAndAgainIsLoggedOnceOnEachSide() {
        NettyTransport a = start(TransportOptions.defaults().withGroupSecret(SECRET));
        NettyTransport b = start(TransportOptions.defaults().withGroupSecret(SECRET));
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            // Captured from the peers' setting on: a connects to its peers as soon as it knows them.
            a.register("g", "n0", m -> { });
            a.setPeers("g", Map.of("n1", b.localAddress()));
            // b hosts another group only, with a peer on a's host: a's connections get as far as the handshake.
            b.register("h", "m1", m -> { });
            b.setPeers("h", Map.of("m0", a.localAddress()));
            await("three handshakes refused").atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(100))
                .until(() -> {
                    a.send("g", vote(1));
                    return b.refusedFrames() >= 3;
                });
        } finally {
            System.setErr(err);
        }
        List<String> lines = captured.toString(StandardCharsets.UTF_8).lines().toList();
        long warnAtB = lines.stream().filter(l -> l.contains("WARN") && l.contains("refused connection from")
            && l.contains("unknown group 'g'")).count();
        long warnAtA = lines.stream().filter(l -> l.contains("WARN") && l.contains("refused our message")
            && l.contains("unknown group 'g'")).count();
        System.out.printf("%d handshakes refused: %d WARN at b, %d WARN at a%n", b.refusedFrames(), warnAtB, warnAtA);
        assertEquals(1, warnAtB, "WARN lines of b's refusals: " + lines);
        assertEquals(1, warnAtA, "WARN lines of a's refused handshakes: " + lines);
    }

    /**
     * A node that starts serving a group after its peer's handshakes were refused (a restarted process listens before
     * its node of the group starts) is connected back at once: the peer waits out neither its pause after the refusal
     * nor a message of its own to send, so its next heartbeat gets through.
     */
    @Test
    void aPeerThatStartsServingTheGroupIsConnectedBackAtOnce() {
        NettyTransport a = start(TransportOptions.defaults().withGroupSecret(SECRET));
        NettyTransport b = start(TransportOptions.defaults().withGroupSecret(SECRET));
        a.register("g", "n0", m -> { });
        a.setPeers("g", Map.of("n1", b.localAddress()));
        await("a's handshake refused by b, which does not serve g yet").atMost(Duration.ofSeconds(10))
            .until(() -> {
                a.send("g", vote(1));
                return b.refusedFrames() >= 1;
            });
        assertEquals(0, a.usableOutboundConnections());

        List<Message> received = new CopyOnWriteArrayList<>();
        b.register("g", "n1", received::add);
        b.setPeers("g", Map.of("n0", a.localAddress()));
        // a sends nothing meanwhile: only b's own handshake can have made a connect again.
        await("a connected back to b").atMost(Duration.ofSeconds(10)).until(() -> a.usableOutboundConnections() == 1);
        a.send("g", vote(3));
        await("the first message after it").atMost(Duration.ofSeconds(10)).until(() -> !received.isEmpty());
        assertEquals(vote(3), received.get(0));
    }

    @Test
    void peersWithTheSameSecretExchangeMessages() {
        NettyTransport a = start(TransportOptions.defaults().withGroupSecret(SECRET));
        NettyTransport b = start(TransportOptions.defaults().withGroupSecret(SECRET));
        List<Message> received = pair(a, b);
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            a.send("g", vote(7));
            return !received.isEmpty();
        });
        assertEquals(vote(7), received.get(0));
        assertEquals(0, b.refusedFrames());
    }

    @Test
    void peerWithAWrongSecretIsRefusedAndLearnsWhy() {
        NettyTransport rogue = start(TransportOptions.defaults().withGroupSecret("not the secret of this group"));
        NettyTransport b = start(TransportOptions.defaults().withGroupSecret(SECRET));
        List<Message> received = pair(rogue, b);
        List<String> reasons = new CopyOnWriteArrayList<>();
        rogue.onPeerError(reasons::add);
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            rogue.send("g", vote(100));
            return !reasons.isEmpty();
        });
        System.out.println("wrong-secret peer was told: " + reasons.get(0));
        // Either side may notice first: the listener refuses the proof, or the connector sees a bad server proof.
        assertTrue(reasons.get(0).startsWith(Handshake.REFUSAL_PREFIX), reasons.get(0));
        assertTrue(reasons.get(0).contains("wrong group secret from peer 'n0' of group 'g'"), reasons.get(0));
        assertTrue(received.isEmpty(), "a peer that failed the handshake must not be heard");
        assertTrue(b.refusedFrames() >= 1);
    }

    @Test
    void peerWithoutASecretIsRefusedAtItsFirstFrame() {
        NettyTransport plain = start(TransportOptions.defaults());
        NettyTransport b = start(TransportOptions.defaults().withGroupSecret(SECRET));
        List<Message> received = pair(plain, b);
        List<String> reasons = new CopyOnWriteArrayList<>();
        plain.onPeerError(reasons::add);
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            plain.send("g", vote(100));
            return !reasons.isEmpty();
        });
        System.out.println("peer without a secret was told: " + reasons.get(0));
        assertEquals(Handshake.REFUSAL_PREFIX + "this node requires peers to prove the group secret; set the same "
            + "secret on every node", reasons.get(0));
        assertTrue(received.isEmpty());
    }

    @Test
    void securedPeerDoesNotTalkToANodeWithoutTheSecret() {
        NettyTransport secured = start(TransportOptions.defaults().withGroupSecret(SECRET));
        NettyTransport plain = start(TransportOptions.defaults());
        List<Message> received = pair(secured, plain);
        List<String> reasons = new CopyOnWriteArrayList<>();
        secured.onPeerError(reasons::add);
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            secured.send("g", vote(3));
            return !reasons.isEmpty();
        });
        System.out.println("secured peer connecting to a node without a secret was told: " + reasons.get(0));
        assertTrue(reasons.get(0).contains("this node has no secret"), reasons.get(0));
        assertTrue(received.isEmpty());
    }

    @Test
    void authenticatedPeerCannotSpeakForAnotherNode() throws IOException {
        NettyTransport b = start(TransportOptions.defaults().withGroupSecret(SECRET));
        b.register("g", "n1", m -> { });
        b.setPeers("g", Map.of("n0", new InetSocketAddress("127.0.0.1", 1), "n2", new InetSocketAddress("127.0.0.1", 2)));
        try (RawConnection c = new RawConnection(b.localAddress())) {
            c.handshake(SECRET, "g", "n0", "n1");
            byte[] asN2 = MessageCodec.encode(new VoteRequest("n2", "n1", 9, -1, 0, false, false));
            c.send(new Frame(Frame.Kind.RAFT, 0, "g", asN2));
            Frame reply = c.read();
            assertEquals(Frame.Kind.ERROR, reply.kind());
            assertEquals("this connection proved node n0 of group 'g', not n2 of group 'g'",
                new String(reply.body(), StandardCharsets.UTF_8));
        }
    }

    @Test
    void unknownPeerOrGroupIsRefusedAtTheHello() throws IOException {
        NettyTransport b = start(TransportOptions.defaults().withGroupSecret(SECRET));
        b.register("g", "n1", m -> { });
        b.setPeers("g", Map.of("n0", new InetSocketAddress("127.0.0.1", 1)));
        try (RawConnection c = new RawConnection(b.localAddress())) {
            c.send(new Frame(Frame.Kind.HELLO, 0, "g", new Handshake.Hello(Handshake.Role.PEER, Handshake.nonce(),
                "evil", "n1").encode()));
            assertEquals(Handshake.REFUSAL_PREFIX + "unknown peer 'evil' in group 'g'", c.readError());
            assertTrue(c.closedByServer());
        }
        try (RawConnection c = new RawConnection(b.localAddress())) {
            c.send(new Frame(Frame.Kind.HELLO, 0, "other", new Handshake.Hello(Handshake.Role.PEER, Handshake.nonce(),
                "n0", "n1").encode()));
            assertEquals(Handshake.REFUSAL_PREFIX + "unknown group 'other'", c.readError());
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void clientTokenIsRequiredAndChecked() throws Exception {
        NettyTransport node = start(TransportOptions.defaults().withClientToken(TOKEN));
        serveMetadata(node);
        Map<String, InetSocketAddress> peers = Map.of("n0", node.localAddress());
        try (RaftClient good = new RaftClient("g", peers, 3000, 3, TOKEN, null)) {
            assertEquals(Status.OK, good.metadata("n0").get(10, TimeUnit.SECONDS).status());
        }
        try (RaftClient bad = new RaftClient("g", peers, 3000, 3, "a wrong token", null)) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> bad.readIndex(false).get(10,
                TimeUnit.SECONDS));
            System.out.println("client with a bad token got: " + e.getCause().getMessage());
            RaftClient.ClientException ce = assertInstanceOf(RaftClient.ClientException.class, e.getCause());
            assertTrue(ce.authenticationFailed());
            assertTrue(ce.getMessage().endsWith("refused: authentication failed: wrong client token"), ce.getMessage());
        }
        try (RaftClient none = new RaftClient("g", peers, 3000, 3)) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> none.readIndex(false).get(10,
                TimeUnit.SECONDS));
            System.out.println("client without a token got: " + e.getCause().getMessage());
            assertTrue(e.getCause().getMessage().endsWith("refused: authentication failed: this node requires a client "
                + "token: give the client the node's token (--token)"), e.getCause().getMessage());
        }
    }

    @Test
    void badTokenConnectionIsClosedAfterTheError() throws IOException {
        NettyTransport node = start(TransportOptions.defaults().withClientToken(TOKEN));
        serveMetadata(node);
        try (RawConnection c = new RawConnection(node.localAddress())) {
            c.send(new Frame(Frame.Kind.REQUEST, 5, "g", ClientProtocol.encode(ClientProtocol.Request.metadata())));
            Frame reply = c.read();
            assertEquals(Frame.Kind.ERROR, reply.kind());
            assertEquals(5, reply.requestId());
            assertTrue(c.closedByServer(), "a request without the token must close its connection");
        }
        try (RawConnection c = new RawConnection(node.localAddress())) {
            c.handshake(Handshake.Role.CLIENT, "guessed-token", "g", "me", "n0");
            assertEquals(Handshake.REFUSAL_PREFIX + "wrong client token", c.readError());
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void requestsBeyondTheInflightLimitAreAnsweredOverloaded() throws IOException {
        NettyTransport node = start(TransportOptions.defaults().withLimits(1 << 20, 2, 64));
        List<CompletableFuture<byte[]>> held = new CopyOnWriteArrayList<>();
        node.register("g", "n0", m -> { });
        node.serveRequests("g", body -> {
            CompletableFuture<byte[]> f = new CompletableFuture<>();
            held.add(f);
            return f;
        });
        byte[] req = ClientProtocol.encode(ClientProtocol.Request.metadata());
        try (RawConnection c = new RawConnection(node.localAddress())) {
            for (long id = 1; id <= 4; id++) {
                c.send(new Frame(Frame.Kind.REQUEST, id, "g", req));
            }
            for (long id = 3; id <= 4; id++) {
                Frame reply = c.read();
                assertEquals(id, reply.requestId());
                assertEquals(Status.OVERLOADED, ClientProtocol.decodeResponse(reply.body()).status());
            }
            assertEquals(2, held.size(), "only two requests reach the handler");
            assertEquals(2, node.overloadedRequests());
            held.get(0).complete(ClientProtocol.encode(Response.of(Status.OK, "n0")));
            Frame first = c.read();
            assertEquals(1, first.requestId());
            assertEquals(Status.OK, ClientProtocol.decodeResponse(first.body()).status());
            // One answered: room for one more.
            c.send(new Frame(Frame.Kind.REQUEST, 5, "g", req));
            await().atMost(Duration.ofSeconds(10)).until(() -> held.size() == 3);
            assertEquals(2, node.overloadedRequests());
        }
    }

    @Test
    void connectionsBeyondThePerAddressLimitAreRefused() throws IOException {
        NettyTransport node = start(TransportOptions.defaults().withLimits(1 << 20, 16, 2));
        node.register("g", "n0", m -> { });
        RawConnection first = new RawConnection(node.localAddress());
        try (RawConnection second = new RawConnection(node.localAddress());
             RawConnection third = new RawConnection(node.localAddress())) {
            String reason = third.readError();
            System.out.println("third connection from one address got: " + reason);
            assertEquals("too many connections from 127.0.0.1: 2 are open (maxConnectionsPerAddress)", reason);
            assertTrue(third.closedByServer());
            // The two admitted ones are served.
            second.send(new Frame(Frame.Kind.REQUEST, 1, "nope", new byte[0]));
            assertEquals("unknown group 'nope'", second.readError());
            assertEquals(1, node.refusedConnections());
            first.close();
            // A slot frees up once the server sees the close.
            await().atMost(Duration.ofSeconds(10)).until(() -> {
                try (RawConnection again = new RawConnection(node.localAddress())) {
                    again.send(new Frame(Frame.Kind.REQUEST, 1, "nope", new byte[0]));
                    return again.readError().equals("unknown group 'nope'");
                }
            });
        } finally {
            first.close();
        }
    }

    @Test
    void optionsRefuseAShortSecretAndKeepThemOutOfToString() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> TransportOptions.defaults().withGroupSecret("short"));
        assertTrue(e.getMessage().contains("at least 16"), e.getMessage());
        String text = TransportOptions.defaults().withGroupSecret(SECRET).withClientToken(TOKEN).toString();
        assertFalse(text.contains(SECRET) || text.contains(TOKEN), text);
        assertThrows(IllegalArgumentException.class, () -> TransportOptions.defaults().withLimits(1 << 20, 0, 1));
    }

    private static void serveMetadata(NettyTransport node) {
        node.register("g", "n0", m -> { });
        node.serveRequests("g", body -> CompletableFuture.completedFuture(
            ClientProtocol.encode(Response.of(Status.OK, "n0"))));
    }

    /** A blocking socket that speaks frames, for driving the server by hand. */
    static final class RawConnection implements AutoCloseable {
        private final Socket socket;
        private final DataInputStream in;

        RawConnection(InetSocketAddress to) throws IOException {
            socket = new Socket(to.getAddress(), to.getPort());
            socket.setSoTimeout(10_000);
            in = new DataInputStream(socket.getInputStream());
        }

        void send(Frame f) throws IOException {
            socket.getOutputStream().write(f.encode());
            socket.getOutputStream().flush();
        }

        Frame read() throws IOException {
            byte[] b = new byte[in.readInt()];
            in.readFully(b);
            return Frame.decode(ByteBuffer.wrap(b));
        }

        String readError() throws IOException {
            Frame f = read();
            assertEquals(Frame.Kind.ERROR, f.kind());
            return new String(f.body(), StandardCharsets.UTF_8);
        }

        /** Passes the peer handshake (checking the server's proof). */
        void handshake(String key, String group, String from, String to) throws IOException {
            handshake(Handshake.Role.PEER, key, group, from, to);
        }

        void handshake(Handshake.Role role, String key, String group, String from, String to) throws IOException {
            Handshake.Hello h = new Handshake.Hello(role, Handshake.nonce(), from, to);
            send(new Frame(Frame.Kind.HELLO, 0, group, h.encode()));
            Frame c = read();
            assertEquals(Frame.Kind.CHALLENGE, c.kind());
            Handshake.Challenge ch = Handshake.Challenge.decode(c.body());
            send(new Frame(Frame.Kind.AUTH, 0, group, Handshake.proof(key, false, group, h, ch.serverNonce())));
        }

        boolean closedByServer() throws IOException {
            InputStream s = socket.getInputStream();
            int r;
            do {
                r = s.read();
            } while (r != -1);
            return true;
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }
}
