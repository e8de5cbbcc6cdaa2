package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
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
import java.util.concurrent.Callable;
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
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A broker whose node joins after the leader's expiry deleted the start of the Raft log is caught up by a snapshot,
 * and from there its messages have the leader's physical offsets: the same offsets, message ids and queue entries.
 */
@Tag("in-process")
class RaftCommitLogCatchUpTest {

    private static final int FILE_SIZE = 64 * 1024;
    private static final int QUEUES = 2;
    private static final String EVERY_HOUR = IntStream.range(0, 24).mapToObj(h -> String.format("%02d", h))
        .collect(Collectors.joining(";"));

    @TempDir
    Path dir;

    private static void configure(MessageStoreConfig c) {
        c.setMappedFileSizeCommitLog(FILE_SIZE);
        c.setDeleteWhen(EVERY_HOUR);
        c.setFileReservedTime(72);
        c.setCleanFileForciblyEnable(false);
        c.setDiskMaxUsedSpaceRatio(95);
    }

    private static List<Path> dataFiles(Path folder) throws IOException {
        try (Stream<Path> s = Files.list(folder)) {
            return s.filter(p -> p.getFileName().toString().matches("\\d{20}")).sorted().toList();
        }
    }

    private static String body(int i) {
        return "m" + i + "-" + "c".repeat(700);
    }

    private static MessageExt readOne(DefaultMessageStore s, String topic, int queueId, long offset) {
        GetMessageResult r = s.getMessage("group", topic, queueId, offset, 1, null);
        try {
            if (r.getStatus() != GetMessageStatus.FOUND) {
                return null;
            }
            ByteBuffer b = r.getMessageBufferList().get(0);
            return MessageDecoder.decode(b, true, false);
        } finally {
            r.release();
        }
    }

    private static void runStoreCleaner(DefaultMessageStore s) throws Exception {
        Method m = DefaultMessageStore.class.getDeclaredMethod("cleanFilesPeriodically");
        m.setAccessible(true);
        m.invoke(s);
    }

    /**
     * Puts message {@code i} (queue {@code i % QUEUES}; -1: one more to queue 0) through whichever store leads, again
     * when a busy machine moved the leadership and the put was refused.
     */
    private static PutMessageResult put(StoreGroup g, int i) throws Exception {
        PutMessageResult[] r = new PutMessageResult[1];
        Callable<Boolean> tried = () -> {
            DefaultMessageStore leader = g.awaitLeader();
            r[0] = leader.putMessage(i < 0 ? StoreGroup.message("C", 0, "after the catch-up")
                : StoreGroup.message("C", i % QUEUES, body(i)));
            return r[0].getPutMessageStatus() == PutMessageStatus.PUT_OK;
        };
        if (!tried.call()) {
            await("put " + i).atMost(Duration.ofSeconds(30)).until(tried);
        }
        return r[0];
    }

    @Test
    void nodeBehindTheLeadersExpiryGetsTheLeadersOffsets() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 3)) {
            g.configure = RaftCommitLogCatchUpTest::configure;
            // n0 and n1 form the majority; n2 starts later with an empty disk.
            g.start("n0", false);
            g.start("n1", false);
            List<PutMessageResult> puts = new ArrayList<>();
            int total = 400;
            for (int i = 0; i < total; i++) {
                puts.add(put(g, i));
            }
            DefaultMessageStore leader = g.awaitLeader();
            String leaderId = leader == g.stores.get("n0") ? "n0" : "n1";
            for (String id : List.of("n0", "n1")) {
                DefaultMessageStore s = g.stores.get(id);
                await().atMost(Duration.ofSeconds(20)).until(() -> s.getMaxOffsetInQueue("C", QUEUES - 1)
                    == total / QUEUES && s.dispatchBehindBytes() == 0);
            }
            // Every file but the newest looks 10 hours old, and both nodes expire what is older than 6 hours.
            Path data = dir.resolve(leaderId).resolve("dledger-" + leaderId).resolve("data");
            List<Path> files = dataFiles(data);
            assertTrue(files.size() >= 4, "several data files: " + files.size());
            long keptStart = Long.parseLong(files.get(files.size() - 2).getFileName().toString());
            for (String id : List.of("n0", "n1")) {
                Path folder = dir.resolve(id).resolve("dledger-" + id).resolve("data");
                for (Path f : dataFiles(folder).subList(0, files.size() - 2)) {
                    Files.setLastModifiedTime(f, FileTime.from(Instant.now().minus(Duration.ofHours(10))));
                }
                DefaultMessageStore s = g.stores.get(id);
                s.getMessageStoreConfig().setFileReservedTime(5);
                await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(200)).until(() -> {
                    runStoreCleaner(s);
                    return StoreGroup.log(s).getMinOffset() >= keptStart;
                });
            }

            DefaultMessageStore late = g.start("n2", false);
            RaftCommitLog lateLog = StoreGroup.log(late);
            RaftCommitLog leaderLog = StoreGroup.log(leader);
            await().atMost(Duration.ofSeconds(30)).until(() -> lateLog.getMaxOffset() == leaderLog.getMaxOffset()
                && late.dispatchBehindBytes() == 0);
            // Whichever node leads, the live ones hold the same log: the check below reads n2 only.
            assertEquals(keptStart, lateLog.getMinOffset(), "n2's log starts where the leader's does");

            // Every message the leader still holds is on n2 at the same offset, in the same queue slot.
            int checked = 0;
            for (int i = 0; i < total; i++) {
                long offset = puts.get(i).getAppendMessageResult().getWroteOffset();
                if (offset < keptStart) {
                    continue;
                }
                long queueOffset = puts.get(i).getAppendMessageResult().getLogicsOffset();
                MessageExt m = readOne(late, "C", i % QUEUES, queueOffset);
                assertNotNull(m, "message " + i + " at queue offset " + queueOffset + " on n2");
                assertEquals(offset, m.getCommitLogOffset(), "physical offset of message " + i);
                assertEquals(body(i), new String(m.getBody(), StandardCharsets.UTF_8));
                assertEquals(puts.get(i).getAppendMessageResult().getMsgId(), m.getMsgId());
                checked++;
            }
            assertTrue(checked >= 20, "messages after the cut: " + checked);

            // New messages land at the same offsets on n2 as on the leader.
            PutMessageResult after = put(g, -1);
            long queueOffset = after.getAppendMessageResult().getLogicsOffset();
            await().atMost(Duration.ofSeconds(20)).until(() -> readOne(late, "C", 0, queueOffset) != null);
            assertEquals(after.getAppendMessageResult().getWroteOffset(),
                readOne(late, "C", 0, queueOffset).getCommitLogOffset());
        }
    }
}
