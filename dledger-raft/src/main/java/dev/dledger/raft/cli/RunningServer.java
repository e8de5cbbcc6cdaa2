package dev.dledger.raft.cli;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.server.FileNodeStorage;
import dev.dledger.raft.server.RaftGroupNode;
import dev.dledger.raft.server.RaftMetrics;
import dev.dledger.raft.server.StorageException;
import dev.dledger.raft.statemachine.KeyValueStateMachine;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.store.StoreCorruptedException;
import dev.dledger.raft.transport.NettyTransport;
import dev.dledger.raft.transport.TransportException;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The nodes of one {@code dledger server} process: one port, one node per group, each in its own store folder
 * (locked against a second process), and the metrics endpoint. Started from a checked {@link ServerConfig}; a
 * failure while starting closes what was opened and throws {@link ServerConfig.ConfigException} with one line
 * that says what to do.
 */
final class RunningServer implements AutoCloseable {


    private final ServerConfig config;
    private final List<RaftGroupNode> nodes = new ArrayList<>();
    private final List<StateMachine> stateMachines = new ArrayList<>();
    /** Stores opened but not yet handed to a node: closed here if starting fails. */
    private final List<FileNodeStorage> unowned = new ArrayList<>();
    private NettyTransport transport;
    private RaftMetrics metrics;
    private HTTPServer metricsServer;
    private boolean closed;

    private RunningServer(ServerConfig config) {
        this.config = config;
    }

    /**
     * Opens every store, listens on this node's port, starts every node and the metrics endpoint.
     *
     * @throws ServerConfig.ConfigException naming what could not be opened or bound and what to do
     */
    static RunningServer start(ServerConfig config) {
        RunningServer s = new RunningServer(config);
        try {
            s.open();
            return s;
        } catch (RuntimeException e) {
            s.close();
            throw e;
        }
    }

    private void open() {
        for (ServerConfig.GroupSpec g : config.groups) {
            unowned.add(openStore(g));
        }
        int port = config.groups.get(0).port();
        InetSocketAddress bind = new InetSocketAddress(config.bindAddress, port);
        try {
            transport = new NettyTransport(bind, config.transportOptions);
        } catch (IllegalArgumentException e) {
            throw new ServerConfig.ConfigException("cannot set up TLS: " + e.getMessage() + "; check tlsKeyStore and "
                + "tlsTrustStore and their passwords");
        } catch (TransportException e) {
            throw new ServerConfig.ConfigException("cannot listen on " + config.bindAddress + ":" + port + " ("
                + rootMessage(e) + "); is another node running on that port? Stop it, or give "
                + config.groups.get(0).selfId() + " a free port in the peers");
        }
        metrics = new RaftMetrics();
        metrics.add(transport);
        for (int i = 0; i < config.groups.size(); i++) {
            ServerConfig.GroupSpec g = config.groups.get(i);
            StateMachine sm = config.stateMachine.equals("kv") ? new KeyValueStateMachine() : StateMachine.NONE;
            RaftGroupNode node;
            try {
                node = new RaftGroupNode(config.nodeOptions(g), Membership.of(g.peers().keySet().toArray(String[]::new)),
                    unowned.get(0), sm, transport);
                unowned.remove(0);
            } catch (StorageException e) {
                throw new ServerConfig.ConfigException("cannot start group " + g.group() + " from " + g.nodeDir()
                    + ": " + e.getMessage() + "; check the store with: dledger log verify --dir " + g.nodeDir());
            }
            transport.setPeers(g.group(), g.peers());
            nodes.add(node);
            stateMachines.add(sm);
            metrics.add(node);
        }
        if (config.metricsPort >= 0) {
            try {
                metricsServer = metrics.serve(config.metricsPort);
            } catch (IOException | RuntimeException e) {
                throw new ServerConfig.ConfigException("cannot serve metrics on port " + config.metricsPort + " ("
                    + rootMessage(e) + "); pick a free --metrics-port, or -1 for none");
            }
        }
    }

    /** Creates the node folder, then opens (and so locks) its store. */
    private FileNodeStorage openStore(ServerConfig.GroupSpec g) {
        Path dir = g.nodeDir();
        for (Path p = dir; p != null; p = p.getParent()) {
            if (Files.exists(p) && !Files.isDirectory(p)) {
                throw new ServerConfig.ConfigException("store folder " + dir + " cannot be created: " + p
                    + " is a file; point --store-dir (storeBaseDir) at a folder");
            }
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new ServerConfig.ConfigException("cannot create store folder " + dir + " (" + rootMessage(e)
                + "); point --store-dir (storeBaseDir) at a folder this user can write");
        }
        if (!Files.isWritable(dir)) {
            throw new ServerConfig.ConfigException("store folder " + dir + " is not writable; fix its permissions or "
                + "point --store-dir (storeBaseDir) elsewhere");
        }
        try {
            return new FileNodeStorage(dir, StoreConfig.detect(dir, config.storeConfig), config.flush,
                config.flushIntervalMs);
        } catch (StorageException | StoreCorruptedException e) {
            throw new ServerConfig.ConfigException("cannot open the store in " + dir + ": " + e.getMessage()
                + "; check it with: dledger log verify --dir " + dir);
        } catch (IOException e) {
            throw new ServerConfig.ConfigException("cannot read the store in " + dir + " (" + rootMessage(e)
                + "); check the folder's permissions");
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    }

    /** The nodes, one per group, in the config's order. */
    List<RaftGroupNode> nodes() {
        return nodes;
    }

    /** The state machine of each node, in the order of {@link #nodes()}. */
    List<StateMachine> stateMachines() {
        return stateMachines;
    }

    /** The address the node listens on. */
    InetSocketAddress address() {
        return transport.localAddress();
    }

    /** The metrics endpoint's port, or -1 when off. */
    int metricsPort() {
        return metricsServer == null ? -1 : metricsServer.getPort();
    }

    /** Whether some node stopped after a storage or state machine failure. */
    boolean anyFailed() {
        return nodes.stream().anyMatch(n -> n.status().failed());
    }

    /** One line per group saying what runs where. */
    void describe(PrintWriter out) {
        for (int i = 0; i < config.groups.size(); i++) {
            ServerConfig.GroupSpec g = config.groups.get(i);
            out.println("dledger server: group " + g.group() + " node " + g.selfId() + " (" + config.stateMachine
                + ", flush " + config.flush.name().toLowerCase(java.util.Locale.ROOT) + ") listening on "
                + config.bindAddress + ":" + address().getPort() + ", peers " + g.peers().keySet() + ", store "
                + g.nodeDir()
                + (metricsServer == null ? "" : ", metrics on port " + metricsPort()));
        }
        out.flush();
    }

    /**
     * Stops every node (each finishes the write in progress and fsyncs its log), the port and the metrics endpoint,
     * and each store releases its folder lock as it closes. Idempotent.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (metricsServer != null) {
            metricsServer.stop();
        }
        for (RaftGroupNode n : nodes) {
            if (metrics != null) {
                metrics.remove(n);
            }
            n.close();
        }
        unowned.forEach(FileNodeStorage::close);
        unowned.clear();
        if (transport != null) {
            transport.close();
        }
    }
}
