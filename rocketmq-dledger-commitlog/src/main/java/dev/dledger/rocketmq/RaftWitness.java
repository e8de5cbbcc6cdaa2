package dev.dledger.rocketmq;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.server.FileNodeStorage;
import dev.dledger.raft.server.NodeStatus;
import dev.dledger.raft.server.RaftGroupNode;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.NettyTransport;
import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A witness broker ({@code raftWitness=true}, issue 19): the group's Raft node and nothing else. No
 * {@code BrokerController} is built: no CommitLog beyond the Raft log (whose entry bodies it drops once both data
 * members hold them, keeping index files for votes and log matching), no ConsumeQueue, no client port, never
 * registered at the nameserver, never the master (as leader it only hands its tail to a data member). Its Raft log is
 * where a data broker's would be ({@code ${storePathRootDir}/dledger-${dLegerSelfId}}), so the keys of
 * {@code broker.conf} mean what they mean on a data broker.
 *
 * <p>Thread-safe; {@link #close()} is idempotent.
 */
public final class RaftWitness implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RaftWitness.class);

    private final RaftStoreSettings settings;
    private final NettyTransport transport;
    private final RaftGroupNode node;
    private final CountDownLatch closed = new CountDownLatch(1);

    private RaftWitness(RaftStoreSettings settings, NettyTransport transport, RaftGroupNode node) {
        this.settings = settings;
        this.transport = transport;
        this.node = node;
    }

    /**
     * Opens the witness's Raft log and starts its node on the Raft port of {@code dLegerPeers}.
     *
     * @throws IllegalArgumentException if {@code settings} are not a witness's
     * @throws IOException              if the log's layout cannot be read
     */
    public static RaftWitness start(RaftStoreSettings settings) throws IOException {
        if (!settings.witness()) {
            throw new IllegalArgumentException("raftWitness is not true for " + settings.selfId());
        }
        StoreConfig config = StoreConfig.detect(settings.dir(), settings.storeConfig());
        FileNodeStorage storage = new FileNodeStorage(settings.dir(), config, settings.flush(), 1000);
        NettyTransport transport = new NettyTransport(RaftCommitLog.listenAddress(settings.selfAddress()),
            settings.transportOptions());
        RaftGroupNode node;
        try {
            node = new RaftGroupNode(RaftCommitLog.nodeOptions(settings),
                settings.join() ? Membership.EMPTY : RaftCommitLog.configuredMembership(settings), storage,
                StateMachine.NONE, transport);
        } catch (RuntimeException e) {
            transport.close();
            storage.close();
            throw e;
        }
        transport.setPeers(settings.group(), settings.peers());
        node.onPeers(m -> transport.setPeers(settings.group(), RaftCommitLog.peerAddresses(settings, m)));
        node.onRoleChange(s -> LOG.info("[{} {} t{}] witness is {} (leader {})", settings.group(), settings.selfId(),
            s.term(), s.role(), s.leaderId()));
        LOG.info("raft witness started: {}", settings);
        return new RaftWitness(settings, transport, node);
    }

    /** The node's status (role, term, indexes). */
    public NodeStatus status() {
        return node.status();
    }

    /** Blocks until {@link #close()}. */
    public void awaitClose() throws InterruptedException {
        closed.await();
    }

    @Override
    public void close() {
        if (closed.getCount() == 0) {
            return;
        }
        try {
            node.close();
            transport.close();
            LOG.info("raft witness {} of {} stopped", settings.selfId(), settings.group());
        } finally {
            closed.countDown();
        }
    }
}
