package dev.dledger.rocketmq;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageBatch;
import org.apache.rocketmq.common.message.MessageClientIDSetter;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExtBatch;

/** Builds a batch as the broker receives it from a producer. */
final class BatchMessages {

    private BatchMessages() {
    }

    static MessageExtBatch of(String topic, int queueId, int n) {
        List<Message> ms = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Message m = new Message(topic, "TagB", ("b" + i).getBytes(StandardCharsets.UTF_8));
            MessageClientIDSetter.setUniqID(m);
            ms.add(m);
        }
        MessageBatch mb = MessageBatch.generateFromList(ms);
        MessageExtBatch b = new MessageExtBatch();
        b.setTopic(topic);
        b.setQueueId(queueId);
        b.setBody(mb.encode());
        b.setBornTimestamp(System.currentTimeMillis());
        b.setBornHost(new InetSocketAddress("127.0.0.1", 8123));
        b.setStoreHost(new InetSocketAddress("127.0.0.1", 10911));
        b.setPropertiesString(MessageDecoder.messageProperties2String(b.getProperties()));
        return b;
    }
}
