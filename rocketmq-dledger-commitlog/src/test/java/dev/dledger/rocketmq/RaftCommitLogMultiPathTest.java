package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.GetMessageResult;
import org.apache.rocketmq.store.GetMessageStatus;
import org.apache.rocketmq.store.PutMessageResult;
import org.apache.rocketmq.store.PutMessageStatus;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Several data folders and read-only folders, configured as in stock DLedger mode ({@code storePathDLedgerCommitLog}
 * with RocketMQ's multi-path splitter, {@code readOnlyCommitLogStorePaths}); the scenario of stock's
 * {@code DLedgerMultiPathTest.multiDirsStorageTest}.
 */
@Tag("in-process")
class RaftCommitLogMultiPathTest {

    private static final int FILE_SIZE = 64 * 1024;
    private static final int QUEUES = 4;

    @TempDir
    Path dir;

    private static String join(Path... folders) {
        List<String> s = new ArrayList<>();
        for (Path p : folders) {
            s.add(p.toString());
        }
        return String.join(MessageStoreConfig.MULTI_PATH_SPLITTER, s);
    }

    /** Data file name to size and last-modified time, for every data file in {@code folder}. */
    private static Map<String, String> snapshot(Path folder) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.list(folder)) {
            for (Path p : s.filter(f -> f.getFileName().toString().matches("\\d{20}")).toList()) {
                out.put(p.getFileName().toString(), Files.size(p) + "@" + Files.getLastModifiedTime(p).toMillis());
            }
        }
        return out;
    }

    private static String body(int i) {
        return "m" + i + "-" + "y".repeat(400);
    }

    private static List<MessageExt> read(DefaultMessageStore s, int queueId) {
        List<MessageExt> out = new ArrayList<>();
        long at = 0;
        while (true) {
            GetMessageResult r = s.getMessage("group", "M", queueId, at, 64, null);
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

    /** Puts {@code n} messages from number {@code first} on, round robin over the queues; returns their offsets. */
    private static List<Long> put(DefaultMessageStore s, int first, int n) {
        List<Long> offsets = new ArrayList<>();
        for (int i = first; i < first + n; i++) {
            PutMessageResult r = s.putMessage(StoreGroup.message("M", i % QUEUES, body(i)));
            assertEquals(PutMessageStatus.PUT_OK, r.getPutMessageStatus(), "put " + i);
            offsets.add(r.getAppendMessageResult().getWroteOffset());
        }
        return offsets;
    }

    /** Every message {@code 0..count-1} is in its queue in order, at the offset its put returned. */
    private static void assertAllReadable(DefaultMessageStore s, List<Long> offsets) {
        int count = offsets.size();
        await().atMost(Duration.ofSeconds(20)).until(() -> s.dispatchBehindBytes() == 0
            && s.getMaxOffsetInQueue("M", (count - 1) % QUEUES) == (count - 1) / QUEUES + 1);
        for (int q = 0; q < QUEUES; q++) {
            List<MessageExt> got = read(s, q);
            assertEquals((count - q + QUEUES - 1) / QUEUES, got.size(), "queue " + q);
            for (int k = 0; k < got.size(); k++) {
                int i = k * QUEUES + q;
                assertEquals(body(i), new String(got.get(k).getBody(), StandardCharsets.UTF_8));
                assertEquals((long) offsets.get(i), got.get(k).getCommitLogOffset(), "message " + i);
            }
        }
    }

    @Test
    void dataSpreadsOverSeveralFoldersAndReadOnlyFoldersStayReadableButUntouched() throws Exception {
        Path a = dir.resolve("multi").resolve("a");
        Path b = dir.resolve("multi").resolve("b");
        Path c = dir.resolve("multi").resolve("c");
        Path d = dir.resolve("multi").resolve("d");
        List<Long> offsets = new ArrayList<>();
        try (StoreGroup g = new StoreGroup(dir.resolve("group"), 1)) {
            g.configure = cfg -> {
                cfg.setMappedFileSizeCommitLog(FILE_SIZE);
                cfg.setStorePathDLedgerCommitLog(join(a, b, c));
            };
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            offsets.addAll(put(s, 0, 1000));
            assertAllReadable(s, offsets);
            for (Path p : List.of(a, b, c)) {
                assertTrue(snapshot(p).size() >= 2, "the data files go to every folder in turn: " + p + " has "
                    + snapshot(p).keySet());
            }
            assertTrue(Files.notExists(g.base.resolve("n0").resolve("dledger-n0").resolve("data")),
                "no default data folder when folders are configured");
        }
        Map<String, String> aBefore = snapshot(a);
        Map<String, String> bBefore = snapshot(b);
        int cBefore = snapshot(c).size();

        // Reopen with a and b read-only, c and a new d writable.
        try (StoreGroup g = StoreGroup.reopen(dir.resolve("group"))) {
            g.configure = cfg -> {
                cfg.setMappedFileSizeCommitLog(FILE_SIZE);
                cfg.setStorePathDLedgerCommitLog(join(c, d));
                cfg.setReadOnlyCommitLogStorePaths(join(a, b));
            };
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            assertAllReadable(s, offsets);
            offsets.addAll(put(s, 1000, 1000));
            assertAllReadable(s, offsets);
            assertEquals(aBefore, snapshot(a), "read-only folder a is not written");
            assertEquals(bBefore, snapshot(b), "read-only folder b is not written");
            assertTrue(snapshot(d).size() >= 2, "new files go to d too: " + snapshot(d).keySet());
            assertTrue(snapshot(c).size() > cBefore, "and to c: " + snapshot(c).keySet());
        }
        // Once more after a restart with the same folders.
        try (StoreGroup g = StoreGroup.reopen(dir.resolve("group"))) {
            g.configure = cfg -> {
                cfg.setMappedFileSizeCommitLog(FILE_SIZE);
                cfg.setStorePathDLedgerCommitLog(join(c, d));
                cfg.setReadOnlyCommitLogStorePaths(join(a, b));
            };
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            assertAllReadable(s, offsets);
        }
    }
}
