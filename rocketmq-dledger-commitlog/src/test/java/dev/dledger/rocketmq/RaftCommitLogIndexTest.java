package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.rocketmq.common.message.MessageClientIDSetter;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.PutMessageStatus;
import org.apache.rocketmq.store.QueryMessageResult;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The message index (what {@code mqadmin queryMsgByKey} and {@code queryMsgByUniqueKey} read) across restarts. After
 * a crash RocketMQ's index service deletes every index file that is not full (its end lies past the checkpoint's
 * index time), so the messages it held must be indexed again from the log; after a normal stop nothing is indexed
 * twice.
 */
@Tag("in-process")
class RaftCommitLogIndexTest {

    private static final String TOPIC = "K";
    private static final int MESSAGES = 300;

    @TempDir
    Path dir;

    /**
     * With index files of 4,000 keys the 600 keys fill none: a crash deletes the only one. With files of 250 keys two
     * are full and kept, and only the third is deleted: the index catches up from where the second ends.
     */
    @ParameterizedTest
    @ValueSource(ints = {4000, 250})
    void everyMessageIsFoundByKeyAndMessageIdOnceAfterANormalRestartAndAfterACrash(int keysPerIndexFile)
        throws Exception {
        List<String> ids = new ArrayList<>();
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            g.configure = c -> c.setMaxIndexNum(keysPerIndexFile);
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            for (int i = 0; i < MESSAGES; i++) {
                ids.add(put(s, "m" + i, i % 2));
            }
            // The index follows the queue in each dispatch: the last message's key marks the end.
            await().atMost(Duration.ofSeconds(10)).until(() -> found(s, "key-m" + (MESSAGES - 1)) > 0);
            assertAllFoundOnce(s, ids, "before any restart");
        }
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            DefaultMessageStore s = restart(g, keysPerIndexFile, false);
            assertAllFoundOnce(s, ids, "after a normal restart");
        }
        // A crash: the store finds its abort file, and the index service drops the index file that is not full.
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            DefaultMessageStore s = restart(g, keysPerIndexFile, true);
            assertAllFoundOnce(s, ids, "after a crash");
            // The index goes on with what is put after it.
            ids.add(put(s, "after", 0));
            await().atMost(Duration.ofSeconds(10)).until(() -> found(s, "key-after") > 0);
            assertAllFoundOnce(s, ids, "after a crash and one more put");
        }
    }

    @Test
    void aStoreWithoutTheIndexIndexesNothingAfterACrash() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            g.configure = c -> c.setMessageIndexEnable(false);
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            put(s, "m0", 0);
            await().atMost(Duration.ofSeconds(10)).until(() -> s.getMaxOffsetInQueue(TOPIC, 0) == 1);
        }
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            g.configure = c -> c.setMessageIndexEnable(false);
            DefaultMessageStore s = g.start("n0", true);
            g.awaitLeader();
            assertEquals(0, found(s, "key-m0"), "no index kept when the broker's messageIndexEnable is false");
            assertEquals(false, java.nio.file.Files.exists(dir.resolve("n0").resolve("index"))
                && java.nio.file.Files.list(dir.resolve("n0").resolve("index")).findAny().isPresent(),
                "no index file written");
        }
    }

    /**
     * Starts the group's store again ({@code crashed}: with its abort file) and waits until the index caught up: from
     * reput's first dispatch after the start on (the new leader's first entry) it indexes what it lacks, the first
     * message first.
     */
    private static DefaultMessageStore restart(StoreGroup g, int keysPerIndexFile, boolean crashed) throws Exception {
        g.configure = c -> c.setMaxIndexNum(keysPerIndexFile);
        DefaultMessageStore s = g.start("n0", crashed);
        g.awaitLeader();
        await().atMost(Duration.ofSeconds(30)).until(() -> s.dispatchBehindBytes() == 0 && found(s, "key-m0") > 0);
        return s;
    }

    /** Puts a message with key "key-" + body and a unique id to queue {@code queueId}; returns the id. */
    private static String put(DefaultMessageStore s, String body, int queueId) {
        var m = StoreGroup.message(TOPIC, queueId, body);
        MessageClientIDSetter.setUniqID(m);
        m.setPropertiesString(MessageDecoder.messageProperties2String(m.getProperties()));
        assertEquals(PutMessageStatus.PUT_OK, s.putMessage(m).getPutMessageStatus());
        return MessageClientIDSetter.getUniqID(m);
    }

    private static void assertAllFoundOnce(DefaultMessageStore s, List<String> ids, String when) {
        List<String> wrong = new ArrayList<>();
        for (int i = 0; i < ids.size(); i++) {
            String key = i < MESSAGES ? "key-m" + i : "key-after";
            int byKey = found(s, key);
            int byId = found(s, ids.get(i));
            if (byKey != 1 || byId != 1) {
                wrong.add(key + " found " + byKey + " times, its id " + byId + " times");
            }
        }
        assertEquals(List.of(), wrong.subList(0, Math.min(5, wrong.size())), when + ": " + wrong.size() + " of "
            + ids.size() + " messages not found exactly once");
    }

    private static int found(DefaultMessageStore s, String key) {
        QueryMessageResult r = s.queryMessage(TOPIC, key, 32, 0, Long.MAX_VALUE);
        try {
            return r.getMessageBufferList().size();
        } finally {
            r.release();
        }
    }

}
