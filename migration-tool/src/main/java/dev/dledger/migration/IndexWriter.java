package dev.dledger.migration;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.rocketmq.common.UtilAll;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.store.index.IndexFile;

/**
 * Index files as the broker's IndexService builds them, named by the store time of their first message: each message
 * under its unique key, each of its keys and its tags, pointing at its physical offset. One thread uses it;
 * {@link #close()} writes the file being filled. A failure to create or fill a file is a {@link MigrationException}.
 */
final class IndexWriter {
    private final Path dir;
    private final int slots;
    private final int items;
    private IndexFile current;

    IndexWriter(Path dir, int slots, int items) {
        this.dir = dir;
        this.slots = slots;
        this.items = items;
    }

    void add(MessageExt msg, long phy) {
        String topic = msg.getTopic();
        String uniq = msg.getProperty(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX);
        if (uniq != null) {
            put(topic + "#" + uniq, msg, phy);
        }
        String keys = msg.getKeys();
        if (keys != null) {
            for (String key : keys.split(MessageConst.KEY_SEPARATOR)) {
                if (!key.isEmpty()) {
                    put(topic + "#" + key, msg, phy);
                }
            }
        }
        String tags = msg.getTags();
        if (tags != null && !tags.isEmpty()) {
            put(topic + "#" + MessageConst.INDEX_TAG_TYPE + "#" + tags, msg, phy);
        }
    }

    private void put(String key, MessageExt msg, long phy) {
        long ts = msg.getStoreTimestamp();
        if (current == null || !current.putKey(key, phy, ts)) {
            long endPhy = 0;
            long endTs = 0;
            if (current != null) {
                endPhy = current.getEndPhyOffset();
                endTs = current.getEndTimestamp();
                current.shutdown();
            }
            long nameTs = ts;
            while (Files.exists(dir.resolve(UtilAll.timeMillisToHumanString(nameTs)))) {
                nameTs++;
            }
            try {
                current = new IndexFile(dir.resolve(UtilAll.timeMillisToHumanString(nameTs)).toString(), slots,
                    items, endPhy, endTs);
            } catch (IOException e) {
                throw new MigrationException("cannot create an index file in " + dir + ": " + e.getMessage());
            }
            if (!current.putKey(key, phy, ts)) {
                throw new MigrationException("cannot index key " + key + " in a new index file of " + dir);
            }
        }
    }

    void close() {
        if (current != null) {
            current.shutdown();
            current = null;
        }
    }
}
