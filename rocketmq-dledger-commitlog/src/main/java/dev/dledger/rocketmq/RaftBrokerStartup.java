package dev.dledger.rocketmq;

import dev.dledger.raft.core.OneLine;
import java.util.Arrays;
import java.util.Properties;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.broker.BrokerStartup;
import org.apache.rocketmq.broker.ConfigContext;
import org.apache.rocketmq.common.BrokerConfig;
import org.apache.rocketmq.remoting.netty.NettyServerConfig;
import org.apache.rocketmq.store.config.BrokerRole;
import org.apache.rocketmq.store.config.MessageStoreConfig;

/**
 * The broker's main class: reads {@code broker.conf} as the stock broker does ({@code -c FILE}, {@code -n ADDR}). With
 * {@code enableDLegerCommitLog=true} the broker runs on our Raft commit log (the stock DLedger keys keep their
 * meaning); without it, it is the stock broker, untouched.
 *
 * <p>A wrong config is refused with one line naming the key, and exit code 2.
 */
public final class RaftBrokerStartup {

    private RaftBrokerStartup() {
    }

    public static void main(String[] args) throws Exception {
        BrokerController broker;
        try {
            broker = create(args);
        } catch (IllegalArgumentException e) {
            System.err.println("broker config: " + e.getMessage());
            System.exit(2);
            return;
        }
        if (broker == null) {
            BrokerStartup.main(args);
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(BrokerStartup.buildShutdownHook(broker), "ShutdownHook"));
        BrokerStartup.start(broker);
    }

    /**
     * Builds, initializes and returns the broker on the Raft log (not started), or null when the config does not
     * enable it.
     *
     * @throws IllegalArgumentException naming the key when the config is wrong
     */
    public static BrokerController create(String[] args) throws Exception {
        ConfigContext ctx = parse(args);
        RaftStoreSettings settings = settings(ctx);
        if (settings == null) {
            return null;
        }
        MessageStoreConfig msc = ctx.getMessageStoreConfig();
        BrokerConfig bc = ctx.getBrokerConfig();
        // The stock DLedger code never runs: our log replaces the CommitLog, and every node starts as a slave.
        msc.setEnableDLegerCommitLog(false);
        msc.setDuplicationEnable(false);
        msc.setTransientStorePoolEnable(false);
        msc.setBrokerRole(BrokerRole.SLAVE);
        bc.setBrokerId(settings.selfIndex() + 1);
        BrokerController broker = BrokerStartup.buildBrokerController(ctx);
        // Offsets, topics and groups ride the Raft log: their managers are replaced before they load (issue 15).
        BrokerStateLog state = BrokerStateLog.install(broker);
        if (!broker.initializeMetadata() || !broker.initializeMessageStore()) {
            broker.shutdown();
            throw new IllegalStateException("the broker could not initialize its metadata or store");
        }
        state.attach(RaftInstaller.install(broker, settings));
        if (!broker.recoverAndInitService()) {
            broker.shutdown();
            throw new IllegalStateException("the broker could not load its store (see the broker log)");
        }
        return broker;
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
