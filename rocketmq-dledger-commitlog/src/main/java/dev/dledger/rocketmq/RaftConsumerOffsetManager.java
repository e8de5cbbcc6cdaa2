package dev.dledger.rocketmq;

import java.util.List;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.broker.offset.ConsumerOffsetManager;

/**
 * The broker's consumer offsets, kept by the Raft log ({@link BrokerStateLog}): on the leader a commit (the client's
 * {@code updateConsumerOffset}, the commit riding on a pull, the broker's own for POP and transactions) is batched
 * into a log entry and returns once that entry is committed and applied; every node changes its table only by
 * applying entries. A follower refuses commits from clients (they belong to the master), so its table is exactly the
 * committed one. Before the Raft node runs (loading the file at start) the stock behaviour applies.
 *
 * <p>The reset, clone and pull offsets ({@code assignResetOffset}, {@code cloneOffset}, {@code commitPullOffset})
 * stay local to the node, as in stock RocketMQ.
 */
final class RaftConsumerOffsetManager extends ConsumerOffsetManager {

    private final transient BrokerStateLog state;

    RaftConsumerOffsetManager(BrokerController broker, BrokerStateLog state) {
        super(broker);
        this.state = state;
    }

    /**
     * Commits through the Raft log on the leader (returns once committed and applied here).
     *
     * @throws IllegalStateException on a follower, or when the group did not commit it; the broker answers the
     *                               request with an error
     */
    @Override
    public void commitOffset(String clientHost, String group, String topic, int queueId, long offset) {
        if (state.throughLog()) {
            state.commitOffset(group, topic, queueId, offset);
        } else if (state.following()) {
            throw new IllegalStateException("offset commit of group " + group + " on " + topic + "/" + queueId
                + " refused: this broker is not the raft leader of its group");
        } else {
            super.commitOffset(clientHost, group, topic, queueId, offset);
        }
    }

    /** Removes the group's offsets through the log on the leader. */
    @Override
    public void removeOffset(String group) {
        if (state.throughLog()) {
            state.propose("removal of the offsets of group " + group,
                List.of(new BrokerStateEntry.OffsetsRemoveGroup(group)));
        } else {
            super.removeOffset(group);
        }
    }

    /** Removes every group's offsets of the topic through the log on the leader. */
    @Override
    public void cleanOffsetByTopic(String topic) {
        if (state.throughLog()) {
            state.propose("removal of the offsets of topic " + topic,
                List.of(new BrokerStateEntry.OffsetsRemoveTopic(topic)));
        } else {
            super.cleanOffsetByTopic(topic);
        }
    }

    /** The apply path: a committed offset. */
    void applyCommit(String group, String topic, int queueId, long offset) {
        super.commitOffset("raft", group, topic, queueId, offset);
    }

    /** The apply path: every offset of a group removed. */
    void applyRemoveGroup(String group) {
        super.removeOffset(group);
    }

    /** The apply path: every offset of a topic removed. */
    void applyRemoveTopic(String topic) {
        super.cleanOffsetByTopic(topic);
    }
}
