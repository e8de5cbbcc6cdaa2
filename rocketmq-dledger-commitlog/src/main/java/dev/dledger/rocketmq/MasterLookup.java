package dev.dledger.rocketmq;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.remoting.protocol.body.BrokerMemberGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The address of this broker group's master as the nameserver lists it (brokerId 0 of the group's members), for the
 * moments the Raft leadership moves: a follower forwards sends to the master the nameserver lists
 * ({@link SendForwardGuard}), and a master that stepped down registers as a slave once another master is listed
 * ({@link RaftRoleHandler}). Callers never wait for the nameserver: they get the last answer, and a thread of its own
 * asks again when that answer is older than {@value #REFRESH_MS} ms and somebody wants it.
 */
final class MasterLookup implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(MasterLookup.class);
    private static final long REFRESH_MS = 20;

    private final BrokerController broker;
    private final ExecutorService asker;
    private final AtomicBoolean asking = new AtomicBoolean();
    private volatile String cached;
    private volatile long answeredAt;
    private volatile boolean answered;

    MasterLookup(BrokerController broker) {
        this.broker = broker;
        this.asker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "MasterLookup-" + broker.getBrokerConfig().getBrokerName());
            t.setDaemon(true);
            return t;
        });
    }

    /** The listed master's address when it is not this broker's; null when none is listed, or not known yet. */
    String otherMaster() {
        String master = master();
        return master == null || master.equals(broker.getBrokerAddr()) ? null : master;
    }

    /** The master's address from the nameserver's last answer, or null; asks again when that answer is old. */
    String master() {
        if ((!answered || System.nanoTime() - answeredAt > REFRESH_MS * 1_000_000L) && asking.compareAndSet(false, true)) {
            try {
                asker.execute(this::ask);
            } catch (RejectedExecutionException e) {
                asking.set(false);
            }
        }
        return cached;
    }

    private void ask() {
        try {
            BrokerMemberGroup group = broker.getBrokerOuterAPI().getBrokerMemberGroup(
                broker.getBrokerConfig().getBrokerClusterName(), broker.getBrokerConfig().getBrokerName());
            cached = group == null || group.getBrokerAddrs() == null ? null : group.getBrokerAddrs().get(MixAll.MASTER_ID);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            LOG.debug("asking the nameserver for the master of {} failed: {}", broker.getBrokerConfig().getBrokerName(),
                e.toString());
            cached = null;
        } finally {
            answeredAt = System.nanoTime();
            answered = true;
            asking.set(false);
        }
    }

    @Override
    public void close() {
        asker.shutdownNow();
    }
}
