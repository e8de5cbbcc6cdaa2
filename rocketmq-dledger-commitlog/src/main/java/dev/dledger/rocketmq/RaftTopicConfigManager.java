package dev.dledger.rocketmq;

import java.util.List;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.broker.topic.TopicConfigManager;
import org.apache.rocketmq.common.TopicConfig;

/**
 * The broker's topic configs, kept by the Raft log ({@link BrokerStateLog}). Every create, update and delete of the
 * stock manager ({@code updateTopicConfig} for the admin's {@code updateAndCreateTopic}, the auto-creation on send
 * and send-back, {@code deleteTopicConfig}, ...) ends in {@link #putTopicConfig} or {@link #removeTopicConfig}; on
 * the leader those append an entry and return once it is committed and applied here, so the admin or the producer is
 * answered after commit. Every node changes its table by applying entries. Elsewhere (a follower,
 * or before the Raft node runs: the system topics of the constructor, loading the file) the stock behaviour applies.
 */
final class RaftTopicConfigManager extends TopicConfigManager {

    /** Null while the stock constructor runs (it puts the system topics). */
    private final transient BrokerStateLog state;

    RaftTopicConfigManager(BrokerController broker, BrokerStateLog state) {
        super(broker);
        this.state = state;
    }

    /**
     * Puts the config through the Raft log on the leader.
     *
     * @return the config the topic had before, or null
     * @throws IllegalStateException naming the topic when the group did not commit it
     */
    @Override
    public TopicConfig putTopicConfig(TopicConfig topicConfig) {
        if (state == null || !state.throughLog()) {
            return super.putTopicConfig(topicConfig);
        }
        TopicConfig old = getTopicConfigTable().get(topicConfig.getTopicName());
        state.propose("topic " + topicConfig.getTopicName(), List.of(new BrokerStateEntry.TopicPut(
            topicConfig.getTopicName(), BrokerStateLog.json(topicConfig))));
        return old;
    }

    /**
     * Deletes the topic through the Raft log on the leader.
     *
     * @throws IllegalStateException naming the topic when the group did not commit it
     */
    @Override
    protected TopicConfig removeTopicConfig(String topicName) {
        if (state == null || !state.throughLog()) {
            return super.removeTopicConfig(topicName);
        }
        TopicConfig old = getTopicConfigTable().get(topicName);
        if (old != null) {
            state.propose("deletion of topic " + topicName, List.of(new BrokerStateEntry.TopicDelete(topicName)));
        }
        return old;
    }

    /**
     * The apply path: a committed topic config. The file is written by the next checkpoint
     * ({@link BrokerStateLog#checkpoint()}), off the Raft thread; a crash before it replays the entry.
     */
    void applyPut(TopicConfig config) {
        super.putTopicConfig(config);
        updateDataVersion();
    }

    /**
     * The snapshot path: the table becomes the leader's image ({@link #encode()} there): topics it lacks are removed,
     * the others put. The file is written by the checkpoint that follows.
     */
    void applyImage(String json) {
        org.apache.rocketmq.remoting.protocol.body.TopicConfigSerializeWrapper w =
            org.apache.rocketmq.remoting.protocol.body.TopicConfigSerializeWrapper.fromJson(json,
                org.apache.rocketmq.remoting.protocol.body.TopicConfigSerializeWrapper.class);
        if (w == null || w.getTopicConfigTable() == null) {
            throw new IllegalArgumentException("the topic table of the image is not a topic config JSON");
        }
        getTopicConfigTable().keySet().retainAll(w.getTopicConfigTable().keySet());
        getTopicConfigTable().putAll(w.getTopicConfigTable());
        updateDataVersion();
    }

    /** The apply path: a committed deletion (written by the next checkpoint). */
    void applyDelete(String topic) {
        if (super.removeTopicConfig(topic) != null) {
            updateDataVersion();
        }
    }
}
