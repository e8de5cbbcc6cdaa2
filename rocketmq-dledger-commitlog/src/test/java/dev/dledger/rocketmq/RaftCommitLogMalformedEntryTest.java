package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.raft.server.AppendResult;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
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
 * Defence in depth behind the closed Raft port: a NORMAL entry that is not a broker message, appended to the group's
 * log past the broker, is skipped by reput on the leader and on the followers (which run as slaves, whose stock reput
 * never skips a failed record) and by recovery, never dispatched, and the messages around it are consumed as usual.
 */
@Tag("in-process")
class RaftCommitLogMalformedEntryTest {

    @TempDir
    Path dir;

    /** Bodies that reached the log without being a broker message: short, not a message, message-shaped garbage. */
    private static List<byte[]> garbage() {
        byte[] shaped = new byte[100];
        ByteBuffer.wrap(shaped).putInt(100).putInt(MessageDecoder.MESSAGE_MAGIC_CODE);
        return List.of("garbage".getBytes(StandardCharsets.UTF_8),
            "x".repeat(200).getBytes(StandardCharsets.UTF_8), shaped);
    }

    private static List<String> bodies(DefaultMessageStore s, String topic) {
        List<String> out = new ArrayList<>();
        GetMessageResult r = s.getMessage("group", topic, 0, 0, 32, null);
        try {
            if (r.getStatus() == GetMessageStatus.FOUND) {
                for (ByteBuffer b : r.getMessageBufferList()) {
                    MessageExt m = MessageDecoder.decode(b, true, false);
                    out.add(new String(m.getBody(), StandardCharsets.UTF_8));
                }
            }
        } finally {
            r.release();
        }
        return out;
    }

    @Test
    void malformedEntriesAreSkippedByReputAndRecoveryOnEveryNode() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 3)) {
            for (String id : List.of("n0", "n1", "n2")) {
                g.start(id, false);
            }
            DefaultMessageStore leader = g.awaitLeader();
            assertEquals(PutMessageStatus.PUT_OK, leader.putMessage(StoreGroup.message("T", 0, "m0"))
                .getPutMessageStatus());
            AppendResult raw = StoreGroup.log(leader).node().append(garbage()).get(10, TimeUnit.SECONDS);
            assertEquals(AppendResult.Status.OK, raw.status(), "the raw entries are committed: " + raw);
            assertEquals(PutMessageStatus.PUT_OK, leader.putMessage(StoreGroup.message("T", 0, "m1"))
                .getPutMessageStatus());
            for (DefaultMessageStore s : g.stores.values()) {
                await("every message dispatched past the malformed entries").atMost(Duration.ofSeconds(20))
                    .until(() -> s.getMaxOffsetInQueue("T", 0) == 2 && s.dispatchBehindBytes() == 0);
                assertEquals(List.of("m0", "m1"), bodies(s, "T"));
                assertEquals(3, StoreGroup.log(s).malformedEntriesSkipped(), "each malformed entry counted once");
            }
        }
        // A crash of n1 that lost its consume queues and checkpoint: recovery dispatches the whole log again.
        Path n1 = dir.resolve("n1");
        deleteTree(n1.resolve("consumequeue"));
        Files.delete(n1.resolve("checkpoint"));
        try (StoreGroup g = StoreGroup.reopen(dir)) {
            g.start("n0", false);
            DefaultMessageStore s = g.start("n1", true);
            g.start("n2", false);
            await("n1 rebuilt its queue past the malformed entries").atMost(Duration.ofSeconds(20))
                .until(() -> s.getMaxOffsetInQueue("T", 0) == 2);
            assertEquals(List.of("m0", "m1"), bodies(s, "T"));
            assertEquals(3, StoreGroup.log(s).malformedEntriesSkipped());
            DefaultMessageStore leader = g.awaitLeader();
            assertEquals(PutMessageStatus.PUT_OK, leader.putMessage(StoreGroup.message("T", 0, "m2"))
                .getPutMessageStatus());
            await().atMost(Duration.ofSeconds(20)).until(() -> s.getMaxOffsetInQueue("T", 0) == 3);
            assertEquals(List.of("m0", "m1", "m2"), bodies(s, "T"));
        }
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
