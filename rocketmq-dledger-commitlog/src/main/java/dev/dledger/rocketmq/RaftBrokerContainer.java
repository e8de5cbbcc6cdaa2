package dev.dledger.rocketmq;

import dev.dledger.raft.core.OneLine;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.locks.ReentrantLock;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.broker.BrokerStartup;
import org.apache.rocketmq.remoting.netty.NettyRemotingServer;
import org.apache.rocketmq.remoting.netty.NettyRequestProcessor;
import org.apache.rocketmq.remoting.netty.NettyServerConfig;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.apache.rocketmq.remoting.protocol.RequestCode;
import org.apache.rocketmq.remoting.protocol.ResponseCode;
import org.apache.rocketmq.remoting.protocol.header.AddBrokerRequestHeader;
import org.apache.rocketmq.remoting.protocol.header.RemoveBrokerRequestHeader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Several brokers on the Raft log in one process: RocketMQ's BrokerContainer for brokers with
 * {@code enableDLegerCommitLog=true}. Each broker is a whole broker of its own (its own {@code listenPort}, store and
 * Raft log); their Raft groups share the container's Raft port and driver threads ({@link ContainerRaft}).
 *
 * <p>The container's config has the stock container's keys: {@code listenPort} (the container's admin port, where
 * {@code mqadmin addBroker -c HOST:PORT -b FILE} and {@code mqadmin removeBroker -c HOST:PORT -b CLUSTER:NAME:ID}
 * arrive; default 10811), {@code namesrvAddr} (given to every broker, over its own file's; default: each broker's
 * own), {@code brokerConfigPaths} (the broker configs started with the container, separated by {@code :}; default
 * none), and ours: {@code raftLoopThreads} (the Raft driver threads every group shares; default 2) and
 * {@code raftFlushThreads} (the fsync threads every group's Raft log shares, for {@code flushDiskType} either way;
 * default 2): a broker added at run time starts no Raft thread of its own.
 *
 * <p>A broker is named, in {@code removeBroker}, by its cluster, its {@code brokerName} and either its stable id
 * ({@code dLegerSelfId}'s number + 1, the id it has as a follower) or the id it has right now (0 on the leader).
 *
 * <p>Thread-safe: adds and removes are serialized.
 */
public final class RaftBrokerContainer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RaftBrokerContainer.class);

    /** The container's own keys, with their defaults. */
    public static final Map<String, String> KEYS = Map.of("listenPort", "10811", "namesrvAddr", "",
        "brokerConfigPaths", "", "raftLoopThreads", "2", "raftFlushThreads", "2");

    /** One broker of the container. */
    private record Hosted(String file, BrokerController broker, RaftCommitLog log) {
        String cluster() {
            return broker.getBrokerConfig().getBrokerClusterName();
        }

        String name() {
            return broker.getBrokerConfig().getBrokerName();
        }

        long stableId() {
            return log.settings().selfIndex() + 1L;
        }
    }

    private final int listenPort;
    private final String namesrvAddr;
    private final List<String> brokerConfigPaths;
    private final ContainerRaft raft;
    private final ReentrantLock lock = new ReentrantLock();
    private final Map<String, Hosted> brokers = new LinkedHashMap<>();
    /** The groups of {@code brokerConfigPaths} (read at start), for {@link #balanceLeader}. */
    private final java.util.Set<String> bootGroups = new java.util.TreeSet<>();
    private NettyRemotingServer admin;
    private ExecutorService adminExecutor;
    private boolean closed;

    /**
     * Reads the container's config.
     *
     * @throws IllegalArgumentException one line naming the key that is wrong
     */
    public RaftBrokerContainer(Properties config) {
        for (String k : config.stringPropertyNames()) {
            if (!KEYS.containsKey(k)) {
                throw new IllegalArgumentException("container config: " + k + " is not a key of the container "
                    + "(keys: " + new java.util.TreeSet<>(KEYS.keySet()) + "; broker keys go in the broker configs)");
            }
        }
        this.listenPort = port(config, "listenPort");
        String ns = config.getProperty("namesrvAddr", "").trim();
        this.namesrvAddr = ns.isEmpty() ? null : ns;
        List<String> paths = new ArrayList<>();
        for (String p : config.getProperty("brokerConfigPaths", "").split(":")) {
            if (!p.isBlank()) {
                paths.add(p.trim());
            }
        }
        this.brokerConfigPaths = List.copyOf(paths);
        this.raft = new ContainerRaft(positive(config, "raftLoopThreads"), positive(config, "raftFlushThreads"));
    }

    private static int port(Properties config, String key) {
        int p = positive(config, key);
        if (p > 65535) {
            throw new IllegalArgumentException("container config: " + key + "=" + p + " is not a port (1-65535)");
        }
        return p;
    }

    private static int positive(Properties config, String key) {
        String v = config.getProperty(key, KEYS.get(key)).trim();
        try {
            int n = Integer.parseInt(v);
            if (n < 1) {
                throw new IllegalArgumentException("container config: " + key + "=" + v + " must be positive");
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("container config: " + key + "=" + OneLine.of(v) + " is not a number");
        }
    }

    /** The broker configs the container starts with, in order. */
    public List<String> brokerConfigPaths() {
        return brokerConfigPaths;
    }

    /** The container's admin port. */
    public int listenPort() {
        return listenPort;
    }

    /**
     * Starts every broker of {@code brokerConfigPaths}, in order, then the admin port (so an {@code addBroker} never
     * waits for the boot).
     *
     * @throws IllegalArgumentException one line naming the broker's file and key when a broker config is wrong; the
     *                                  brokers started so far keep running (the caller closes the container)
     */
    public void start() throws Exception {
        for (String path : brokerConfigPaths) {
            try {
                String group = RaftBrokerStartup.parse(new String[] {"-c", path}).getMessageStoreConfig()
                    .getdLegerGroup();
                if (group != null && !group.isBlank()) {
                    bootGroups.add(group);
                }
            } catch (IllegalArgumentException e) {
                // addBroker below names the file and what is wrong with it
            }
        }
        for (String path : brokerConfigPaths) {
            addBroker(path);
        }
        NettyServerConfig server = new NettyServerConfig();
        server.setListenPort(listenPort);
        // An addBroker is answered once its broker started, which on a loaded machine takes a while: the connection
        // must not be closed as idle meanwhile (stock's default is 120 s).
        server.setServerChannelMaxIdleTimeSeconds(ADMIN_IDLE_SECONDS);
        admin = new NettyRemotingServer(server);
        adminExecutor = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "container-admin");
            t.setDaemon(true);
            return t;
        });
        admin.registerDefaultProcessor(new AdminProcessor(), adminExecutor);
        admin.start();
        LOG.info("broker container: admin port {}, {} brokers started", listenPort, brokerConfigPaths.size());
    }

    /** Seconds an admin connection may stay silent (an addBroker in progress) before it is closed. */
    private static final int ADMIN_IDLE_SECONDS = 900;

    /**
     * Builds, starts and hosts the broker of {@code path}.
     *
     * @throws IllegalArgumentException one line naming the file and what is wrong (not a Raft broker, a broker of the
     *                                  same name already here, a key that does not fit the container)
     */
    public BrokerController addBroker(String path) throws Exception {
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("the container is shut down");
            }
            if (path == null || path.isBlank()) {
                throw new IllegalArgumentException("addBroker: no broker config path given");
            }
            if (!Files.isRegularFile(Path.of(path))) {
                throw new IllegalArgumentException("addBroker: broker config " + path + " is not a file");
            }
            List<String> args = new ArrayList<>(List.of("-c", path));
            if (namesrvAddr != null) {
                args.add("-n");
                args.add(namesrvAddr);
            }
            String[] argv = args.toArray(String[]::new);
            // Checked before anything is built: a second broker of a hosted group would share its store and group.
            org.apache.rocketmq.broker.ConfigContext ctx = RaftBrokerStartup.parse(argv);
            if (!ctx.getMessageStoreConfig().isEnableDLegerCommitLog()) {
                throw new IllegalArgumentException(path + ": enableDLegerCommitLog is not true; this container runs "
                    + "brokers on the Raft log only");
            }
            String name = ctx.getBrokerConfig().getBrokerName();
            String group = ctx.getMessageStoreConfig().getdLegerGroup();
            for (Hosted h : brokers.values()) {
                if (h.name().equals(name) || h.log().settings().group().equals(group)) {
                    throw new IllegalArgumentException(path + ": brokerName=" + name + " (dLegerGroup=" + group
                        + ") is hosted here already (from " + h.file() + "); a container hosts one broker of a group");
                }
            }
            balanceLeader(ctx, path);
            BrokerController broker;
            try {
                broker = RaftBrokerStartup.create(ctx, raft);
            } catch (IllegalArgumentException e) {
                if (!e.getMessage().contains("runs in this container already")) {
                    raft.release(group);
                }
                throw new IllegalArgumentException(OneLine.of(e.getMessage()).contains(path) ? e.getMessage()
                    : path + ": " + OneLine.of(e.getMessage()), e);
            } catch (Exception | Error e) {
                raft.release(group);
                throw e;
            }
            RaftCommitLog log = (RaftCommitLog) RaftInstaller.unwrap(broker.getMessageStore()).getCommitLog();
            try {
                BrokerStartup.start(broker);
            } catch (Exception | Error e) {
                broker.shutdown();
                raft.release(group);
                throw e;
            }
            brokers.put(path, new Hosted(path, broker, log));
            LOG.info("[{} {}] broker added to the container from {}", log.settings().group(), log.settings().selfId(),
                path);
            return broker;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Leaders spread when {@code preferredLeaderId} is not set: the container picks it. The groups it hosts (with the
     * one being added, and those of {@code brokerConfigPaths}) in name order take the group's peers, in id order, in
     * turn: with three containers hosting the same three groups, each container is the preferred leader of one.
     * Every container computes the same choice as long as they list the same groups. A set key is kept.
     */
    private void balanceLeader(org.apache.rocketmq.broker.ConfigContext ctx, String path) {
        org.apache.rocketmq.store.config.MessageStoreConfig msc = ctx.getMessageStoreConfig();
        if (msc.getPreferredLeaderId() != null && !msc.getPreferredLeaderId().isBlank()) {
            return;
        }
        if (msc.getdLegerGroup() == null || msc.getdLegerGroup().isBlank() || msc.getdLegerPeers() == null) {
            return; // the settings check names the missing key
        }
        java.util.SortedSet<String> groups = new java.util.TreeSet<>(bootGroups);
        for (Hosted h : brokers.values()) {
            groups.add(h.log().settings().group());
        }
        groups.add(msc.getdLegerGroup());
        // The ids of dLegerPeers (id-host:port;...); a malformed list is named by the settings check.
        List<String> peers = new ArrayList<>();
        for (String p : msc.getdLegerPeers().split(";")) {
            int dash = p.indexOf('-');
            if (dash > 0) {
                peers.add(p.substring(0, dash).trim());
            }
        }
        String chosen = automaticLeader(new ArrayList<>(groups), msc.getdLegerGroup(), peers);
        if (chosen != null) {
            msc.setPreferredLeaderId(chosen);
            LOG.info("[{} {}] preferredLeaderId not set in {}: {} chosen to spread the leaders over the containers",
                msc.getdLegerGroup(), msc.getdLegerSelfId(), path, chosen);
        }
    }

    /**
     * The preferred leader of {@code group}: the peer (ids sorted by their number) at the group's position among
     * {@code groups} (sorted by name), modulo the number of peers; null when the group is not among them.
     */
    static String automaticLeader(List<String> groups, String group, List<String> peerIds) {
        List<String> sortedGroups = new ArrayList<>(new java.util.TreeSet<>(groups));
        int i = sortedGroups.indexOf(group);
        if (i < 0 || peerIds.isEmpty()) {
            return null;
        }
        List<String> ids = new ArrayList<>(peerIds);
        ids.sort(java.util.Comparator.comparingLong(id -> id.matches("n\\d{1,9}") ? Long.parseLong(id.substring(1))
            : Long.MAX_VALUE));
        return ids.get(i % ids.size());
    }

    /**
     * Shuts down and removes the broker {@code cluster:name:id} ({@code id} its stable id, or the one it has now).
     *
     * @return false when no hosted broker has that identity
     */
    public boolean removeBroker(String cluster, String name, long id) {
        lock.lock();
        try {
            for (Map.Entry<String, Hosted> e : brokers.entrySet()) {
                Hosted h = e.getValue();
                if (h.cluster().equals(cluster) && h.name().equals(name)
                    && (h.stableId() == id || h.broker().getBrokerConfig().getBrokerId() == id)) {
                    brokers.remove(e.getKey());
                    h.broker().shutdown();
                    raft.release(h.log().settings().group());
                    LOG.info("[{} {}] broker removed from the container ({})", h.log().settings().group(),
                        h.log().settings().selfId(), h.file());
                    return true;
                }
            }
            return false;
        } finally {
            lock.unlock();
        }
    }

    /** The hosted brokers, by config path. */
    public Map<String, BrokerController> brokers() {
        lock.lock();
        try {
            Map<String, BrokerController> out = new LinkedHashMap<>();
            brokers.forEach((k, v) -> out.put(k, v.broker()));
            return out;
        } finally {
            lock.unlock();
        }
    }

    /** Shuts every broker down, then the shared Raft port, then the admin port. */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            for (Hosted h : brokers.values()) {
                try {
                    h.broker().shutdown();
                } catch (RuntimeException e) {
                    LOG.warn("broker of {} did not shut down cleanly: {}", h.file(), OneLine.of(String.valueOf(e)));
                }
            }
            brokers.clear();
            raft.close();
            if (admin != null) {
                admin.shutdown();
            }
            if (adminExecutor != null) {
                adminExecutor.shutdownNow();
            }
        } finally {
            lock.unlock();
        }
    }

    /** The container's admin requests: ADD_BROKER and REMOVE_BROKER; anything else is not supported here. */
    private final class AdminProcessor implements NettyRequestProcessor {
        @Override
        public RemotingCommand processRequest(io.netty.channel.ChannelHandlerContext ctx, RemotingCommand request)
            throws Exception {
            RemotingCommand response = RemotingCommand.createResponseCommand(null);
            switch (request.getCode()) {
                case RequestCode.ADD_BROKER -> {
                    AddBrokerRequestHeader h = (AddBrokerRequestHeader) request
                        .decodeCommandCustomHeader(AddBrokerRequestHeader.class);
                    try {
                        addBroker(h.getConfigPath());
                        response.setCode(ResponseCode.SUCCESS);
                    } catch (Exception e) {
                        String why = OneLine.of(String.valueOf(e.getMessage()));
                        LOG.warn("addBroker {} refused: {}", h.getConfigPath(), why);
                        response.setCode(ResponseCode.SYSTEM_ERROR);
                        response.setRemark("addBroker refused: " + why);
                    }
                }
                case RequestCode.REMOVE_BROKER -> {
                    RemoveBrokerRequestHeader h = (RemoveBrokerRequestHeader) request
                        .decodeCommandCustomHeader(RemoveBrokerRequestHeader.class);
                    long id = h.getBrokerId() == null ? -1 : h.getBrokerId();
                    if (removeBroker(h.getBrokerClusterName(), h.getBrokerName(), id)) {
                        response.setCode(ResponseCode.SUCCESS);
                    } else {
                        response.setCode(ResponseCode.BROKER_NOT_EXIST);
                        response.setRemark("removeBroker: no broker " + h.getBrokerClusterName() + ":"
                            + h.getBrokerName() + ":" + id + " in this container");
                    }
                }
                default -> {
                    response.setCode(ResponseCode.REQUEST_CODE_NOT_SUPPORTED);
                    response.setRemark("request code " + request.getCode() + " is not served by the broker container; "
                        + "ask the broker at its own listenPort");
                }
            }
            return response;
        }

        @Override
        public boolean rejectRequest() {
            return false;
        }
    }
}
