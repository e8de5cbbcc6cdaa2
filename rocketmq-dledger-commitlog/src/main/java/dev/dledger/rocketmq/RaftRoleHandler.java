package dev.dledger.rocketmq;

import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.NodeStatus;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.config.BrokerRole;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns the Raft role into the broker's role. A follower or candidate is a SLAVE with brokerId = the number of its
 * id plus one ({@link RaftStoreSettings#selfIndex()}: n1 is 2, an added n3 is 4). A new leader first waits until
 * everything committed is applied and dispatched to the ConsumeQueues, rebuilds the queue offset table from them,
 * opens the commit log for puts in its term
 * ({@link RaftCommitLog#openForPuts}), then becomes SYNC_MASTER with brokerId 0, registers with the nameserver at once
 * and then starts the special services (schedule, transaction check, timer, pop revive). A master that steps down
 * stays registered as master until the nameserver lists its successor (at most 3 s), so that a route never lacks a
 * master while the leadership moves; the sends it gets meanwhile are forwarded ({@link SendForwardGuard}). A leader
 * of a new term that is still SYNC_MASTER from an earlier one (it lost and won leadership between two runs of this
 * handler) gets its table rebuilt and its puts opened for the new term the same way.
 *
 * <p>Role changes arrive on the Raft node's thread and are handled, in order, on a thread of their own; a handler run
 * always acts on the node's latest status, so a burst of changes ends in the right role.
 */
final class RaftRoleHandler implements Consumer<NodeStatus>, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RaftRoleHandler.class);
    /** How long a master that stepped down waits for the nameserver to list the next one (see awaitOtherMaster). */
    private static final long MASTER_WAIT_MS = 3000;

    private final BrokerController broker;
    private final DefaultMessageStore store;
    private final RaftCommitLog log;
    private final int followerBrokerId;
    private final MasterLookup masters;
    private final ExecutorService executor;
    private final AtomicBoolean queued = new AtomicBoolean();
    private volatile boolean closed;

    RaftRoleHandler(BrokerController broker, DefaultMessageStore store, RaftCommitLog log) {
        this.broker = broker;
        this.store = store;
        this.log = log;
        this.followerBrokerId = log.settings().selfIndex() + 1;
        this.masters = Objects.requireNonNull(log.masters(), "the broker's master lookup (RaftInstaller sets it)");
        this.executor = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "RaftRoleHandler-" + log.settings().selfId());
            t.setDaemon(true);
            return t;
        });
    }

    @Override
    public void accept(NodeStatus status) {
        if (closed) {
            return;
        }
        // The group in the prefix: the brokers of a container (RaftBrokerContainer) share one log file.
        LOG.info("[{} {} t{}] raft role is now {} (leader {})", log.settings().group(), status.id(), status.term(),
            status.role(), status.leaderId());
        if (queued.compareAndSet(false, true)) {
            executor.execute(this::handle);
        }
    }

    private void handle() {
        queued.set(false);
        if (closed || log.node() == null) {
            return;
        }
        try {
            if (log.node().status().role() == Role.LEADER) {
                becomeMasterWhenCaughtUp();
            } else {
                becomeSlave();
            }
        } catch (RuntimeException e) {
            LOG.error("role change failed", e);
        }
    }

    private void becomeMasterWhenCaughtUp() {
        long started = System.currentTimeMillis();
        while (!closed && log.node().status().role() == Role.LEADER) {
            long term = log.node().status().term();
            if (log.readyForMaster()) {
                long caughtUp = System.currentTimeMillis();
                boolean master = broker.getMessageStoreConfig().getBrokerRole() == BrokerRole.SYNC_MASTER
                    && broker.getBrokerConfig().getBrokerId() == MixAll.MASTER_ID;
                if (master && log.putTerm() == term) {
                    return;
                }
                // The queue offsets of this term start from what this node committed; an earlier term's table (a
                // leader that lost and won again before this handler saw it step down) may be behind or ahead of it.
                // Puts stay refused while the table is rebuilt.
                log.closeForPuts();
                store.recoverTopicQueueTable();
                long tableRebuilt = System.currentTimeMillis();
                log.openForPuts(term);
                if (master) {
                    LOG.info("broker {} stays SYNC_MASTER at raft term {}, queue offsets rebuilt",
                        broker.getBrokerConfig().getBrokerName(), term);
                    return;
                }
                // Before clients see a master: e.g. the first import of config files written without the log.
                log.runBeforeMaster();
                broker.getSlaveSynchronize().setMasterAddr(null);
                broker.getBrokerConfig().setBrokerId(MixAll.MASTER_ID);
                broker.getMessageStoreConfig().setBrokerRole(BrokerRole.SYNC_MASTER);
                // Registered first: clients can send as soon as the nameserver lists this master. The special
                // services (schedule, timer, transaction check, pop revive) then start; what they deliver waits in
                // the log until they run, as it does at any start.
                register();
                long registered = System.currentTimeMillis();
                broker.changeSpecialServiceStatus(true);
                long servicesStarted = System.currentTimeMillis();
                LOG.info("broker {} is SYNC_MASTER (brokerId 0) at raft term {}, registered {} ms after it became raft "
                    + "leader (caught up {} ms, queue table {} ms, registration {} ms; special services then {} ms)",
                    broker.getBrokerConfig().getBrokerName(), term, registered - started, caughtUp - started,
                    tableRebuilt - caughtUp, registered - tableRebuilt, servicesStarted - registered);
                return;
            }
            pause();
        }
        // Leadership went away while catching up: the next role change brings this node back as a slave.
        if (!closed) {
            becomeSlave();
        }
    }

    private void becomeSlave() {
        // Puts stop first: the commit log refuses them from here on, whatever the broker's role says.
        log.closeForPuts();
        if (broker.getMessageStoreConfig().getBrokerRole() == BrokerRole.SLAVE
            && broker.getBrokerConfig().getBrokerId() == followerBrokerId) {
            return;
        }
        boolean wasMaster = broker.getBrokerConfig().getBrokerId() == MixAll.MASTER_ID;
        // Writes stop first: the broker refuses puts as soon as the role is SLAVE.
        broker.getMessageStoreConfig().setBrokerRole(BrokerRole.SLAVE);
        broker.changeSpecialServiceStatus(false);
        // The brokerId stays 0 while the next master is awaited: the broker's periodic registration, should it fall
        // in the wait, lists it as the master still, not as a slave before another master is listed.
        if (wasMaster && !awaitOtherMaster()) {
            // It leads again (the next run of this handler makes it master), or the broker is stopping.
            return;
        }
        broker.getBrokerConfig().setBrokerId(followerBrokerId);
        register();
        LOG.info("broker {} is SLAVE (brokerId {})", broker.getBrokerConfig().getBrokerName(), followerBrokerId);
    }

    /**
     * A master that stepped down stays listed as the group's master until the new one registers (its registration
     * as a slave would take it off at once): a client that asks for the route meanwhile still finds a master, whose
     * sends this broker forwards ({@link SendForwardGuard}), instead of none ("No route info of this topic"). Only
     * an answer the nameserver gave after the step-down counts: an older one may name the broker that leads now from
     * before it registered (it led before this one did), and the route would lack a master until it does.
     *
     * @return false when this node leads again meanwhile, or the handler was closed
     */
    private boolean awaitOtherMaster() {
        long since = System.nanoTime();
        long deadline = since + TimeUnit.MILLISECONDS.toNanos(MASTER_WAIT_MS);
        while (!closed && masters.otherMasterListedSince(since) == null && deadline - System.nanoTime() > 0) {
            if (log.node().status().role() == Role.LEADER) {
                return false;
            }
            pause();
        }
        return !closed;
    }

    private void register() {
        try {
            // Not one-way: the answer tells a slave where its master is (for metadata sync) at once.
            broker.registerBrokerAll(true, false, true);
        } catch (RuntimeException e) {
            LOG.warn("registration with the nameserver failed; the periodic registration retries: {}", e.toString());
        }
    }

    private static void pause() {
        try {
            TimeUnit.MILLISECONDS.sleep(5);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        closed = true;
        executor.shutdownNow();
    }
}
