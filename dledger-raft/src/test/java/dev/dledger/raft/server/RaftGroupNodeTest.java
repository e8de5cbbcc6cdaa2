package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.ClientProtocol;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Three nodes in one JVM on loopback, each with its own Netty transport. */
class RaftGroupNodeTest {

    private static final String[] IDS = {"n0", "n1", "n2"};
    private final Map<String, NettyTransport> transports = new LinkedHashMap<>();
    private final Map<String, MemoryNodeStorage> stores = new LinkedHashMap<>();
    private final Map<String, RaftGroupNode> nodes = new LinkedHashMap<>();

    private void startGroup() {
        Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
        for (String id : IDS) {
            NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
            transports.put(id, t);
            addresses.put(id, t.localAddress());
            stores.put(id, new MemoryNodeStorage());
        }
        for (String id : IDS) {
            start(id, addresses);
        }
    }

    private void start(String id, Map<String, InetSocketAddress> addresses) {
        RaftGroupNode n = new RaftGroupNode(NodeOptions.defaults("g", id).withFlush(FlushMode.SYNC),
            Membership.of(IDS), stores.get(id), StateMachine.NONE, transports.get(id));
        transports.get(id).setPeers("g", addresses);
        nodes.put(id, n);
    }

    @AfterEach
    void stop() {
        nodes.values().forEach(RaftGroupNode::close);
        transports.values().forEach(NettyTransport::close);
    }

