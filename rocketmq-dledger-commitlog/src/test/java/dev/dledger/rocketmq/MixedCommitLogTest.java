package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.apache.rocketmq.common.UtilAll;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.GetMessageResult;
import org.apache.rocketmq.store.GetMessageStatus;
import org.apache.rocketmq.store.PutMessageStatus;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A store from master/slave days put under the Raft log in place: the old CommitLog files stay readable below the
 * divide offset, the Raft log starts at the next file boundary, the queues carry on, and the old files expire first.
 */
@Tag("in-process")
class MixedCommitLogTest {

    private static final String PAD = "x".repeat(900);

    @TempDir
    Path dir;

    private static List<String> bodies(DefaultMessageStore s, String topic, int queueId, long from, int max) {
        List<String> out = new ArrayList<>();
        long at = from;
        while (out.size() < max) {
            GetMessageResult r = s.getMessage("group", topic, queueId, at, max - out.size(), null);
            try {
                if (r.getStatus() != GetMessageStatus.FOUND) {
                    break;
                }
                for (ByteBuffer b : r.getMessageBufferList()) {
                    MessageExt m = MessageDecoder.decode(b, true, false);
                    out.add(new String(m.getBody(), StandardCharsets.UTF_8));
                }
                at = r.getNextBeginOffset();
            } finally {
                r.release();
            }
        }
        return out;
    }

    private static void put(DefaultMessageStore s, String prefix, int from, int count) {
        for (int i = from; i < from + count; i++) {
            assertEquals(PutMessageStatus.PUT_OK, s.putMessage(StoreGroup.message("M", i % 2, prefix + i + PAD))
                .getPutMessageStatus(), prefix + i);
        }
    }

