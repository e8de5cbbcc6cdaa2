package dev.dledger.rocketmq;

import dev.dledger.raft.core.OneLine;
import java.lang.reflect.Field;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.broker.BrokerStartup;
import org.apache.rocketmq.broker.ConfigContext;
import org.apache.rocketmq.common.BrokerConfig;
import org.apache.rocketmq.common.MQVersion;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.remoting.netty.NettyServerConfig;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.config.BrokerRole;
import org.apache.rocketmq.store.config.MessageStoreConfig;

/**
 * The broker's main class: reads {@code broker.conf} as the stock broker does ({@code -c FILE}, {@code -n ADDR}). With
 * {@code enableDLegerCommitLog=true} the broker runs on our Raft commit log (the stock DLedger keys keep their
 * meaning); without it, it is the stock broker, untouched. With {@code raftWitness=true} as well it runs the group's
 * Raft node only ({@link RaftWitness}, issue 19).
 *
 * <p>A wrong config is refused with one line naming the key, and exit code 2.
 */
public final class RaftBrokerStartup {

    private RaftBrokerStartup() {
    }

    public static void main(String[] args) throws Exception {
        BrokerController broker;
        try {
            ConfigContext ctx = parse(args);
            RaftStoreSettings settings = settings(ctx);
            if (settings != null && settings.witness()) {
                // raftWitness=true (issue 19): the Raft node only, no broker.
                RaftWitness witness = RaftWitness.start(settings);
                Runtime.getRuntime().addShutdownHook(new Thread(witness::close, "ShutdownHook"));
                witness.awaitClose();
                return;
            }
            broker = create(ctx, null);
        } catch (IllegalArgumentException e) {
            System.err.println((e instanceof UnsupportedRocketMqException ? "broker: " : "broker config: ")
                + e.getMessage());
            System.exit(2);
            return;
        }
        if (broker == null) {
            BrokerStartup.main(args);
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(shutdownHook(broker), "ShutdownHook"));
        BrokerStartup.start(broker);
    }

    /**
     * What a SIGTERM (or {@code mqshutdown broker}) runs: the broker's Raft node hands its leadership over and leaves
     * its group's work ({@link RaftCommitLog#leaveBeforeShutdown}), then stock RocketMQ's shutdown runs.
     */
    static Runnable shutdownHook(BrokerController broker) {
        Runnable stock = BrokerStartup.buildShutdownHook(broker);
        return () -> {
            try {
                if (broker.getMessageStore() != null
                    && RaftInstaller.unwrap(broker.getMessageStore()).getCommitLog() instanceof RaftCommitLog log) {
                    log.leaveBeforeShutdown();
                }
            } catch (RuntimeException e) {
                System.err.println("broker: leadership hand-over before the shutdown failed: "
                    + OneLine.of(String.valueOf(e)));
            }
            stock.run();
        };
    }

    /**
     * Builds, initializes and returns the broker on the Raft log (not started), or null when the config does not
     * enable it.
     *
     * @throws IllegalArgumentException naming the key when the config is wrong
     */
    public static BrokerController create(String[] args) throws Exception {
        return create(args, null);
    }

    /**
     * Builds, initializes and returns the broker on the Raft log (not started) on the shared Raft port and driver
     * threads of {@code container} (null: its own), or null when the config does not enable the Raft log.
     *
     * @throws IllegalArgumentException naming the key when the config is wrong, or when it does not fit the container
     */
    public static BrokerController create(String[] args, ContainerRaft container) throws Exception {
        return create(parse(args), container);
    }

