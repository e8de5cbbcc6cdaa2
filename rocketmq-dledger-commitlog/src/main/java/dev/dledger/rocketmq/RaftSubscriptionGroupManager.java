package dev.dledger.rocketmq;

import java.util.List;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.broker.subscription.SubscriptionGroupManager;
import org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig;

/**
 * The broker's subscription groups, kept by the Raft log ({@link BrokerStateLog}). The stock create, update, auto-create
 * and delete paths ({@code updateSubscriptionGroupConfig} for the admin's {@code updateAndCreateSubscriptionGroup},
 * {@code findSubscriptionGroupConfig}'s auto-creation, {@code deleteSubscriptionGroupConfig}) end in the three table
 * primitives overridden here; on the leader they append an entry and return once it is committed and applied here.
 * Every node changes its table by applying entries. Elsewhere (a follower, or before the Raft node
 * runs) the stock behaviour applies: a follower auto-creates a group a client's heartbeat names, as stock does, with
 * the default config; the master's entry replaces it.
 */
final class RaftSubscriptionGroupManager extends SubscriptionGroupManager {

    /** Null while the stock constructor runs (it puts the system groups). */
    private final transient BrokerStateLog state;

    RaftSubscriptionGroupManager(BrokerController broker, BrokerStateLog state) {
        super(broker);
        this.state = state;
    }

    @Override
    public SubscriptionGroupConfig putSubscriptionGroupConfig(SubscriptionGroupConfig config) {
        if (state == null || !state.throughLog()) {
            return super.putSubscriptionGroupConfig(config);
        }
        SubscriptionGroupConfig old = getSubscriptionGroupTable().get(config.getGroupName());
        state.propose("subscription group " + config.getGroupName(), List.of(new BrokerStateEntry.GroupPut(
            config.getGroupName(), BrokerStateLog.json(config), false)));
        return old;
    }

    @Override
    protected SubscriptionGroupConfig putSubscriptionGroupConfigIfAbsent(SubscriptionGroupConfig config) {
        if (state == null || !state.throughLog()) {
            return super.putSubscriptionGroupConfigIfAbsent(config);
        }
        SubscriptionGroupConfig old = getSubscriptionGroupTable().get(config.getGroupName());
        if (old == null) {
            state.propose("subscription group " + config.getGroupName(), List.of(new BrokerStateEntry.GroupPut(
                config.getGroupName(), BrokerStateLog.json(config), true)));
        }
        return old;
    }

    @Override
    protected SubscriptionGroupConfig removeSubscriptionGroupConfig(String groupName) {
        if (state == null || !state.throughLog()) {
            return super.removeSubscriptionGroupConfig(groupName);
        }
        SubscriptionGroupConfig old = getSubscriptionGroupTable().get(groupName);
        if (old != null) {
            state.propose("deletion of subscription group " + groupName,
                List.of(new BrokerStateEntry.GroupDelete(groupName)));
        }
        return old;
    }

    /** The apply path: a committed group config (kept as is when {@code ifAbsent} and the group exists). */
    void applyPut(SubscriptionGroupConfig config, boolean ifAbsent) {
        if (ifAbsent) {
            if (super.putSubscriptionGroupConfigIfAbsent(config) != null) {
                return;
            }
        } else {
            super.putSubscriptionGroupConfig(config);
        }
        // The file is written by the next checkpoint, off the Raft thread.
        updateDataVersion();
    }

    /**
     * The snapshot path: the table becomes the leader's image ({@link #encode()} there): groups it lacks are removed,
     * the others put, and the forbidden table likewise. The file is written by the checkpoint that follows.
     */
    void applyImage(String json) {
        SubscriptionGroupManager image = org.apache.rocketmq.remoting.protocol.RemotingSerializable.fromJson(json,
            SubscriptionGroupManager.class);
        if (image == null || image.getSubscriptionGroupTable() == null) {
            throw new IllegalArgumentException("the subscription group table of the image is not a group JSON");
        }
        getSubscriptionGroupTable().keySet().retainAll(image.getSubscriptionGroupTable().keySet());
        getSubscriptionGroupTable().putAll(image.getSubscriptionGroupTable());
        if (image.getForbiddenTable() != null) {
            getForbiddenTable().keySet().retainAll(image.getForbiddenTable().keySet());
            getForbiddenTable().putAll(image.getForbiddenTable());
        }
        updateDataVersion();
    }

    /** The apply path: a committed deletion. */
    void applyDelete(String group) {
        if (super.removeSubscriptionGroupConfig(group) != null) {
            getForbiddenTable().remove(group);
            updateDataVersion();
        }
    }
}