    private static long maxInQueue(DefaultMessageStore s, int queueId) {
        try {
            return s.getMaxOffsetInQueue("M", queueId);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static void assertQueues(DefaultMessageStore s, int total) {
        await().atMost(Duration.ofSeconds(20)).until(() -> maxInQueue(s, 0) + maxInQueue(s, 1) == total);
        for (int q = 0; q < 2; q++) {
            List<String> got = bodies(s, "M", q, 0, total / 2);
            assertEquals(total / 2, got.size(), "queue " + q);
            for (int k = 0; k < got.size(); k++) {
                int i = 2 * k + q;
                String prefix = i < 1000 ? "old" : "new";
                assertEquals(prefix + i + PAD, got.get(k), "queue " + q + " offset " + k);
            }
        }
    }

    @Test
    void oldFilesStayReadableBelowTheDivideAndTheRaftLogCarriesOn() throws Exception {
        long oldMax;
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            DefaultMessageStore s = g.startClassic("n0");
            put(s, "old", 0, 1000);
            await().atMost(Duration.ofSeconds(10)).until(() -> maxInQueue(s, 0) + maxInQueue(s, 1) == 1000);
            oldMax = s.getCommitLog().getMaxOffset();
            assertTrue(oldMax > StoreGroup.FILE_SIZE, "several old files: " + oldMax);
        }
        long divided = (oldMax / StoreGroup.FILE_SIZE + 1) * StoreGroup.FILE_SIZE;
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            DefaultMessageStore s = g.start("n0", false);
            RaftCommitLog log = StoreGroup.log(s);
            assertEquals(divided, log.dividedOffset(), "the raft log starts at the next file boundary");
            assertEquals(0, s.getCommitLog().getMinOffset());
            g.awaitLeader();
            assertQueues(s, 1000);
            put(s, "new", 1000, 1000);
            assertQueues(s, 2000);
            assertEquals(0, s.getMinPhyOffset());
            assertTrue(s.getEarliestMessageTime() > 0);
        }
        // A crash that lost every consume queue and the checkpoint: both parts are dispatched again.
        UtilAll.deleteFile(dir.resolve("n0").resolve("consumequeue").toFile());
        Files.delete(dir.resolve("n0").resolve("checkpoint"));
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            DefaultMessageStore s = g.start("n0", true);
            assertEquals(divided, StoreGroup.log(s).dividedOffset());
            g.awaitLeader();
            assertQueues(s, 2000);
            put(s, "new", 2000, 2);
            await().atMost(Duration.ofSeconds(10)).until(() -> maxInQueue(s, 0) + maxInQueue(s, 1) == 2002);
        }
    }

    @Test
    void oldFilesExpireFirstThenOnlyTheRaftLogRemains() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            DefaultMessageStore s = g.startClassic("n0");
            put(s, "old", 0, 1000);
            await().atMost(Duration.ofSeconds(10)).until(() -> maxInQueue(s, 0) + maxInQueue(s, 1) == 1000);
        }
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            DefaultMessageStore s = g.start("n0", false);
            RaftCommitLog log = StoreGroup.log(s);
            long divided = log.dividedOffset();
            g.awaitLeader();
            put(s, "new", 1000, 10);
            await().atMost(Duration.ofSeconds(10)).until(() -> maxInQueue(s, 0) + maxInQueue(s, 1) == 1010);
            long max = s.getCommitLog().getMaxOffset();
            long earliestOld = s.getEarliestMessageTime();
            int deleted = 0;
            for (int i = 0; i < 100 && s.getCommitLog().getMinOffset() < divided; i++) {
                // The cleaner's overload, everything expired.
                deleted += s.getCommitLog().deleteExpiredFile(0, 0, 0, true, 10);
            }
            assertTrue(deleted >= 2, "old files deleted: " + deleted);
            assertEquals(divided, s.getCommitLog().getMinOffset(), "the raft log alone remains");
            assertEquals(max, s.getCommitLog().getMaxOffset());
            long earliestNew = s.getEarliestMessageTime();
            assertTrue(earliestNew >= earliestOld, earliestOld + " then " + earliestNew);
            assertEquals("new1000" + PAD, bodies(s, "M", 0, maxInQueue(s, 0) - 5, 1).get(0));
        }
    }

    @Test
    void raftLogFilesWaitWhileOldFilesRemain() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            DefaultMessageStore s = g.startClassic("n0");
            put(s, "old", 0, 1000);
            await().atMost(Duration.ofSeconds(10)).until(() -> maxInQueue(s, 0) + maxInQueue(s, 1) == 1000);
        }
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            // Expired files may go at any hour; the Raft log's own retention runs about once a second.
            g.configure = c -> c.setDeleteWhen(IntStream.range(0, 24)
                .mapToObj(h -> String.format("%02d", h)).collect(Collectors.joining(";")));
            DefaultMessageStore s = g.start("n0", false);
            RaftCommitLog log = StoreGroup.log(s);
            long divided = log.dividedOffset();
            g.awaitLeader();
            put(s, "new", 1000, 2600);
            await().atMost(Duration.ofSeconds(20)).until(() -> maxInQueue(s, 0) + maxInQueue(s, 1) == 3600);
            Path data = dir.resolve("n0").resolve("dledger-n0").resolve("data");
            List<Path> raftFiles;
            try (Stream<Path> files = Files.list(data)) {
                raftFiles = files.sorted().toList();
            }
            assertTrue(raftFiles.size() >= 3, "raft data files: " + raftFiles);
            // The Raft log's files but the newest are past fileReservedTime (72 h); the old files are not.
            FileTime longAgo = FileTime.from(
                Instant.now().minus(Duration.ofHours(100)));
            for (Path f : raftFiles.subList(0, raftFiles.size() - 1)) {
                Files.setLastModifiedTime(f, longAgo);
            }
            // Two whole retention runs after the files expired (the run under way may have looked before) would
            // have deleted them, had the old files not held them: shown by a count, not by a timed wait.
            long runs = log.retentionRuns();
            await().atMost(Duration.ofSeconds(20)).until(() -> log.retentionRuns() >= runs + 2);
            assertTrue(log.getMinOffset() < divided, "the old files are still there");
            assertTrue(Files.exists(raftFiles.get(0)), "an expired Raft log file went while old files remain");

            // Once the old files are gone, the expired Raft log files go too.
            for (int i = 0; i < 100 && s.getCommitLog().getMinOffset() < divided; i++) {
                s.getCommitLog().deleteExpiredFile(0, 0, 0, true, 10);
            }
            assertEquals(divided, log.getMinOffset(), "the old files are gone");
            await().atMost(Duration.ofSeconds(20)).until(() -> Files.notExists(raftFiles.get(0))
                && log.getMinOffset() > divided);
            assertEquals("new" + (3600 - 2) + PAD, bodies(s, "M", 0, maxInQueue(s, 0) - 1, 1).get(0));
        }
    }
}