    private RaftGroupNode awaitLeader() {
        RaftGroupNode[] leader = new RaftGroupNode[1];
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            for (RaftGroupNode n : nodes.values()) {
                if (n.status().role() == Role.LEADER) {
                    leader[0] = n;
                    return true;
                }
            }
            return false;
        });
        return leader[0];
    }

    private static byte[] body(int i) {
        return ("entry-" + i).getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void appendsCommitOnEveryNodeAndSurviveTheLeadersDeath() throws Exception {
        startGroup();
        RaftGroupNode leader = awaitLeader();
        List<CompletableFuture<AppendResult>> acks = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            acks.add(leader.append(List.of(body(i))));
        }
        List<Long> acked = new ArrayList<>();
        for (CompletableFuture<AppendResult> f : acks) {
            AppendResult r = f.get();
            assertEquals(AppendResult.Status.OK, r.status());
            assertTrue(r.positions()[0] >= 0);
            acked.add(r.index());
        }
        nodes.remove(leader.id()).close();
        RaftGroupNode next = awaitLeader();
        assertTrue(!next.id().equals(leader.id()));
        AppendResult after = next.append(List.of(body(200))).get();
        assertEquals(AppendResult.Status.OK, after.status());
        for (RaftGroupNode n : nodes.values()) {
            await().atMost(Duration.ofSeconds(5)).until(() -> n.status().commitIndex() >= after.index());
            for (int i = 0; i < acked.size(); i++) {
                Entry e = n.get(acked.get(i)).get();
                assertEquals(EntryType.NORMAL, e.type());
                assertArrayEquals(body(i), e.data(), "entry " + acked.get(i) + " on " + n.id());
            }
        }
    }

    @Test
    void followerRefusesAppendsWithALeaderHint() throws Exception {
        startGroup();
        RaftGroupNode leader = awaitLeader();
        RaftGroupNode follower = nodes.values().stream().filter(n -> n != leader).findFirst().orElseThrow();
        await().atMost(Duration.ofSeconds(5)).until(() -> leader.id().equals(follower.status().leaderId()));
        AppendResult r = follower.append(List.of(body(0))).get();
        assertEquals(AppendResult.Status.NOT_LEADER, r.status());
        assertEquals(leader.id(), r.leaderHint());
    }

    @Test
    void builtAppendsRunTheirBuilderOnlyWhenTakenInLogOrder() throws Exception {
        startGroup();
        RaftGroupNode leader = awaitLeader();
        RaftGroupNode follower = nodes.values().stream().filter(n -> n != leader).findFirst().orElseThrow();
        await().atMost(Duration.ofSeconds(5)).until(() -> leader.id().equals(follower.status().leaderId()));
        // Each builder numbers its entry from one counter, as a caller numbering a queue's messages would.
        int[] next = {0};
        List<Long> terms = new ArrayList<>();
        EntryBuilder numbered = term -> {
            terms.add(term);
            return List.of(body(next[0]++));
        };

        // Refused at a follower: the builder never runs, nothing is numbered.
        assertEquals(AppendResult.Status.NOT_LEADER, follower.append(numbered).get().status());
        // Refused while the leadership is being handed over (to a node that will not take it in time).
        String down = follower.id();
        nodes.remove(down).close();
        assertTrue(leader.transferLeadership(down).get().accepted());
        // Appends are taken while it is announced (a heartbeat interval), then refused while the transfer runs.
        await("the transfer started").atMost(Duration.ofSeconds(5)).pollInterval(Duration.ofMillis(2))
            .until(() -> leader.append(List.of(body(-1))).get().status() == AppendResult.Status.TRANSFERRING);
        assertEquals(AppendResult.Status.TRANSFERRING, leader.append(numbered).get().status());
        assertEquals(0, next[0]);

        // Taken once the transfer timed out: builders run once each, in log order, with the leader's term.
        List<CompletableFuture<AppendResult>> taken = new ArrayList<>();
        await("the transfer timed out").atMost(Duration.ofSeconds(10)).until(() -> {
            CompletableFuture<AppendResult> f = leader.append(numbered);
            if (f.get().status() == AppendResult.Status.OK) {
                taken.add(f);
                return true;
            }
            return false;
        });
        // A builder that throws refuses its append: nothing is appended, and the counter does not move.
        IllegalStateException no = new IllegalStateException("no");
        CompletableFuture<AppendResult> thrown = leader.append(term -> {
            throw no;
        });
        assertEquals(no, assertThrows(ExecutionException.class, thrown::get).getCause());
        for (int i = 0; i < 20; i++) {
            taken.add(leader.append(numbered));
        }
        long first = taken.get(0).get().index();
        for (int i = 0; i < taken.size(); i++) {
            AppendResult r = taken.get(i).get();
            assertEquals(AppendResult.Status.OK, r.status());
            assertEquals(first + i, r.index());
            assertArrayEquals(body(i), leader.get(r.index()).get().data(), "entry " + r.index());
        }
        assertEquals(taken.size(), next[0]);
        assertEquals(List.of(leader.status().term()), terms.stream().distinct().toList());
    }

    @Test
    void readIndexOnTheLeaderCoversEveryAckedAppend() throws Exception {
        startGroup();
        RaftGroupNode leader = awaitLeader();
        AppendResult w = leader.append(List.of(body(1))).get();
        assertEquals(AppendResult.Status.OK, w.status());
        assertTrue(leader.readIndex(false).get() >= w.index());
        assertTrue(leader.readIndex(true).get() >= w.index());
    }

    @Test
    void clientFindsTheLeaderAppendsReadsAndFollowsAFailover() throws Exception {
        startGroup();
        Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
        transports.forEach((id, t) -> addresses.put(id, t.localAddress()));
        try (RaftClient client = new RaftClient("g", addresses, 3000, 40)) {
            ClientProtocol.Response first = client.append(body(0)).get();
            assertEquals(ClientProtocol.Status.OK, first.status());
            assertEquals(awaitLeader().id(), client.leader());
            ClientProtocol.Response got = client.get(first.index()).get();
            assertEquals(ClientProtocol.Status.OK, got.status());
            assertArrayEquals(body(0), got.entry().data());
            assertEquals(ClientProtocol.Status.NOT_FOUND, client.get(first.index() + 1000).get().status());
            ClientProtocol.Response meta = client.metadata(client.leader()).get();
            assertEquals("LEADER", meta.role());
            assertEquals(2, meta.followers().size());

            String dead = client.leader();
            nodes.remove(dead).close();
            transports.remove(dead).close();
            // The client's own bounded retries (with backoff) span the election.
            ClientProtocol.Response afterFailover = client.append(body(1)).get();
            assertEquals(ClientProtocol.Status.OK, afterFailover.status());
            assertTrue(!dead.equals(client.leader()));
            assertTrue(afterFailover.index() > first.index());
            assertArrayEquals(body(0), client.get(first.index()).get().entry().data());
        }
    }

    @Test
    void metricsAreServedInPrometheusTextFormat() throws Exception {
        startGroup();
        RaftMetrics metrics = new RaftMetrics();
        nodes.values().forEach(metrics::add);
        transports.values().forEach(metrics::add);
        RaftGroupNode leader = awaitLeader();
        for (int i = 0; i < 10; i++) {
            assertEquals(AppendResult.Status.OK, leader.append(List.of(body(i))).get().status());
        }
        try (io.prometheus.metrics.exporter.httpserver.HTTPServer server = metrics.serve(0)) {
            java.net.http.HttpResponse<String> resp = java.net.http.HttpClient.newHttpClient().send(
                java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + server.getPort()
                    + "/metrics")).build(), java.net.http.HttpResponse.BodyHandlers.ofString());
            assertEquals(200, resp.statusCode());
            String text = resp.body();
            // Leadership may move on a loaded machine: each node shows exactly one role, and every append is counted.
            for (String id : IDS) {
                assertEquals(1, java.util.regex.Pattern.compile("dledger_role\\{group=\"g\",node=\"" + id
                    + "\",role=\"[A-Z_]+\"} 1").matcher(text).results().count(), text);
            }
            for (String histogram : List.of("dledger_append_latency_seconds", "dledger_commit_latency_seconds")) {
                long latencies = java.util.regex.Pattern.compile(histogram + "_count\\{[^}]*} (\\d+)")
                    .matcher(text).results().mapToLong(m -> Long.parseLong(m.group(1))).sum();
                assertEquals(10, latencies, histogram + ":\n" + text);
            }
            long elections = java.util.regex.Pattern.compile("dledger_elections_started_total\\{[^}]*} (\\d+)")
                .matcher(text).results().mapToLong(m -> Long.parseLong(m.group(1))).sum();
            assertTrue(elections >= 1, "the leader was elected: someone started an election\n" + text);
            assertTrue(text.contains("dledger_snapshots_sent_total{group=\"g\""), text);
            assertTrue(text.contains("dledger_snapshots_installed_total{group=\"g\""), text);
            assertTrue(text.contains("dledger_transport_refused_requests_total{"), text);
            assertTrue(text.contains("dledger_follower_lag_entries{"), text);
            assertTrue(text.contains("dledger_transport_bytes_out_total{"), text);
        }
    }
}
