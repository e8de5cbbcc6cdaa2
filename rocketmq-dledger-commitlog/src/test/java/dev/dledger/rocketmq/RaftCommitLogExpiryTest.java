package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.GetMessageResult;
import org.apache.rocketmq.store.GetMessageStatus;
import org.apache.rocketmq.store.PutMessageResult;
import org.apache.rocketmq.store.PutMessageStatus;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.apache.rocketmq.store.queue.ConsumeQueueStore;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Expiry of the Raft commit log through the broker's own paths: the store's cleaner (which calls the 5-argument
 * {@code deleteExpiredFile}), the 4-argument overload, the consume queue cleaner. File ages are set on the files
 * (their last-modified time is what expiry reads); {@code deleteWhen} lists every hour so that the hour never matters.
 */
@Tag("in-process")
class RaftCommitLogExpiryTest {

    private static final int FILE_SIZE = 64 * 1024;
    private static final int QUEUES = 4;
    private static final String EVERY_HOUR = IntStream.range(0, 24).mapToObj(h -> String.format("%02d", h))
        .collect(Collectors.joining(";"));

    @TempDir
    Path dir;

    private static void configure(MessageStoreConfig c) {
        c.setMappedFileSizeCommitLog(FILE_SIZE);
        c.setDeleteWhen(EVERY_HOUR);
        c.setFileReservedTime(72);
        // Whatever the disk use of the machine running this, only what the test asks for deletes files early.
        c.setCleanFileForciblyEnable(false);
        c.setDiskMaxUsedSpaceRatio(95);
    }

    private static Path dataDir(StoreGroup g) {
        return g.base.resolve("n0").resolve("dledger-n0").resolve("data");
    }

    private static List<Path> dataFiles(Path folder) throws IOException {
        try (Stream<Path> s = Files.list(folder)) {
            return s.filter(p -> p.getFileName().toString().matches("\\d{20}")).sorted().toList();
        }
    }

    private static long start(Path file) {
        return Long.parseLong(file.getFileName().toString());
    }

    private static void age(List<Path> files, long hours) throws IOException {
        FileTime t = FileTime.from(Instant.now().minus(Duration.ofHours(hours)));
        for (Path f : files) {
            Files.setLastModifiedTime(f, t);
        }
    }

    private static String body(int i) {
        return "e" + i + "-" + "z".repeat(900);
    }

    private static List<PutMessageResult> put(DefaultMessageStore s, String topic, int first, int n) {
        List<PutMessageResult> out = new ArrayList<>();
        for (int i = first; i < first + n; i++) {
            PutMessageResult r = s.putMessage(StoreGroup.message(topic, i % QUEUES, body(i)));
            assertEquals(PutMessageStatus.PUT_OK, r.getPutMessageStatus(), "put " + i);
            out.add(r);
        }
        return out;
    }

