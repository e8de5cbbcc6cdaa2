package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.GetMessageResult;
import org.apache.rocketmq.store.GetMessageStatus;
import org.apache.rocketmq.store.PutMessageResult;
import org.apache.rocketmq.store.PutMessageStatus;
import org.apache.rocketmq.store.SelectMappedBufferResult;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Raft commit log under real RocketMQ message stores, on a real Raft group in one JVM. */
@Tag("in-process")
class RaftCommitLogTest {

    @TempDir
    Path dir;

    private static List<MessageExt> read(DefaultMessageStore s, String topic, int queueId, long from, int max) {
        List<MessageExt> out = new ArrayList<>();
        long at = from;
        while (out.size() < max) {
            GetMessageResult r = s.getMessage("group", topic, queueId, at, max - out.size(), null);
            try {
                if (r.getStatus() != GetMessageStatus.FOUND) {
                    assertTrue(!out.isEmpty() || max == 0, "reading " + topic + "-" + queueId + " at " + at + ": "
                        + r.getStatus());
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
        return out;
    }

    private static String body(MessageExt m) {
        return new String(m.getBody(), StandardCharsets.UTF_8);
    }

    @Test
    void putsCommitAndReadBackWithOffsetsAndIdsThatPointAtTheMessage() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            List<PutMessageResult> results = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                PutMessageResult r = s.putMessage(StoreGroup.message("T", 0, "m" + i));
                assertEquals(PutMessageStatus.PUT_OK, r.getPutMessageStatus(), "put " + i);
                assertEquals(i, r.getAppendMessageResult().getLogicsOffset());
                results.add(r);
            }
            await().atMost(Duration.ofSeconds(5)).until(() -> s.getMaxOffsetInQueue("T", 0) == 10);
            List<MessageExt> got = read(s, "T", 0, 0, 32);
            assertEquals(10, got.size());
            for (int i = 0; i < 10; i++) {
                MessageExt m = got.get(i);
                assertEquals("m" + i, body(m));
                assertEquals(i, m.getQueueOffset());
                assertEquals(results.get(i).getAppendMessageResult().getWroteOffset(), m.getCommitLogOffset(),
                    "the stored physical offset is the one the put returned");
                assertEquals(results.get(i).getAppendMessageResult().getMsgId(), m.getMsgId());
                // The entry header sits 48 bytes before the message.
                SelectMappedBufferResult head = s.getCommitLog().getMessage(m.getCommitLogOffset() - 48, 48);
                assertNotNull(head);
                assertEquals(48 + m.getStoreSize(), head.getByteBuffer().getInt(4), "entry size covers the message");
            }
            assertEquals(s.getCommitLog().getMaxOffset(), s.getCommitLog().getConfirmOffset());
            assertTrue(s.getEarliestMessageTime() > 0, "earliest message time is read through the header");
        }
    }

