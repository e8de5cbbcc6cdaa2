package dev.dledger.rocketmq;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.broker.slave.SlaveSynchronize;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The slave's copying from its master, without what the Raft log carries ({@link BrokerStateLog}): topic configs,
 * consumer offsets, subscription groups and delay offsets are applied from the log and are never copied. What the log
 * does not carry yet is still copied as stock does: the message request modes (every 60 s) and the timer
 * metrics (with them). The timer checkpoint is not copied any more ({@link #syncTimerCheckPoint()}): its progress
 * rides the log ({@link TimerProgressLog}). A node caught up by a snapshot gets the state tables with it (the
 * snapshot's image); only a snapshot from a leader of a version before images ({@link BrokerStateLog#fullCopyNeeded()})
 * makes it copy topics, offsets and groups once more, as stock does, at its next run.
 *
 * <p>The stock copy methods are private; they are called by reflection, checked when this is built.
 */
final class StateSlaveSynchronize extends SlaveSynchronize {

    private static final Logger LOG = LoggerFactory.getLogger(StateSlaveSynchronize.class);

    private final BrokerController broker;
    private final Method syncDelayOffset;
    private final Method syncMessageRequestMode;
    private final Method syncTimerMetrics;
    private final Method syncTopicConfig;
    private final Method syncConsumerOffset;
    private final Method syncSubscriptionGroupConfig;
    private final BrokerStateLog state;

    /** @throws IllegalStateException naming the method when this RocketMQ has not the expected ones */
    StateSlaveSynchronize(BrokerController broker, BrokerStateLog state) {
        super(broker);
        this.broker = broker;
        this.state = state;
        this.syncTopicConfig = method("syncTopicConfig");
        this.syncConsumerOffset = method("syncConsumerOffset");
        this.syncSubscriptionGroupConfig = method("syncSubscriptionGroupConfig");
        this.syncDelayOffset = method("syncDelayOffset");
        this.syncMessageRequestMode = method("syncMessageRequestMode");
        this.syncTimerMetrics = method("syncTimerMetrics");
    }

    private static Method method(String name) {
        try {
            Method m = SlaveSynchronize.class.getDeclaredMethod(name);
            m.setAccessible(true);
            return m;
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("SlaveSynchronize." + name + "() not found (is this RocketMQ 5.5.1?): " + e,
                e);
        }
    }

    @Override
    public void syncAll() {
        // Delay offsets ride the log too (BrokerStateLog proposes them every 200 ms); a snapshot-caught node copies
        // them with the rest.
        String master = getMasterAddr();
        if (state.fullCopyNeeded() && master != null && !master.equals(broker.getBrokerAddr())) {
            call(syncTopicConfig);
            call(syncConsumerOffset);
            call(syncSubscriptionGroupConfig);
            call(syncDelayOffset);
            state.fullCopyDone();
        }
        call(syncMessageRequestMode);
        if (broker.getMessageStoreConfig().isTimerWheelEnable()) {
            call(syncTimerMetrics);
        }
    }

    /**
     * Copies nothing: the timer wheel's progress rides the log ({@link TimerProgressLog}), applied every 200 ms and only
     * forward; the stock copy would set the checkpoint back to the master's file, up to 4 s behind.
     */
    @Override
    public void syncTimerCheckPoint() {
    }

    private void call(Method m) {
        try {
            m.invoke(this);
        } catch (InvocationTargetException e) {
            LOG.error("{} failed: {}", m.getName(), String.valueOf(e.getCause()));
        } catch (IllegalAccessException e) {
            LOG.error("{} cannot be called: {}", m.getName(), e.toString());
        }
    }
}