    private static List<MessageExt> read(DefaultMessageStore s, String topic, int queueId, long from) {
        List<MessageExt> out = new ArrayList<>();
        long at = from;
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

    /** One run of the broker's commit log cleaner, the task the store schedules every cleanResourceInterval. */
    private static void runStoreCleaner(DefaultMessageStore s) throws Exception {
        Method m = DefaultMessageStore.class.getDeclaredMethod("cleanFilesPeriodically");
        m.setAccessible(true);
        m.invoke(s);
    }

    /** One run of the consume queue cleaner, the task the queue store schedules every cleanResourceInterval. */
    private static void runQueueCleaner(DefaultMessageStore s) {
        ((ConsumeQueueStore) s.getQueueStore()).new CleanConsumeQueueService().run();
    }

    @Test
    void expiredFilesGoThroughTheBrokerCleanerWithConfigChangedAtRunTimeAndQueuesFollow() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            g.configure = RaftCommitLogExpiryTest::configure;
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            RaftCommitLog log = StoreGroup.log(s);
            int total = 600;
            List<PutMessageResult> puts = put(s, "T", 0, total);
            await().atMost(Duration.ofSeconds(20)).until(() -> s.dispatchBehindBytes() == 0
                && s.getMaxOffsetInQueue("T", QUEUES - 1) == total / QUEUES);
            List<Path> files = dataFiles(dataDir(g));
            assertTrue(files.size() >= 8, "several data files: " + files.size());
            // Every file read once, so that each is mapped.
            for (int q = 0; q < QUEUES; q++) {
                assertEquals(total / QUEUES, read(s, "T", q, 0).size());
            }
            assertEquals(files.size(), log.dataFiles().mappedCount());

            // The oldest three files were last written 10 hours ago, the others 2 hours ago.
            int old = 3;
            age(files.subList(0, old), 10);
            age(files.subList(old, files.size()), 2);
            // fileReservedTime=72 when the store started; the operator lowers it to 5 (6 h for the log, as stock).
            s.getMessageStoreConfig().setFileReservedTime(5);
            long keptStart = start(files.get(old));
            await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200)).until(() -> {
                runStoreCleaner(s);
                return log.getMinOffset() >= keptStart && log.dataFiles().floor() >= keptStart;
            });
            assertEquals(keptStart, log.getMinOffset(), "the three expired files went, the newer ones stayed");
            assertEquals(files.subList(old, files.size()), dataFiles(dataDir(g)));
            assertEquals(files.size() - old, log.dataFiles().mappedCount(), "the deleted files' mappings are dropped");
            assertNull(log.getData(start(files.get(1))), "nothing is read below the min offset");
            assertNull(log.getMessage(puts.get(0).getAppendMessageResult().getWroteOffset(), 100));

            // The consume queues drop the entries of the deleted files when their cleaner runs.
            runQueueCleaner(s);
            for (int q = 0; q < QUEUES; q++) {
                long min = s.getMinOffsetInQueue("T", q);
                assertTrue(min > 0, "queue " + q + " lost its expired entries");
                List<MessageExt> left = read(s, "T", q, min);
                assertEquals(total / QUEUES - min, left.size());
                assertTrue(left.get(0).getCommitLogOffset() >= keptStart);
                assertEquals(body((int) min * QUEUES + q), new String(left.get(0).getBody(), StandardCharsets.UTF_8));
                long firstKept = min * QUEUES + q;
                long before = puts.get((int) firstKept - QUEUES).getAppendMessageResult().getWroteOffset();
                assertTrue(before < keptStart, "the entry before the queue's min was in a deleted file");
            }
            // The earliest message time is read past the deleted files.
            assertTrue(s.getEarliestMessageTime() > 0);
            // A put after expiry is as any other.
            PutMessageResult after = s.putMessage(StoreGroup.message("T", 0, "after"));
            assertEquals(PutMessageStatus.PUT_OK, after.getPutMessageStatus());
            await().atMost(Duration.ofSeconds(10)).until(() -> s.getMaxOffsetInQueue("T", 0) == total / QUEUES + 1);
        }
    }

    @Test
    void cleanImmediatelyThroughTheFourArgumentOverloadDeletesUnexpiredFilesAndCountsThem() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            g.configure = RaftCommitLogExpiryTest::configure;
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            RaftCommitLog log = StoreGroup.log(s);
            int total = 240;
            put(s, "C", 0, total);
            await().atMost(Duration.ofSeconds(20)).until(() -> s.dispatchBehindBytes() == 0
                && s.getMaxOffsetInQueue("C", QUEUES - 1) == total / QUEUES);
            List<Path> files = dataFiles(dataDir(g));
            assertTrue(files.size() >= 4 && files.size() <= 10, "one run may delete them all but the newest: "
                + files.size());
            // Nothing expired (72 h), and the call alone deletes nothing either.
            assertEquals(0, log.deleteExpiredFile(72 * 3_600_000L, 100, 120_000, false));

            assertEquals(0, log.deleteExpiredFile(72 * 3_600_000L, 100, 120_000, true));
            AtomicInteger counted = new AtomicInteger();
            Path newest = files.get(files.size() - 1);
            await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200)).until(() -> {
                counted.addAndGet(log.deleteExpiredFile(72 * 3_600_000L, 100, 120_000, false));
                return log.dataFiles().floor() == start(newest);
            });
            await().atMost(Duration.ofSeconds(5)).until(() -> {
                counted.addAndGet(log.deleteExpiredFile(72 * 3_600_000L, 100, 120_000, false));
                return counted.get() == files.size() - 1;
            });
            assertEquals(List.of(newest), dataFiles(dataDir(g)), "all but the newest file went");
            assertEquals(start(newest), log.getMinOffset());
            assertEquals(0, log.deleteExpiredFile(72 * 3_600_000L, 100, 120_000, false), "counted once");
        }
    }

    @Test
    void noFileGoesBeforeReputDispatchedEveryMessageInIt() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        StoreGroup g = new StoreGroup(dir, 1);
        try {
            g.configure = RaftCommitLogExpiryTest::configure;
            // A dispatcher that holds reput at the message of topic STALL until the test releases it.
            g.beforeStart = st -> st.getDispatcherList().addLast(r -> {
                if ("STALL".equals(r.getTopic())) {
                    try {
                        release.await(60, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            });
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            RaftCommitLog log = StoreGroup.log(s);
            put(s, "D", 0, 60);
            PutMessageResult stall = s.putMessage(StoreGroup.message("STALL", 0, "hold"));
            assertEquals(PutMessageStatus.PUT_OK, stall.getPutMessageStatus());
            put(s, "D", 60, 120);
            long stallAt = stall.getAppendMessageResult().getWroteOffset();
            List<Path> files = dataFiles(dataDir(g));
            long stallFile = stallAt - stallAt % FILE_SIZE;
            assertTrue(stallFile > start(files.get(0)) && stallFile < start(files.get(files.size() - 2)),
                "the held message is in a middle file: " + stallAt + " in " + files.size() + " files");
            assertTrue(files.size() <= 10, "one forced run could delete every file but the newest: " + files.size());
            assertTrue(s.dispatchBehindBytes() > 0, "reput is held");

            age(files, 100);
            log.deleteExpiredFile(0, 100, 120_000, true);
            await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200)).until(() -> {
                log.deleteExpiredFile(0, 100, 120_000, false);
                return log.dataFiles().floor() > 0;
            });
            assertEquals(stallFile, log.getMinOffset(), "files up to the held message's went, its own stayed");
            assertTrue(Files.exists(dataDir(g).resolve(String.format("%020d", stallFile))));
            assertEquals(60 / QUEUES, s.getMaxOffsetInQueue("D", 1), "messages after the held one wait");

            release.countDown();
            await().atMost(Duration.ofSeconds(20)).until(() -> s.dispatchBehindBytes() == 0);
            for (int q = 0; q < QUEUES; q++) {
                assertEquals(180 / QUEUES, s.getMaxOffsetInQueue("D", q), "every message reached its queue, queue " + q);
            }
            age(dataFiles(dataDir(g)), 100);
            log.deleteExpiredFile(0, 100, 120_000, true);
            await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200)).until(() -> {
                log.deleteExpiredFile(0, 100, 120_000, false);
                return log.getMinOffset() > stallFile;
            });
            assertNotNull(log.getData(log.getMinOffset()));
        } finally {
            // Reput must not stay held, or the store's shutdown waits for it.
            release.countDown();
            g.close();
        }
    }
}
