package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.core.VoteRequest;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.ClientProtocol;
import dev.dledger.raft.transport.Handshake;
import dev.dledger.raft.transport.NettyTransport;
import dev.dledger.raft.transport.TransportOptions;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A three-node group whose nodes share a secret and require a client token: impostors (a wrong secret, no secret)
 * that claim to be a member and call an election at a huge term are refused and change nothing, clients with the
 * token append, and a client with a wrong token is refused.
 */
class SecureGroupTest {

    private static final String[] IDS = {"n0", "n1", "n2"};
    private static final String SECRET = "group-g-secret-0123456789";
    private static final String TOKEN = "token-of-g";
    private final List<NettyTransport> transports = new ArrayList<>();
    private final Map<String, RaftGroupNode> nodes = new LinkedHashMap<>();
    private final Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();

    @AfterEach
    void stop() {
        nodes.values().forEach(RaftGroupNode::close);
        transports.forEach(NettyTransport::close);
    }

    private NettyTransport transport(TransportOptions o) {
        NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), o);
        transports.add(t);
        return t;
    }

    @Test
    void impostorsAreRefusedAndTheGroupGoesOnAmongTheGoodNodes() throws Exception {
        TransportOptions secured = TransportOptions.defaults().withGroupSecret(SECRET).withClientToken(TOKEN);
        List<NettyTransport> own = new ArrayList<>();
        for (String id : IDS) {
            NettyTransport t = transport(secured);
            own.add(t);
            addresses.put(id, t.localAddress());
        }
        for (int i = 0; i < IDS.length; i++) {
            nodes.put(IDS[i], new RaftGroupNode(NodeOptions.defaults("g", IDS[i]), Membership.of(IDS),
                MemoryStorageAccess.open(), StateMachine.NONE, own.get(i)));
            own.get(i).setPeers("g", addresses);
        }
        await().atMost(Duration.ofSeconds(10))
            .until(() -> nodes.values().stream().anyMatch(n -> n.status().role() == Role.LEADER));

        try (RaftClient client = new RaftClient("g", addresses, 3000, 20, TOKEN, null)) {
            ClientProtocol.Response r = client.append("before".getBytes(StandardCharsets.UTF_8)).get(10, TimeUnit.SECONDS);
            assertEquals(ClientProtocol.Status.OK, r.status());
        }
        long termBefore = nodes.values().stream().mapToLong(n -> n.status().term()).max().orElseThrow();

        // Two impostors claim to be n2 and call an election at term 1000 on n0 and n1.
        NettyTransport wrongSecret = transport(TransportOptions.defaults().withGroupSecret("guessed-secret-0000000"));
        NettyTransport noSecret = transport(TransportOptions.defaults());
        List<String> told = new CopyOnWriteArrayList<>();
        for (NettyTransport impostor : List.of(wrongSecret, noSecret)) {
            impostor.register("g", "n2", m -> { });
            impostor.setPeers("g", Map.of("n0", addresses.get("n0"), "n1", addresses.get("n1")));
            List<String> reasons = new CopyOnWriteArrayList<>();
            impostor.onPeerError(reasons::add);
            await().atMost(Duration.ofSeconds(15)).until(() -> {
                impostor.send("g", new VoteRequest("n2", "n0", 1000, 1000, 1000, false, false));
                impostor.send("g", new VoteRequest("n2", "n1", 1000, 1000, 1000, false, false));
                return reasons.size() >= 2;
            });
            told.addAll(reasons);
        }
        told.forEach(reason -> System.out.println("impostor peer was told: " + reason));
        assertTrue(told.stream().allMatch(reason -> reason.startsWith(Handshake.REFUSAL_PREFIX)), told.toString());
        assertTrue(told.stream().anyMatch(reason -> reason.contains("wrong group secret from peer 'n2'")), told.toString());
        assertTrue(told.stream().anyMatch(reason -> reason.contains("requires peers to prove the group secret")),
            told.toString());
        for (RaftGroupNode n : nodes.values()) {
            assertTrue(n.status().term() < 1000, n.id() + " took the impostor's term: " + n.status());
        }

        try (RaftClient client = new RaftClient("g", addresses, 3000, 20, TOKEN, null)) {
            ClientProtocol.Response r = client.append("after".getBytes(StandardCharsets.UTF_8)).get(10, TimeUnit.SECONDS);
            assertEquals(ClientProtocol.Status.OK, r.status());
        }
        long termAfter = nodes.values().stream().mapToLong(n -> n.status().term()).max().orElseThrow();
        assertEquals(termBefore, termAfter, "the impostors must not have caused an election");

        try (RaftClient badToken = new RaftClient("g", addresses, 3000, 20, "not-the-token", null)) {
            ExecutionException e = assertThrows(ExecutionException.class,
                () -> badToken.append("never".getBytes(StandardCharsets.UTF_8)).get(10, TimeUnit.SECONDS));
            System.out.println("client with a bad token was told: " + e.getCause().getMessage());
            RaftClient.ClientException ce = assertInstanceOf(RaftClient.ClientException.class, e.getCause());
            assertTrue(ce.authenticationFailed());
            assertTrue(ce.getMessage().contains("authentication failed: wrong client token"), ce.getMessage());
        }
    }
}
