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
     * <p>A boot that fails half way leaves nothing running: the container is {@link #close closed} (the brokers
     * started so far shut down, the Raft port and threads stopped) before the failure is thrown.
     *
     * @throws IllegalArgumentException one line naming the broker's file and key when a broker config is wrong
     * @throws Exception                whatever else stopped a broker or the admin port from starting
     */
    public void start() throws Exception {
        try {
            boot();
        } catch (Exception | Error e) {
            LOG.error("broker container failed to start, stopping what started: {}", OneLine.of(String.valueOf(e)));
            close();
            throw e;
        }
    }

    private void boot() throws Exception {
        // One start for the whole boot: the brokers' Raft nodes start once every broker of the list started.
        raft.brokerStartBegan();
        try {
            for (String path : brokerConfigPaths) {
                addBroker(path);
            }
        } finally {
            raft.brokerStartEnded();
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
            raft.brokerStartBegan();
            try {
                return startBroker(ctx, path, group);
            } finally {
                // The broker's Raft node starts here, with the process done starting it (ContainerRaft#startNode).
                raft.brokerStartEnded();
            }
        } finally {
            lock.unlock();
        }
    }

    /** Builds and starts the broker of {@code path}, and hosts it. */
    private BrokerController startBroker(org.apache.rocketmq.broker.ConfigContext ctx, String path, String group)
        throws Exception {
        BrokerController broker;
        try {
            broker = RaftBrokerStartup.create(ctx, raft);
        } catch (IllegalArgumentException e) {
            if (!String.valueOf(e.getMessage()).contains("runs in this container already")) {
                raft.release(group);
            }
            throw naming(path, e);
        } catch (Exception | Error e) {
            raft.release(group);
            throw e;
        }
        RaftCommitLog log = (RaftCommitLog) RaftInstaller.unwrap(broker.getMessageStore()).getCommitLog();
        try {
            // Not BrokerStartup.start: it ends the process on a failure (System.exit), which in a container stops
            // every other broker with it, and during the boot hangs on the shutdown hook waiting for this lock.
            broker.start();
        } catch (Exception | Error e) {
            // Stopped whole even when its shutdown throws: its Raft node stopped and its group freed (C2).
            RuntimeException stop = stopInOrder(List.of(broker::shutdown, log::shutdown, () -> raft.release(group)));
            if (stop != null) {
                e.addSuppressed(stop);
            }
            throw e;
        }
        brokers.put(path, new Hosted(path, broker, log));
        LOG.info("[{} {}] broker added to the container from {}", log.settings().group(), log.settings().selfId(),
            path);
        return broker;
    }

    /**
     * {@code e} as one line that names {@code path} (once); an exception without a message is named by its class.
     */
    static IllegalArgumentException naming(String path, IllegalArgumentException e) {
        String why = e.getMessage() == null ? e.getClass().getName() : OneLine.of(e.getMessage());
        return new IllegalArgumentException(why.contains(path) ? why : path + ": " + why, e);
    }

    /**
     * Leaders spread when {@code preferredLeaderId} is not set: the container picks it with
     * {@link #automaticLeader}, from the group's name and peers alone, which every member of the group reads from its
     * own config alike; so every container picks the same leader for a group, whichever other groups it hosts (a
     * choice that depended on them let two containers prefer different nodes, and the leadership went back and forth
     * between them). A set key is kept.
     */
    private void balanceLeader(org.apache.rocketmq.broker.ConfigContext ctx, String path) {
        org.apache.rocketmq.store.config.MessageStoreConfig msc = ctx.getMessageStoreConfig();
        if (msc.getPreferredLeaderId() != null && !msc.getPreferredLeaderId().isBlank()) {
            return;
        }
        if (msc.getdLegerGroup() == null || msc.getdLegerGroup().isBlank() || msc.getdLegerPeers() == null) {
            return; // the settings check names the missing key
        }
        // The ids of dLegerPeers (id-host:port;...); a malformed list is named by the settings check.
        List<String> peers = new ArrayList<>();
        for (String p : msc.getdLegerPeers().split(";")) {
            int dash = p.indexOf('-');
            if (dash > 0) {
                peers.add(p.substring(0, dash).trim());
            }
        }
        String chosen = automaticLeader(msc.getdLegerGroup(), peers);
        if (chosen != null) {
            msc.setPreferredLeaderId(chosen);
            LOG.info("[{} {}] preferredLeaderId not set in {}: {} chosen to spread the leaders over the containers",
                msc.getdLegerGroup(), msc.getdLegerSelfId(), path, chosen);
        }
    }

    /**
     * The preferred leader of {@code group}: among its peers' ids (sorted by their number, then by name), the one at
     * the group's ordinal modulo the number of peers; null without peers. The ordinal is the number the group's name
     * ends with ({@code cg0}, {@code cg1}, {@code group-12}), else the name's {@link String#hashCode()} (the same in
     * every JVM), under which names differing only in their last character ({@code broker-a}, {@code broker-b},
     * {@code broker-c}) follow one another: groups named in a series take the peers in turn. A function of the group
     * and its peers only, so every member of the group computes the same.
     */
    static String automaticLeader(String group, List<String> peerIds) {
        if (peerIds.isEmpty()) {
            return null;
        }
        List<String> ids = new ArrayList<>(new java.util.TreeSet<>(peerIds));
        ids.sort(java.util.Comparator.comparingLong(RaftBrokerContainer::idNumber));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d{1,9})$").matcher(group);
        long ordinal = m.find() ? Long.parseLong(m.group(1)) : group.hashCode();
        return ids.get((int) Math.floorMod(ordinal, (long) ids.size()));
    }

    /** The number of a peer id {@code nN}, or Long.MAX_VALUE for another id (those sort last, by name). */
    private static long idNumber(String id) {
        return id.matches("n\\d{1,9}") ? Long.parseLong(id.substring(1)) : Long.MAX_VALUE;
    }

    /**
     * Shuts down and removes the broker {@code cluster:name:id} ({@code id} its stable id, or the one it has now).
     * When its node leads its group, the leadership is handed to another node first
     * ({@link RaftCommitLog#handOffLeadership}), so that the group has a leader at once instead of after an election
     * timeout. The removal is whole even when the broker's shutdown fails: its Raft node is stopped (its group
     * unregistered from the container's Raft port) and its group freed for another broker all the same.
     *
     * @return false when no hosted broker has that identity
     * @throws IllegalStateException when the broker was removed but its shutdown failed (named in one line)
     */
    public boolean removeBroker(String cluster, String name, long id) {
        lock.lock();
        try {
            for (Map.Entry<String, Hosted> e : brokers.entrySet()) {
                Hosted h = e.getValue();
                if (h.cluster().equals(cluster) && h.name().equals(name)
                    && (h.stableId() == id || h.broker().getBrokerConfig().getBrokerId() == id)) {
                    brokers.remove(e.getKey());
                    remove(h);
                    return true;
                }
            }
            return false;
        } finally {
            lock.unlock();
        }
    }

    private void remove(Hosted h) {
        String group = h.log().settings().group();
        String self = h.log().settings().selfId();
        // The broker's shutdown takes seconds; meanwhile its node must not lead, nor take the leadership back (the
        // group's preferred leader may be this very node), nor hold up its peers.
        RuntimeException failed = stopInOrder(List.of(h.log()::leaveBeforeShutdown, h.broker()::shutdown,
            h.log()::shutdown, () -> raft.release(group)));
        if (failed != null) {
            LOG.warn("[{} {}] broker removed from the container ({}), but its shutdown failed: {}", group, self,
                h.file(), OneLine.of(String.valueOf(failed)));
            throw new IllegalStateException(group + " " + self + " (" + h.file() + ") removed, but its shutdown "
                + "failed: " + OneLine.of(String.valueOf(failed)), failed);
        }
        LOG.info("[{} {}] broker removed from the container ({})", group, self, h.file());
    }

    /**
     * Runs every step in order, also those after a step that threw; returns the first failure (the later ones
     * suppressed in it), or null.
     */
    static RuntimeException stopInOrder(List<Runnable> steps) {
        RuntimeException first = null;
        for (Runnable step : steps) {
            try {
                step.run();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        return first;
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
            // Every group this container leads gets another leader before any broker here starts its (long)
            // shutdown, and no node here takes a leadership back meanwhile (see RaftCommitLog#leaveBeforeShutdown).
            for (Hosted h : brokers.values()) {
                try {
                    h.log().leaveBeforeShutdown();
                } catch (RuntimeException e) {
                    LOG.warn("broker of {} did not hand its leadership over before its shutdown: {}", h.file(),
                        OneLine.of(String.valueOf(e)));
                }
            }
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
                try {
                    admin.shutdown();
                } catch (RuntimeException e) {
                    LOG.warn("container admin port did not shut down cleanly: {}", OneLine.of(String.valueOf(e)));
                }
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
                    boolean removed;
                    try {
                        removed = removeBroker(h.getBrokerClusterName(), h.getBrokerName(), id);
                    } catch (RuntimeException e) {
                        response.setCode(ResponseCode.SYSTEM_ERROR);
                        response.setRemark("removeBroker: " + OneLine.of(String.valueOf(e.getMessage())));
                        return response;
                    }
                    if (removed) {
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
