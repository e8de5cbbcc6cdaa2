package dev.dledger.raft.faults;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.transport.ClientProtocol;
import java.net.InetSocketAddress;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Asks every node of a group directly (not through the proxies) for its view: role, term, commit and last index,
 * and at the leader each follower's match index. A node that does not answer within {@code timeoutMs} (stopped,
 * paused) is absent from the answer. Thread-safe.
 */
final class GroupProbe implements AutoCloseable {

    private final Map<String, RaftClient> clients = new LinkedHashMap<>();
    private final long timeoutMs;

    GroupProbe(String group, Map<String, InetSocketAddress> nodes, long timeoutMs) {
        this.timeoutMs = timeoutMs;
        for (Map.Entry<String, InetSocketAddress> n : nodes.entrySet()) {
            clients.put(n.getKey(), new RaftClient(group, Map.of(n.getKey(), n.getValue()), timeoutMs, 1));
        }
    }

    /** Every answering node's metadata, asked in parallel. */
    Map<String, ClientProtocol.Response> views() {
        Map<String, CompletableFuture<ClientProtocol.Response>> asked = new LinkedHashMap<>();
        for (Map.Entry<String, RaftClient> c : clients.entrySet()) {
            asked.put(c.getKey(), c.getValue().metadata(c.getKey()));
        }
        Map<String, ClientProtocol.Response> views = new LinkedHashMap<>();
        for (Map.Entry<String, CompletableFuture<ClientProtocol.Response>> a : asked.entrySet()) {
            try {
                ClientProtocol.Response r = a.getValue().get(timeoutMs + 500, TimeUnit.MILLISECONDS);
                if (r.status() == ClientProtocol.Status.OK) {
                    views.put(a.getKey(), r);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return views;
            } catch (Exception e) {
                // no answer: the node is down, paused or unreachable
            }
        }
        return views;
    }

    /** The node that says it leads at the highest term, or null. */
    static String leaderOf(Map<String, ClientProtocol.Response> views) {
        String leader = null;
        long term = -1;
        for (Map.Entry<String, ClientProtocol.Response> v : views.entrySet()) {
            if ("LEADER".equals(v.getValue().role()) && v.getValue().term() > term) {
                leader = v.getKey();
                term = v.getValue().term();
            }
        }
        return leader;
    }

    /** The current leader as far as the nodes say, or null. */
    String leader() {
        return leaderOf(views());
    }

    /** One line per node: role, term, commit, last index, and the leader's followers. */
    static String describe(Map<String, ClientProtocol.Response> views) {
        StringBuilder b = new StringBuilder();
        for (Map.Entry<String, ClientProtocol.Response> v : views.entrySet()) {
            ClientProtocol.Response r = v.getValue();
            b.append(b.length() == 0 ? "" : "; ").append(v.getKey()).append(' ').append(r.role()).append(" t")
                .append(r.term()).append(" commit ").append(r.index()).append(" last ").append(r.lastIndex());
            if (!r.followers().isEmpty()) {
                b.append(" followers");
                for (ClientProtocol.PeerLag p : r.followers()) {
                    b.append(' ').append(p.id()).append('@').append(p.match());
                }
            }
        }
        return b.length() == 0 ? "no node answers" : b.toString();
    }

    @Override
    public void close() {
        clients.values().forEach(RaftClient::close);
    }
}
