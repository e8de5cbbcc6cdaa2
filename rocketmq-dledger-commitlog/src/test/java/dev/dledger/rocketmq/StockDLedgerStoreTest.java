package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.testing.FreePorts;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.rocketmq.common.BrokerConfig;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.GetMessageResult;
import org.apache.rocketmq.store.GetMessageStatus;
import org.apache.rocketmq.store.PutMessageResult;
import org.apache.rocketmq.store.PutMessageStatus;
import org.apache.rocketmq.store.QueryMessageResult;
import org.apache.rocketmq.store.config.FlushDiskType;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.apache.rocketmq.store.dledger.DLedgerCommitLog;
import org.apache.rocketmq.store.stats.BrokerStatsManager;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A store written by stock RocketMQ 5.5.1 in DLedger mode (DLedger 0.3.3.4) opens in place under the Raft commit log:
 * every message is served with the offsets and ids stock gave it, and new puts continue where stock stopped.
 */
@Tag("in-process")
class StockDLedgerStoreTest {

    private static final String[] TOPICS = {"S", "U"};
    private static final int QUEUES = 3;
    private static final int PER_QUEUE = 400;

    @TempDir
    Path dir;

    /** What a consumer sees of a message. */
    private record Seen(String body, long queueOffset, long commitLogOffset, String msgId) {
        static Seen of(MessageExt m) {
            return new Seen(new String(m.getBody(), StandardCharsets.UTF_8), m.getQueueOffset(), m.getCommitLogOffset(),
                m.getMsgId());
        }
    }

    private static DefaultMessageStore stockStore(Path root, String peers) throws Exception {
        MessageStoreConfig c = new MessageStoreConfig();
        c.setStorePathRootDir(root.toString());
        c.setStorePathCommitLog(root.resolve("commitlog").toString());
        c.setMappedFileSizeCommitLog(StoreGroup.FILE_SIZE);
        c.setMappedFileSizeConsumeQueue(300 * 20);
        c.setMaxHashSlotNum(1000);
        c.setMaxIndexNum(4000);
        c.setFlushDiskType(FlushDiskType.ASYNC_FLUSH);
        c.setEnableDLegerCommitLog(true);
        c.setdLegerGroup("g");
        c.setdLegerPeers(peers);
        c.setdLegerSelfId("n0");
        DefaultMessageStore store = new DefaultMessageStore(c, new BrokerStatsManager("stock", true), null,
            new BrokerConfig(), new ConcurrentHashMap<>());
        assertTrue(store.load(), "the stock store loads");
        store.start();
        DLedgerCommitLog log = (DLedgerCommitLog) store.getCommitLog();
        await().atMost(Duration.ofSeconds(30)).until(() -> log.getdLedgerServer().getMemberState().isLeader());
        return store;
    }

    private static List<MessageExt> read(DefaultMessageStore s, String topic, int queueId) {
        List<MessageExt> out = new ArrayList<>();
        long at = s.getMinOffsetInQueue(topic, queueId);
        while (true) {
            GetMessageResult r = s.getMessage("group", topic, queueId, at, 64, null);
            try {
                if (r.getStatus() != GetMessageStatus.FOUND) {
                    return out;
                }
                for (ByteBuffer b : r.getMessageBufferList()) {
                    out.add(MessageDecoder.decode(b, true, false));
                }
                at = r.getNextBeginOffset();
            } finally {
                r.release();
            }
        }
    }

    private static Map<String, List<Seen>> readAll(DefaultMessageStore s) {
        Map<String, List<Seen>> out = new LinkedHashMap<>();
        for (String t : TOPICS) {
            for (int q = 0; q < QUEUES; q++) {
                out.put(t + "-" + q, read(s, t, q).stream().map(Seen::of).toList());
            }
        }
        return out;
    }

    private static String padded(String s) {
        return s + "-" + "x".repeat(700);
    }