    /**
     * {@link #create(String[], ContainerRaft)} of a config read already ({@link #parse}; the container may fill in
     * keys the file leaves out, such as {@code preferredLeaderId}).
     */
    static BrokerController create(ConfigContext ctx, ContainerRaft container) throws Exception {
        RaftStoreSettings settings = settings(ctx);
        // Before anything opens RocksDB, a stock broker's too (main starts it when this returns null): its library
        // from the store folder, not a new copy in the temporary folder at each start.
        RocksDbLibrary.loadUnder(Path.of(ctx.getMessageStoreConfig().getStorePathRootDir()));
        if (settings == null) {
            return null;
        }
        if (settings.witness()) {
            throw new IllegalArgumentException("raftWitness=true: a witness runs the Raft node only, not a broker"
                + (container != null ? " in a container" : "") + "; start it with bin/mqwitness -c FILE");
        }
        if (container != null) {
            container.admit(settings, ctx.getConfigFilePath());
        }
        checkRocketMqVersion();
        MessageStoreConfig msc = ctx.getMessageStoreConfig();
        BrokerConfig bc = ctx.getBrokerConfig();
        // The stock DLedger code never runs: our log replaces the CommitLog, and every node starts as a slave.
        msc.setEnableDLegerCommitLog(false);
        msc.setDuplicationEnable(false);
        msc.setTransientStorePoolEnable(false);
        msc.setBrokerRole(BrokerRole.SLAVE);
        bc.setBrokerId(settings.selfIndex() + 1);
        BrokerController broker = BrokerStartup.buildBrokerController(ctx);
        RaftBrokerConfiguration configuration = installConfiguration(broker, ctx, settings);
        // Offsets, topics and groups ride the Raft log: their managers are replaced before they load (issue 15).
        BrokerStateLog state = BrokerStateLog.install(broker);
        if (!broker.initializeMetadata() || !broker.initializeMessageStore()) {
            broker.shutdown();
            throw new IllegalStateException("the broker could not initialize its metadata or store");
        }
        RaftCommitLog raftLog = RaftInstaller.install(broker, settings, container);
        state.attach(raftLog);
        if (!broker.recoverAndInitService()) {
            broker.shutdown();
            throw new IllegalStateException("the broker could not load its store (see the broker log)");
        }
        // Loaded and not started: the timer store's flush service can still be replaced.
        TimerWheelFlush.install(broker, settings.group() + " " + settings.selfId());
        UpdateBrokerConfigGuard.install(broker, configuration);
        OffsetQueryGuard.install(broker, raftLog);
        SendForwardGuard.install(broker, raftLog);
        return broker;
    }

    /**
     * Replaces the broker's stock {@link org.apache.rocketmq.remoting.Configuration} (a private field, set in its
     * constructor; nothing has taken a reference to it before {@code initializeMessageStore}) with one that keeps
     * {@code broker.conf} the user's ({@link RaftBrokerConfiguration}).
     */
    static RaftBrokerConfiguration installConfiguration(BrokerController broker, ConfigContext ctx,
                                                        RaftStoreSettings settings) {
        String path = ctx.getConfigFilePath();
        Properties fileKeys = ctx.getProperties() == null ? new Properties() : ctx.getProperties();
        RaftBrokerConfiguration configuration = new RaftBrokerConfiguration(
            path == null || path.isBlank() ? null : Path.of(path), fileKeys,
            "[" + settings.group() + " " + settings.selfId() + "]", broker.getBrokerConfig(),
            broker.getNettyServerConfig(), broker.getNettyClientConfig(), broker.getMessageStoreConfig());
        try {
            Field f = BrokerController.class.getDeclaredField("configuration");
            f.setAccessible(true);
            f.set(broker, configuration);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("cannot replace BrokerController.configuration (is this RocketMQ "
                + SUPPORTED_ROCKETMQ + "?): " + e, e);
        }
        if (broker.getConfiguration() != configuration) {
            throw new IllegalStateException("BrokerController.configuration was not replaced");
        }
        return configuration;
    }

    /** The RocketMQ release this launcher is built and tested against. */
    static final String SUPPORTED_ROCKETMQ = "5.5.1";

    /**
     * Checks the RocketMQ on the classpath: the version each broker-side jar declares (rocketmq-broker, -store,
     * -common, -remoting; their manifests' {@code Implementation-Version}) and {@code MQVersion.CURRENT_VERSION} (read
     * at run time: the constant is inlined into our classes at compile time).
     *
     * @throws UnsupportedRocketMqException one line naming what was found and what is supported
     */
    static void checkRocketMqVersion() {
        Map<String, String> found = new LinkedHashMap<>();
        found.put("rocketmq-broker", BrokerController.class.getPackage().getImplementationVersion());
        found.put("rocketmq-store", DefaultMessageStore.class.getPackage().getImplementationVersion());
        found.put("rocketmq-common", MixAll.class.getPackage().getImplementationVersion());
        found.put("rocketmq-remoting", NettyServerConfig.class.getPackage().getImplementationVersion());
        String mqVersion;
        try {
            int v = MQVersion.class.getField("CURRENT_VERSION").getInt(null);
            mqVersion = MQVersion.getVersionDesc(v);
        } catch (ReflectiveOperationException | RuntimeException e) {
            mqVersion = "unknown (" + e + ")";
        }
        found.put("MQVersion", mqVersion);
        String problem = versionProblem(found);
        if (problem != null) {
            throw new UnsupportedRocketMqException(problem);
        }
    }

