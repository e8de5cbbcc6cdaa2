package dev.dledger.rocketmq;

import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.remoting.protocol.body.BrokerMemberGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The address of this broker group's master as the nameserver lists it now (brokerId 0 of the group's members),
 * asked at most every {@value #REFRESH_MS} ms however many threads want it. Used while the Raft leadership moves: a
 * follower forwards sends to the master the nameserver lists ({@link SendForwardGuard}), and a master that stepped
 * down registers as a slave once another master is listed ({@link RaftRoleHandler}).
 */
final class MasterLookup {

    private static final Logger LOG = LoggerFactory.getLogger(MasterLookup.class);
    private static final long REFRESH_MS = 20;

    private final BrokerController broker;
    private String cached;
    private long askedAt;
    private boolean asked;

    MasterLookup(BrokerController broker) {
        this.broker = broker;
    }

    /** The master's address that is not this broker's, or null when the nameserver lists none or this one. */
    String otherMaster() {
        String master = master();
        return master == null || master.equals(broker.getBrokerAddr()) ? null : master;
    }

    /** The master's address the nameserver lists now, or null (none listed, or no nameserver answered). */
    synchronized String master() {
        long now = System.nanoTime();
        if (asked && now - askedAt < REFRESH_MS * 1_000_000L) {
            return cached;
        }
        asked = true;
        try {
            BrokerMemberGroup group = broker.getBrokerOuterAPI().getBrokerMemberGroup(
                broker.getBrokerConfig().getBrokerClusterName(), broker.getBrokerConfig().getBrokerName());
            cached = group == null || group.getBrokerAddrs() == null ? null : group.getBrokerAddrs().get(MixAll.MASTER_ID);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            cached = null;
        } catch (Exception e) {
            LOG.debug("asking the nameserver for the master of {} failed: {}", broker.getBrokerConfig().getBrokerName(),
                e.toString());
            cached = null;
        }
        // Timed from the answer: a slow nameserver is not asked again at once.
        askedAt = System.nanoTime();
        return cached;
    }
}
