package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.ClientProtocol;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Retried appends with request ids are taken once: across a leader's death (the retry reaches the next leader) and
 * while the original is still in flight on the same leader.
 */
class ExactlyOnceAppendTest {

    private static final String[] IDS = {"n0", "n1", "n2"};
    private final Map<String, NettyTransport> transports = new LinkedHashMap<>();
    private final Map<String, GatedSyncStorage> stores = new LinkedHashMap<>();
    private final Map<String, RaftGroupNode> nodes = new LinkedHashMap<>();
    private final Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();

    private void startGroup() {
        for (String id : IDS) {
            NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
            transports.put(id, t);
            addresses.put(id, t.localAddress());
            stores.put(id, new GatedSyncStorage());
        }
        for (String id : IDS) {
            nodes.put(id, new RaftGroupNode(NodeOptions.defaults("g", id).withFlush(FlushMode.SYNC),
                Membership.of(IDS), stores.get(id), StateMachine.NONE, transports.get(id)));
            transports.get(id).setPeers("g", addresses);
        }
    }

    @AfterEach
    void stop() {
        stores.values().forEach(s -> s.blockSyncs(false));
        nodes.values().forEach(RaftGroupNode::close);
        transports.values().forEach(NettyTransport::close);
    }

    private RaftGroupNode awaitLeader() {
        await().atMost(Duration.ofSeconds(10)).until(() -> nodes.values().stream()
            .anyMatch(n -> n.status().role() == Role.LEADER));
        return nodes.values().stream().filter(n -> n.status().role() == Role.LEADER).findFirst().orElseThrow();
    }

    @Test
    void aRetryAfterTheLeaderDiedYieldsOneEntry() throws Exception {
        startGroup();
        try (RaftClient client = new RaftClient("g", addresses, 5000, 60)) {
            assertEquals(ClientProtocol.Status.OK, client.append("warm".getBytes(StandardCharsets.UTF_8)).get().status());
            RaftGroupNode leader = awaitLeader();
            List<String> followers = nodes.keySet().stream().filter(id -> !id.equals(leader.id())).toList();
            String free = followers.get(0);
            String blocked = followers.get(1);

            // The leader takes the append and replicates it, but cannot commit it: only one of three syncs it.
            stores.get(leader.id()).blockSyncs(true);
            stores.get(blocked).blockSyncs(true);
            byte[] payload = "exactly-once".getBytes(StandardCharsets.UTF_8);
            CompletableFuture<ClientProtocol.Response> answer = client.append(payload);
            await().atMost(Duration.ofSeconds(5)).until(() -> stores.get(free).count(payload) == 1
                && stores.get(blocked).count(payload) == 1);
            assertFalse(answer.isDone(), "not committed, so not answered");

            // The leader dies before answering; the client's connection breaks and it retries with the same id.
            transports.remove(leader.id()).close();
            stores.get(leader.id()).blockSyncs(false);
            nodes.remove(leader.id()).close();
            stores.get(blocked).blockSyncs(false);

            ClientProtocol.Response r = answer.get();
            assertEquals(ClientProtocol.Status.OK, r.status());
            assertNotEquals(leader.id(), client.leader());
            for (String id : followers) {
                await().atMost(Duration.ofSeconds(5)).until(() -> nodes.get(id).status().commitIndex() >= r.index());
                assertEquals(1, stores.get(id).count(payload), "copies of the payload on " + id);
                assertEquals(new String(payload, StandardCharsets.UTF_8), new String(
                    nodes.get(id).get(r.index()).get().data(), StandardCharsets.UTF_8), "the answer's index on " + id);
            }
            // The client goes on with the next sequence numbers.
            ClientProtocol.Response next = client.append("after".getBytes(StandardCharsets.UTF_8)).get();
            assertEquals(ClientProtocol.Status.OK, next.status());
            assertTrue(next.index() > r.index(), "after the new leader's first entry");
            assertEquals(1, stores.get(followers.get(0)).count(payload));
        }
    }

