package dev.dledger.raft.server;

import dev.dledger.raft.core.FollowerProgress;
import dev.dledger.raft.transport.NettyTransport;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The metrics of every group and transport of a process, in one Prometheus registry: role, term, commit, apply and
 * last index per node; match index and lag per follower on a leader; append latency (arrival at the leader until
 * written to the leader's own log) and commit latency (until committed by a quorum and applied); elections started, snapshots
 * sent and installed; bytes in and out, connections and requests the port refused. Served in the Prometheus text
 * format by {@link #serve(int)}. Thread-safe.
 */
public final class RaftMetrics {

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final List<RaftGroupNode> nodes = new CopyOnWriteArrayList<>();
    private final List<NettyTransport> transports = new CopyOnWriteArrayList<>();
    private final Histogram appendLatency;
    private final Histogram commitLatency;

    public RaftMetrics() {
        GaugeWithCallback.builder().name("dledger_role").help("1 for the node's current role, by role")
            .labelNames("group", "node", "role").callback(cb -> {
                for (RaftGroupNode n : nodes) {
                    NodeStatus s = n.status();
                    for (dev.dledger.raft.core.Role r : dev.dledger.raft.core.Role.values()) {
                        cb.call(s.role() == r ? 1 : 0, s.group(), s.id(), r.name());
                    }
                }
            }).register(registry);
        nodeGauge("dledger_term", "the node's current term", NodeStatus::term);
        nodeGauge("dledger_commit_index", "the node's commit index", NodeStatus::commitIndex);
        nodeGauge("dledger_applied_index", "the last index applied to the state machine", NodeStatus::appliedIndex);
        nodeGauge("dledger_last_index", "the node's last log index", NodeStatus::lastIndex);
        GaugeWithCallback.builder().name("dledger_follower_match_index").help("a follower's match index, on the leader")
            .labelNames("group", "node", "peer").callback(cb -> {
                for (RaftGroupNode n : nodes) {
                    NodeStatus s = n.status();
                    for (FollowerProgress p : s.followers()) {
                        cb.call(p.matchIndex(), s.group(), s.id(), p.id());
                    }
                }
            }).register(registry);
        GaugeWithCallback.builder().name("dledger_follower_lag_entries")
            .help("entries a follower lacks, on the leader").labelNames("group", "node", "peer").callback(cb -> {
                for (RaftGroupNode n : nodes) {
                    NodeStatus s = n.status();
                    for (FollowerProgress p : s.followers()) {
                        cb.call(Math.max(0, s.lastIndex() - p.matchIndex()), s.group(), s.id(), p.id());
                    }
                }
            }).register(registry);
        CounterWithCallback.builder().name("dledger_transport_bytes_in").help("bytes received by the transport")
            .labelNames("address").callback(cb -> {
                for (NettyTransport t : transports) {
                    cb.call(t.bytesIn(), t.localAddress().toString());
                }
            }).register(registry);
        CounterWithCallback.builder().name("dledger_transport_bytes_out").help("bytes sent by the transport")
            .labelNames("address").callback(cb -> {
                for (NettyTransport t : transports) {
                    cb.call(t.bytesOut(), t.localAddress().toString());
                }
            }).register(registry);
        nodeCounter("dledger_elections_started", "elections this node started as a candidate",
            RaftGroupNode.Counters::electionsStarted);
        nodeCounter("dledger_snapshots_sent", "InstallSnapshot transfers this node started to followers",
            RaftGroupNode.Counters::snapshotsSent);
        nodeCounter("dledger_snapshots_installed", "snapshots this node received from a leader and installed",
            RaftGroupNode.Counters::snapshotsInstalled);
        CounterWithCallback.builder().name("dledger_transport_refused_connections")
            .help("inbound connections closed at once: from a host that is no peer's, or over the per-address limit")
            .labelNames("address").callback(cb -> {
                for (NettyTransport t : transports) {
                    cb.call(t.refusedHosts() + t.refusedConnections(), t.localAddress().toString());
                }
            }).register(registry);
        CounterWithCallback.builder().name("dledger_transport_refused_requests")
            .help("client requests the port does not serve (client API off, or admin only)")
            .labelNames("address").callback(cb -> {
                for (NettyTransport t : transports) {
                    cb.call(t.refusedRequests(), t.localAddress().toString());
                }
            }).register(registry);
        appendLatency = Histogram.builder().name("dledger_append_latency_seconds")
            .help("time from an append's arrival at the leader until it is written to the leader's own log")
            .labelNames("group", "node").register(registry);
        commitLatency = Histogram.builder().name("dledger_commit_latency_seconds")
            .help("time from an append's arrival at the leader to its commit by a quorum and apply")
            .labelNames("group", "node").register(registry);
    }

    private void nodeGauge(String name, String help, java.util.function.ToLongFunction<NodeStatus> value) {
        GaugeWithCallback.builder().name(name).help(help).labelNames("group", "node").callback(cb -> {
            for (RaftGroupNode n : nodes) {
                NodeStatus s = n.status();
                cb.call(value.applyAsLong(s), s.group(), s.id());
            }
        }).register(registry);
    }

    private void nodeCounter(String name, String help,
                             java.util.function.ToLongFunction<RaftGroupNode.Counters> value) {
        CounterWithCallback.builder().name(name).help(help).labelNames("group", "node").callback(cb -> {
            for (RaftGroupNode n : nodes) {
                cb.call(value.applyAsLong(n.counters()), n.group(), n.id());
            }
        }).register(registry);
    }

    /** Exports a node's metrics and records its append and commit latencies. */
    public void add(RaftGroupNode node) {
        nodes.add(node);
        node.recordAppendLatency(appendLatency.labelValues(node.group(), node.id())::observe);
        node.recordCommitLatency(commitLatency.labelValues(node.group(), node.id())::observe);
    }

    /** Stops exporting a node. */
    public void remove(RaftGroupNode node) {
        nodes.remove(node);
    }

    /** Exports a transport's byte counters. */
    public void add(NettyTransport transport) {
        transports.add(transport);
    }

    /** Serves {@code /metrics} on {@code port} (0 picks a free one); close the server to stop. */
    public HTTPServer serve(int port) throws IOException {
        return HTTPServer.builder().port(port).registry(registry).buildAndStart();
    }

    /** The current metrics in the Prometheus text format. */
    public String scrape() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            new PrometheusTextFormatWriter(false).write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString(StandardCharsets.UTF_8);
    }
}