    @Test
    void batchAndAsyncPutsGetConsecutiveQueueOffsets() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            List<java.util.concurrent.CompletableFuture<PutMessageResult>> fs = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                fs.add(s.asyncPutMessage(StoreGroup.message("A", 1, "a" + i)));
            }
            for (int i = 0; i < 50; i++) {
                assertEquals(PutMessageStatus.PUT_OK, fs.get(i).get(5, TimeUnit.SECONDS).getPutMessageStatus());
            }
            org.apache.rocketmq.common.message.MessageExtBatch batch = BatchMessages.of("B", 2, 5);
            PutMessageResult br = s.putMessages(batch);
            assertEquals(PutMessageStatus.PUT_OK, br.getPutMessageStatus());
            assertEquals(5, br.getAppendMessageResult().getMsgId().split(",").length);
            await().atMost(Duration.ofSeconds(5)).until(() -> s.getMaxOffsetInQueue("A", 1) == 50
                && s.getMaxOffsetInQueue("B", 2) == 5);
            List<MessageExt> a = read(s, "A", 1, 0, 64);
            for (int i = 0; i < 50; i++) {
                assertEquals("a" + i, body(a.get(i)));
                assertEquals(i, a.get(i).getQueueOffset());
            }
            List<MessageExt> b = read(s, "B", 2, 0, 64);
            assertEquals(5, b.size());
            assertEquals(br.getAppendMessageResult().getWroteOffset(), b.get(0).getCommitLogOffset());
            for (int i = 0; i < 5; i++) {
                assertEquals("b" + i, body(b.get(i)));
                assertEquals(i, b.get(i).getQueueOffset());
            }
        }
    }

    /**
     * A put the Raft node refuses after the broker let it in (here: while the leader hands its leadership to a peer
     * that is down, until that times out) must take no queue offset. A gap in a queue's offsets is not harmless: the
     * consume queue places entries one after another whatever offset they carry, so after a gap a message's offset no
     * longer names its slot, and the next leader, whose table comes from the consume queue, hands the same offsets
     * out again (two messages at one queue offset, consumers confused). The broker fault run found this.
     */
    @Test
    void aPutRefusedDuringALeadershipTransferTakesNoQueueOffset() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 3)) {
            for (String id : List.of("n0", "n1", "n2")) {
                g.start(id, false);
            }
            DefaultMessageStore first = g.awaitLeader();
            for (int i = 0; i < 5; i++) {
                assertEquals(PutMessageStatus.PUT_OK, first.putMessage(StoreGroup.message("G", 0, "g" + i))
                    .getPutMessageStatus(), "put " + i);
            }
            String leader = StoreGroup.log(first).settings().selfId();
            String down = leader.equals("n2") ? "n1" : "n2";
            g.stop(down);
            // The transfer to a node that is down lasts until it times out; puts are refused meanwhile. On a busy
            // machine the leadership may move between the two live nodes first: ask whichever leads.
            DefaultMessageStore[] leading = new DefaultMessageStore[1];
            await("a transfer to the stopped node").atMost(Duration.ofSeconds(30)).until(() -> {
                leading[0] = g.awaitLeader();
                return StoreGroup.log(leading[0]).node().transferLeadership(down).get(5, TimeUnit.SECONDS).accepted();
            });
            DefaultMessageStore s = leading[0];
            // The transfer is announced a heartbeat interval first: puts are taken meanwhile, then refused.
            long[] taken = {5};
            PutMessageResult[] refused = new PutMessageResult[1];
            await("a put refused once the transfer started").atMost(Duration.ofSeconds(10)).until(() -> {
                refused[0] = s.putMessage(StoreGroup.message("G", 0, "before the transfer started"));
                if (refused[0].getPutMessageStatus() == PutMessageStatus.PUT_OK) {
                    taken[0]++;
                    return false;
                }
                return true;
            });
            assertEquals(PutMessageStatus.SERVICE_NOT_AVAILABLE, refused[0].getPutMessageStatus());
            PutMessageResult[] after = new PutMessageResult[1];
            await("a put taken once the transfer timed out").atMost(Duration.ofSeconds(20)).until(() -> {
                after[0] = s.putMessage(StoreGroup.message("G", 0, "after"));
                return after[0].getPutMessageStatus() == PutMessageStatus.PUT_OK;
            });
            assertEquals(taken[0], after[0].getAppendMessageResult().getLogicsOffset(), "the refused put took an offset");
            await().atMost(Duration.ofSeconds(5)).until(() -> s.getMaxOffsetInQueue("G", 0) == taken[0] + 1);
            List<MessageExt> got = read(s, "G", 0, 0, 64);
            assertEquals(taken[0] + 1, got.size());
            for (int i = 0; i < got.size(); i++) {
                assertEquals(i, got.get(i).getQueueOffset(), "the message in slot " + i + " of the consume queue");
            }
            assertEquals("after", body(got.get(5)));
        }
    }

    /** A put while the commit log is not open for the node's term is refused and takes no queue offset. */
    @Test
    void aPutOutsideTheOpenTermIsRefusedWithoutTakingAnOffset() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            RaftCommitLog log = StoreGroup.log(s);
            assertEquals(PutMessageStatus.PUT_OK, s.putMessage(StoreGroup.message("O", 0, "o0")).getPutMessageStatus());
            long term = log.putTerm();
            assertEquals(log.node().status().term(), term);
            log.openForPuts(term - 1);
            assertEquals(PutMessageStatus.SERVICE_NOT_AVAILABLE,
                s.putMessage(StoreGroup.message("O", 0, "stale")).getPutMessageStatus());
            log.closeForPuts();
            assertEquals(PutMessageStatus.SERVICE_NOT_AVAILABLE,
                s.putMessage(StoreGroup.message("O", 0, "closed")).getPutMessageStatus());
            log.openForPuts(term);
            PutMessageResult r = s.putMessage(StoreGroup.message("O", 0, "o1"));
            assertEquals(PutMessageStatus.PUT_OK, r.getPutMessageStatus());
            assertEquals(1, r.getAppendMessageResult().getLogicsOffset());
        }
    }

    @Test
    void normalAndAbnormalRestartsKeepEveryMessageAndRebuildMissingQueues() throws Exception {
        long max;
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            // Enough to fill several 1 MiB data files: files roll with a BLANK record at their ends.
            byte[] pad = new byte[900];
            for (int i = 0; i < 3000; i++) {
                String b = "r" + i + new String(pad, StandardCharsets.ISO_8859_1).replace('\0', 'x');
                assertEquals(PutMessageStatus.PUT_OK, s.putMessage(StoreGroup.message("R", i % 4, b))
                    .getPutMessageStatus());
            }
            await().atMost(Duration.ofSeconds(5)).until(() -> s.getMaxOffsetInQueue("R", 3) == 750);
            max = s.getCommitLog().getMaxOffset();
            assertTrue(max > 3 * StoreGroup.FILE_SIZE, "several files: " + max);
        }
        try (StoreGroup g = reopen(dir)) {
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            assertTrue(s.getCommitLog().getMaxOffset() >= max);
            for (int q = 0; q < 4; q++) {
                assertEquals(750, s.getMaxOffsetInQueue("R", q));
            }
            assertEquals("r2999", body(read(s, "R", 3, 749, 1).get(0)).substring(0, 5));
        }
        // A crash with the store checkpoint intact: recovery starts from the checkpoint's message offset, inside an
        // entry, and must scan from the entry that holds it.
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            DefaultMessageStore s = g.start("n0", true);
            g.awaitLeader();
            for (int q = 0; q < 4; q++) {
                assertEquals(750, s.getMaxOffsetInQueue("R", q));
            }
        }
        // A crash that lost the consume queue of one queue and the store checkpoint: recovery dispatches the whole log
        // again, the queues that still have their entries skip them, the lost one is rebuilt.
        deleteTree(dir.resolve("n0").resolve("consumequeue").resolve("R").resolve("2"));
        java.nio.file.Files.delete(dir.resolve("n0").resolve("checkpoint"));
        try (StoreGroup g = reopen(dir)) {
            DefaultMessageStore s = g.start("n0", true);
            g.awaitLeader();
            try {
                await().atMost(Duration.ofSeconds(10)).until(() -> s.getMaxOffsetInQueue("R", 2) == 750);
            } catch (org.awaitility.core.ConditionTimeoutException e) {
                throw new AssertionError("R-2 has " + s.getMaxOffsetInQueue("R", 2) + " (min "
                    + s.getMinOffsetInQueue("R", 2) + "), R-3 " + s.getMaxOffsetInQueue("R", 3) + ", log ["
                    + s.getCommitLog().getMinOffset() + ", " + s.getCommitLog().getMaxOffset() + "), dispatch behind "
                    + s.dispatchBehindBytes() + ", node " + StoreGroup.log(s).node().status(), e);
            }
            List<MessageExt> q2 = read(s, "R", 2, 0, 32);
            assertEquals("r2", body(q2.get(0)).substring(0, 2));
            assertEquals(0, s.getMinOffsetInQueue("R", 2));
            assertEquals(PutMessageStatus.PUT_OK, s.putMessage(StoreGroup.message("R", 2, "after")).getPutMessageStatus());
            await().atMost(Duration.ofSeconds(5)).until(() -> s.getMaxOffsetInQueue("R", 2) == 751);
            assertEquals("after", body(read(s, "R", 2, 750, 1).get(0)));
        }
    }

    @Test
    void withoutAQuorumAPutIsNotAcknowledgedAndNothingBecomesVisible() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 3)) {
            // Long elections so that the leader keeps leading while it waits for a quorum that is gone.
            g.props.setProperty("raftElectionTimeoutMs", "4000");
            g.props.setProperty("raftAppendTimeoutMs", "500");
            for (String id : List.of("n0", "n1", "n2")) {
                g.start(id, false);
            }
            DefaultMessageStore leader = g.awaitLeader();
            assertEquals(PutMessageStatus.PUT_OK, leader.putMessage(StoreGroup.message("Q", 0, "q0")).getPutMessageStatus());
            await().atMost(Duration.ofSeconds(5)).until(() -> g.stores.values().stream()
                .allMatch(st -> maxInQueue(st, "Q", 0) == 1));
            String leaderId = StoreGroup.log(leader).settings().selfId();
            List<String> followers = new ArrayList<>(g.stores.keySet());
            followers.remove(leaderId);
            followers.forEach(g::stop);
            long before = leader.getCommitLog().getMaxOffset();
            PutMessageResult r = leader.putMessage(StoreGroup.message("Q", 0, "q1"));
            assertEquals(PutMessageStatus.IN_SYNC_REPLICAS_NOT_ENOUGH, r.getPutMessageStatus());
            assertEquals(before, leader.getCommitLog().getMaxOffset(), "uncommitted bytes are not readable");
            assertEquals(1, leader.getMaxOffsetInQueue("Q", 0), "nor dispatched");
            // A follower comes back: the entry commits and becomes visible on both.
            DefaultMessageStore back = g.start(followers.get(0), false);
            await().atMost(Duration.ofSeconds(20)).until(() -> leader.getMaxOffsetInQueue("Q", 0) == 2
                && back.getMaxOffsetInQueue("Q", 0) == 2);
            assertArrayEquals("q1".getBytes(StandardCharsets.UTF_8), read(back, "Q", 0, 1, 1).get(0).getBody());
        }
    }

    private static long maxInQueue(DefaultMessageStore s, String topic, int queueId) {
        try {
            return s.getMaxOffsetInQueue(topic, queueId);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static StoreGroup reopen(Path dir) throws Exception {
        return StoreGroup.reopen(dir);
    }

    private static void deleteTree(Path p) throws java.io.IOException {
        if (!java.nio.file.Files.exists(p)) {
            throw new IllegalStateException("no " + p);
        }
        try (var s = java.nio.file.Files.walk(p)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
    }
}