    @Test
    void storeWrittenByStockDLedgerModeOpensInPlaceAndGoesOn() throws Exception {
        String peers = FreePorts.peers(FreePorts.take(1));
        Files.writeString(dir.resolve("peers"), peers);
        Map<String, List<Seen>> stockSeen;
        long stockMax;
        Map<String, Long> stockNext = new LinkedHashMap<>();
        long t0 = System.nanoTime();
        DefaultMessageStore stock = stockStore(dir.resolve("n0"), peers);
        try {
            // Enough for several 1 MiB data files, so stock rolled files with BLANK ends.
            for (int i = 0; i < PER_QUEUE; i++) {
                for (String t : TOPICS) {
                    for (int q = 0; q < QUEUES; q++) {
                        PutMessageResult r = stock.putMessage(StoreGroup.message(t, q, padded(t + q + "-" + i)));
                        assertEquals(PutMessageStatus.PUT_OK, r.getPutMessageStatus(), "stock put " + t + q + " " + i);
                    }
                }
            }
            PutMessageResult batch = stock.putMessages(BatchMessages.of("U", 0, 5));
            assertEquals(PutMessageStatus.PUT_OK, batch.getPutMessageStatus());
            await().atMost(Duration.ofSeconds(20)).until(() -> stock.dispatchBehindBytes() == 0
                && stock.getMaxOffsetInQueue("U", 0) == PER_QUEUE + 5);
            stockSeen = readAll(stock);
            stockMax = stock.getCommitLog().getMaxOffset();
            for (String t : TOPICS) {
                for (int q = 0; q < QUEUES; q++) {
                    stockNext.put(t + "-" + q, stock.getMaxOffsetInQueue(t, q));
                }
            }
        } finally {
            stock.shutdown();
        }
        assertTrue(stockMax > 3L * StoreGroup.FILE_SIZE, "stock wrote several data files: " + stockMax);
        assertEquals(PER_QUEUE + 5, stockSeen.get("U-0").size());

        // Our log opens the same folders: every message as stock served it, and new puts continue.
        List<PutMessageResult> added = new ArrayList<>();
        long t1 = System.nanoTime();
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            DefaultMessageStore s = g.start("n0", false);
            assertTrue(s.getCommitLog().getMaxOffset() >= stockMax, "stock's checkpointed commit index is read at "
                + "start, before any election: " + s.getCommitLog().getMaxOffset());
            g.awaitLeader();
            assertEquals(stockSeen, readAll(s), "every stock message with its body, queue offset, offset and id");
            assertTrue(s.getCommitLog().getMinOffset() <= stockSeen.get("S-0").get(0).commitLogOffset());
            for (String t : TOPICS) {
                for (int q = 0; q < QUEUES; q++) {
                    PutMessageResult r = s.putMessage(StoreGroup.message(t, q, "new-" + t + q));
                    assertEquals(PutMessageStatus.PUT_OK, r.getPutMessageStatus());
                    assertEquals((long) stockNext.get(t + "-" + q), r.getAppendMessageResult().getLogicsOffset(),
                        "queue offsets continue stock's in " + t + "-" + q);
                    assertTrue(r.getAppendMessageResult().getWroteOffset() >= stockMax,
                        "physical offsets continue after stock's " + stockMax + ": "
                            + r.getAppendMessageResult().getWroteOffset());
                    added.add(r);
                }
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> s.dispatchBehindBytes() == 0
                && s.getMaxOffsetInQueue("S", QUEUES - 1) == stockNext.get("S-" + (QUEUES - 1)) + 1);
            assertAllThere(s, stockSeen, stockNext, added);
        }
        long t2 = System.nanoTime();
        // And once more after a restart of our own.
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            assertAllThere(s, stockSeen, stockNext, added);
        }
        System.out.printf("stock store: %d bytes written by stock in %d ms; opened, read and extended by ours in %d ms;"
            + " reopened and read in %d ms%n", stockMax, (t1 - t0) / 1_000_000, (t2 - t1) / 1_000_000,
            (System.nanoTime() - t2) / 1_000_000);
    }

    /** Stock's messages as stock served them, then each queue's new message with the offsets its put returned. */
    private static void assertAllThere(DefaultMessageStore s, Map<String, List<Seen>> stockSeen,
                                       Map<String, Long> stockNext, List<PutMessageResult> added) {
        // Stock's index files (message keys) and offsets lead to the same messages.
        for (String key : List.of("S-0", "U-2")) {
            for (Seen m : List.of(stockSeen.get(key).get(0), stockSeen.get(key).get(PER_QUEUE - 1))) {
                String topic = key.substring(0, 1);
                QueryMessageResult found = s.queryMessage(topic, "key-" + m.body(), 4, 0, Long.MAX_VALUE);
                try {
                    assertEquals(1, found.getMessageBufferList().size(), "one message with the key of " + m);
                    assertEquals(m, Seen.of(MessageDecoder.decode(found.getMessageBufferList().get(0), true, false)));
                } finally {
                    found.release();
                }
                assertEquals(m, Seen.of(s.lookMessageByOffset(m.commitLogOffset())));
            }
        }
        Map<String, List<Seen>> now = readAll(s);
        int k = 0;
        for (String t : TOPICS) {
            for (int q = 0; q < QUEUES; q++) {
                String key = t + "-" + q;
                List<Seen> seen = now.get(key);
                assertEquals(stockSeen.get(key), seen.subList(0, stockSeen.get(key).size()), key);
                assertEquals(stockSeen.get(key).size() + 1, seen.size(), key + " has stock's messages and one new");
                Seen last = seen.get(seen.size() - 1);
                PutMessageResult r = added.get(k++);
                assertEquals(new Seen("new-" + t + q, stockNext.get(key), r.getAppendMessageResult().getWroteOffset(),
                    r.getAppendMessageResult().getMsgId()), last, key);
            }
        }
    }
}
