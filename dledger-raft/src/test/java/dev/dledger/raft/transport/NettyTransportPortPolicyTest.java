package dev.dledger.raft.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.transport.ClientProtocol.Response;
import dev.dledger.raft.transport.ClientProtocol.Status;
import dev.dledger.raft.transport.NettyTransportSecurityTest.RawConnection;
import dev.dledger.raft.transport.TransportOptions.ClientApi;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Who a port serves: the peer-host filter ({@link TransportOptions#peerHostsOnly()}) and the client API switch
 * ({@link TransportOptions#clientApi()}), over real sockets. The refusals are printed so the test output shows them.
 */
class NettyTransportPortPolicyTest {

    private static final String SECRET = "correct horse battery staple";
    private static final String TOKEN = "admin-token-1";
    private final List<NettyTransport> transports = new ArrayList<>();
    /** Requests that reached the group's handler. */
    private final AtomicInteger handled = new AtomicInteger();

    @AfterEach
    void stop() {
        transports.forEach(NettyTransport::close);
    }

    private NettyTransport start(TransportOptions options) {
        NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), options);
        transports.add(t);
        return t;
    }

    /** Registers n0 of group g with these peers, and a handler that answers every request OK and counts it. */
    private void serve(NettyTransport node, Map<String, InetSocketAddress> peers) {
        node.register("g", "n0", m -> { });
        node.setPeers("g", peers);
        node.serveRequests("g", body -> {
            handled.incrementAndGet();
            return CompletableFuture.completedFuture(ClientProtocol.encode(Response.of(Status.OK, "n0")));
        });
    }

    private static InetAddress ip(String text) throws Exception {
        return InetAddress.getByName(text);
    }

    @Test
    void peerHostFilterAdmitsThePeersAddressesOnly() throws Exception {
        NettyTransport node = start(TransportOptions.defaults().withPeerHostsOnly(true));
        node.register("g", "n0", m -> { });
        node.setPeers("g", Map.of("n0", new InetSocketAddress("127.0.0.1", 1), "n1",
            new InetSocketAddress("192.0.2.10", 2), "n2", InetSocketAddress.createUnresolved("192.0.2.11", 3)));
        assertTrue(node.peerHostAllowed(ip("192.0.2.10")), "a peer's address");
        assertTrue(node.peerHostAllowed(ip("192.0.2.11")), "an unresolved peer name is resolved when set");
        assertTrue(node.peerHostAllowed(ip("127.0.0.1")), "a loopback peer's own address");
        assertTrue(node.peerHostAllowed(ip("127.0.0.2")), "a loopback peer admits every loopback address");
        assertFalse(node.peerHostAllowed(ip("192.0.2.12")), "not a peer's address");
        assertFalse(node.peerHostAllowed(ip("10.0.0.1")), "not a peer's address");

        node.setPeers("g", Map.of("n1", new InetSocketAddress("192.0.2.10", 2)));
        assertFalse(node.peerHostAllowed(ip("127.0.0.1")), "no loopback peer left: loopback is not a peer's host");
        assertTrue(node.peerHostAllowed(ip("192.0.2.10")));
        node.unregister("g");
        assertFalse(node.peerHostAllowed(ip("192.0.2.10")), "no group, no peer hosts");
    }

    @Test
    void withoutTheFilterEveryHostIsAdmitted() throws Exception {
        NettyTransport node = start(TransportOptions.defaults());
        node.register("g", "n0", m -> { });
        node.setPeers("g", Map.of("n1", new InetSocketAddress("192.0.2.10", 2)));
        assertTrue(node.peerHostAllowed(ip("10.0.0.1")));
        assertTrue(node.peerHostAllowed(ip("127.0.0.1")));
    }

    @Test
    void connectionFromAHostThatIsNoPeersIsClosedAtOnce() throws Exception {
        NettyTransport node = start(TransportOptions.defaults().withPeerHostsOnly(true).withClientApi(ClientApi.OFF));
        serve(node, Map.of("n1", new InetSocketAddress("192.0.2.10", 2)));
        try (RawConnection c = new RawConnection(node.localAddress())) {
            String reason = c.readError();
            System.out.println("a connection from loopback to a node whose peers are elsewhere was told: " + reason);
            assertEquals(Handshake.NOT_SERVED_PREFIX + "127.0.0.1 is not the host of a peer of this node's groups; "
                + "this port serves their peers only", reason);
            assertTrue(c.closedByServer());
        }
        assertEquals(1, node.refusedHosts());
        assertEquals(0, handled.get());
    }

    @Test
    void peerFramesFromAHostThatIsNoPeersAreRefusedWhenClientsMayConnect() throws Exception {
        NettyTransport node = start(TransportOptions.defaults().withGroupSecret(SECRET).withClientToken(TOKEN)
            .withPeerHostsOnly(true).withClientApi(ClientApi.ADMIN));
        serve(node, Map.of("n1", new InetSocketAddress("192.0.2.10", 2)));
        try (RawConnection c = new RawConnection(node.localAddress())) {
            c.send(new Frame(Frame.Kind.HELLO, 0, "g", new Handshake.Hello(Handshake.Role.PEER, Handshake.nonce(),
                "n1", "n0").encode()));
            String reason = c.readError();
            System.out.println("a peer handshake from a host that is no peer's was told: " + reason);
            assertEquals(Handshake.REFUSAL_PREFIX + "peer n1 connects from 127.0.0.1, which is not the host of a peer "
                + "of this node's groups", reason);
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void clientApiOffRefusesEveryRequestWithAClearErrorAndNoRetry() throws Exception {
        NettyTransport node = start(TransportOptions.defaults().withPeerHostsOnly(true).withClientApi(ClientApi.OFF));
        serve(node, Map.of("n1", new InetSocketAddress("127.0.0.1", 9)));
        Map<String, InetSocketAddress> peers = Map.of("n0", node.localAddress());
        try (RaftClient client = new RaftClient("g", peers, 3000, 10)) {
            ExecutionException e = assertThrows(ExecutionException.class,
                () -> client.append("garbage".getBytes(StandardCharsets.UTF_8)).get(10, TimeUnit.SECONDS));
            System.out.println("append on a port whose client API is off got: " + e.getCause().getMessage());
            RaftClient.ClientException ce = assertInstanceOf(RaftClient.ClientException.class, e.getCause());
            assertTrue(ce.authenticationFailed(), "a refusal of the API is final, not retried");
            assertTrue(ce.getMessage().endsWith("refused: " + Handshake.NOT_SERVED_PREFIX + "request of group 'g': the "
                + "client API of this port is off (it serves its group's peers only; admin requests need the group "
                + "secret and an admin token)"), ce.getMessage());
            assertThrows(ExecutionException.class, () -> client.leadershipTransfer("n1").get(10, TimeUnit.SECONDS));
            assertThrows(ExecutionException.class,
                () -> client.changeMembership("n1", false).get(10, TimeUnit.SECONDS));
            assertThrows(ExecutionException.class, () -> client.metadata("n0").get(10, TimeUnit.SECONDS));
            assertThrows(ExecutionException.class, () -> client.get(1).get(10, TimeUnit.SECONDS));
        }
        assertEquals(0, handled.get(), "no request reached the group");
        assertEquals(5, node.refusedRequests(), "one refusal per request: none was retried");
    }

    @Test
    void adminApiServesAdminRequestsToTheTokenOnlyAndNeverEntries() throws Exception {
        NettyTransport node = start(TransportOptions.defaults().withGroupSecret(SECRET).withClientToken(TOKEN)
            .withPeerHostsOnly(true).withClientApi(ClientApi.ADMIN));
        serve(node, Map.of("n1", new InetSocketAddress("192.0.2.10", 2)));
        Map<String, InetSocketAddress> peers = Map.of("n0", node.localAddress());
        try (RaftClient admin = new RaftClient("g", peers, 3000, 3, TOKEN, null)) {
            assertEquals(Status.OK, admin.metadata("n0").get(10, TimeUnit.SECONDS).status());
            assertEquals(Status.OK, admin.leadershipTransfer("n1").get(10, TimeUnit.SECONDS).status());
            assertEquals(Status.OK, admin.changeMembership("n1", false).get(10, TimeUnit.SECONDS).status());
            ExecutionException e = assertThrows(ExecutionException.class,
                () -> admin.append("garbage".getBytes(StandardCharsets.UTF_8)).get(10, TimeUnit.SECONDS));
            System.out.println("append with the admin token got: " + e.getCause().getMessage());
            assertTrue(e.getCause().getMessage().endsWith("refused: " + Handshake.NOT_SERVED_PREFIX + "request APPEND "
                + "of group 'g': this port serves the admin requests only (status, leadership transfer, member "
                + "add/remove); entries are never appended or read here"), e.getCause().getMessage());
            assertThrows(ExecutionException.class, () -> admin.get(1).get(10, TimeUnit.SECONDS));
            assertThrows(ExecutionException.class, () -> admin.readIndex(false).get(10, TimeUnit.SECONDS));
        }
        assertEquals(3, handled.get(), "the three admin requests, nothing else");
        try (RaftClient none = new RaftClient("g", peers, 3000, 3)) {
            ExecutionException e = assertThrows(ExecutionException.class,
                () -> none.leadershipTransfer("n1").get(10, TimeUnit.SECONDS));
            System.out.println("transfer without the token got: " + e.getCause().getMessage());
            assertTrue(e.getCause().getMessage().contains(Handshake.REFUSAL_PREFIX), e.getCause().getMessage());
        }
        assertEquals(3, handled.get());
    }

    @Test
    void adminApiNeedsAToken() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> TransportOptions.defaults().withClientApi(ClientApi.ADMIN));
        assertEquals("an admin-only client API needs a client token (the admin token)", e.getMessage());
    }
}