    @Test
    void aRetryWhileTheOriginalIsInFlightAttachesToIt() throws Exception {
        startGroup();
        RaftGroupNode leader = awaitLeader();
        RequestId id = new RequestId(42, 0);
        List<byte[]> batch = List.of("a".getBytes(StandardCharsets.UTF_8), "b".getBytes(StandardCharsets.UTF_8));
        // Warm up: the leader applied its first entry, so it judges retries.
        assertEquals(AppendResult.Status.OK, leader.append(List.of("warm".getBytes(StandardCharsets.UTF_8))).get()
            .status());
        nodes.values().forEach(n -> stores.get(n.id()).blockSyncs(true));

        CompletableFuture<AppendResult> original = leader.append(batch, id);
        CompletableFuture<AppendResult> retry = leader.append(batch, id);
        await().atMost(Duration.ofSeconds(5)).until(() -> stores.get(leader.id()).count(batch.get(1)) == 1);
        CompletableFuture<AppendResult> late = leader.append(batch, id);
        assertFalse(original.isDone() || retry.isDone() || late.isDone());

        nodes.values().forEach(n -> stores.get(n.id()).blockSyncs(false));
        AppendResult first = original.get();
        assertEquals(AppendResult.Status.OK, first.status());
        assertEquals(first.index(), retry.get().index());
        assertEquals(first.index(), late.get().index());
        assertEquals(AppendResult.Status.OK, late.get().status());
        assertEquals(1, stores.get(leader.id()).count(batch.get(0)));
        assertEquals(1, stores.get(leader.id()).count(batch.get(1)));

        // Once applied, a retry is answered at once with the original index; a new seq appends anew.
        AppendResult again = leader.append(batch, id).get();
        assertEquals(AppendResult.Status.OK, again.status());
        assertEquals(first.index(), again.index());
        AppendResult fresh = leader.append(batch, id.plus(2)).get();
        assertEquals(first.index() + 2, fresh.index());
        assertEquals(2, stores.get(leader.id()).count(batch.get(0)));
    }

    @Test
    void aRetryAfterARestartFromASnapshotIsAnsweredWithTheOriginalNotAppendedAgain() throws Exception {
        // One voter, so that it leads alone; snapshots every 5 entries, so that the original is under one.
        NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
        transports.put("n0", t);
        MemoryNodeStorage storage = new MemoryNodeStorage();
        NodeOptions options = NodeOptions.defaults("g", "n0").withSnapshotThreshold(5);
        SnapshotInstallBindingTest.RestoreRecorder machine = new SnapshotInstallBindingTest.RestoreRecorder();
        RaftGroupNode node = new RaftGroupNode(options, Membership.of("n0"), storage, machine, t);
        nodes.put("n0", node);
        await().atMost(Duration.ofSeconds(10)).until(() -> node.status().role() == Role.LEADER);
        RequestId id = new RequestId(7, 0);
        List<byte[]> body = List.of("once".getBytes(StandardCharsets.UTF_8));
        AppendResult original = node.append(body, id).get();
        assertEquals(AppendResult.Status.OK, original.status());
        for (int i = 0; i < 10; i++) {
            assertEquals(AppendResult.Status.OK, node.append(List.of(new byte[] {(byte) i})).get().status());
        }
        assertTrue(storage.snapshot().index() > original.index(), "the original is under the snapshot");

        nodes.remove("n0").close();
        RaftGroupNode restarted = new RaftGroupNode(options, Membership.of("n0"), storage, machine, t);
        nodes.put("n0", restarted);
        await().atMost(Duration.ofSeconds(10)).until(() -> restarted.status().role() == Role.LEADER);
        long last = storage.lastIndex();
        AppendResult retry = restarted.append(body, id).get();
        assertEquals(AppendResult.Status.OK, retry.status());
        assertEquals(original.index(), retry.index(), "the retry is answered with the original's index");
        assertEquals(last, storage.lastIndex(), "nothing appended for the retry");
    }
}