    /** The RocketMQ on the classpath is not the one this launcher supports. */
    static final class UnsupportedRocketMqException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        UnsupportedRocketMqException(String message) {
            super(message);
        }
    }

    /**
     * Null when every version in {@code found} (jar or {@code MQVersion} name to its version, null when the jar does
     * not say) is {@link #SUPPORTED_ROCKETMQ}, else one line naming the first that is not.
     */
    static String versionProblem(Map<String, String> found) {
        String want = "V" + SUPPORTED_ROCKETMQ.replace('.', '_');
        for (Map.Entry<String, String> e : found.entrySet()) {
            String v = e.getValue();
            if (v == null) {
                continue;
            }
            boolean ok = "MQVersion".equals(e.getKey()) ? v.equals(want) : v.equals(SUPPORTED_ROCKETMQ);
            if (!ok) {
                return "RocketMQ on the classpath is not the supported one: " + e.getKey() + " is " + OneLine.of(v)
                    + "; this launcher supports RocketMQ " + SUPPORTED_ROCKETMQ + " only (rocketmq-broker, "
                    + "rocketmq-store, rocketmq-common and rocketmq-remoting " + SUPPORTED_ROCKETMQ + ")";
            }
        }
        return null;
    }

    /**
     * Reads the command line and the config file as the stock broker does.
     *
     * @throws IllegalArgumentException naming the file when it is not a properties file (the stock reader's own
     *                                  message names nothing)
     */
    static ConfigContext parse(String[] args) throws Exception {
        try {
            return BrokerStartup.parseCmdLine(args);
        } catch (IllegalArgumentException e) {
            int c = Arrays.asList(args).indexOf("-c");
            String file = c >= 0 && c + 1 < args.length ? args[c + 1] : "(none given)";
            throw new IllegalArgumentException("config file " + file + " cannot be read: " + OneLine.of(e.getMessage())
                + "; it must be a properties file (key=value per line)", e);
        }
    }

    /**
     * The checked Raft settings of a broker config read as the stock broker reads it, or null when the config does not
     * enable the Raft log.
     *
     * @throws IllegalArgumentException naming the key when the config is wrong
     */
    static RaftStoreSettings settings(ConfigContext ctx) {
        MessageStoreConfig msc = ctx.getMessageStoreConfig();
        if (!msc.isEnableDLegerCommitLog()) {
            return null;
        }
        Properties props = ctx.getProperties() == null ? new Properties() : ctx.getProperties();
        try {
            return check(ctx.getBrokerConfig(), msc, ctx.getNettyServerConfig(), props);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(OneLine.of(e.getMessage()), e);
        }
    }

    /** Checks the keys the Raft log depends on; throws naming the first wrong one. */
    static RaftStoreSettings check(BrokerConfig bc, MessageStoreConfig msc, NettyServerConfig server, Properties props) {
        if (bc.getNamesrvAddr() == null || bc.getNamesrvAddr().isBlank()) {
            throw new IllegalArgumentException("namesrvAddr is missing: brokers on the Raft log register their leader "
                + "with a nameserver");
        }
        if (bc.isEnableControllerMode()) {
            throw new IllegalArgumentException("enableControllerMode=true cannot be combined with "
                + "enableDLegerCommitLog=true");
        }
        RaftStoreSettings settings = RaftStoreSettings.from(msc, props);
        int raftPort = settings.selfAddress().getPort();
        if (raftPort == server.getListenPort()) {
            throw new IllegalArgumentException("dLegerPeers gives " + settings.selfId() + " port " + raftPort
                + ", which is also listenPort");
        }
        int ha = msc.getHaListenPort() > 0 ? msc.getHaListenPort() : server.getListenPort() + 1;
        if (raftPort == ha) {
            throw new IllegalArgumentException("dLegerPeers gives " + settings.selfId() + " port " + raftPort
                + ", which is also haListenPort (listenPort + 1 unless set)");
        }
        return settings;
    }
}
