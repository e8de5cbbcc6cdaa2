package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.GetMessageResult;
import org.apache.rocketmq.store.GetMessageStatus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The generated CommitLog that {@code RewriteBenchmark}, {@code RewriteScaleTest} and {@code RewriteCutoverIT} convert
 * is in the exact format of a stock 5.5.1 broker: RocketMQ's own store (its {@code DefaultMessageStore}, CRC checked
 * at recovery) opens it, recovers every byte of it, builds the ConsumeQueues from it and serves every message at its
 * queue offset with the body the generator wrote.
 */
class CommitLogGeneratorTest {

    private static final String TOPIC = "Generated";
    private static final int QUEUES = 3;
    private static final int MESSAGES = 20_000;
    private static final int BODY = 100;

    @TempDir
    Path tmp;

    @Test
    void aStockStoreRecoversAndServesTheGeneratedCommitLog() throws Exception {
        try (StoreGroup g = new StoreGroup(tmp, 1)) {
            long end = CommitLogGenerator.write(tmp.resolve("n0"), TOPIC, QUEUES, MESSAGES, BODY, StoreGroup.FILE_SIZE);
            DefaultMessageStore s = g.startClassic("n0");
            assertEquals(end, s.getMaxPhyOffset(), "the stock recovery kept every byte (CRCs checked)");
            long perQueue = MESSAGES / QUEUES;
            await("the stock reput built the queues").atMost(Duration.ofSeconds(60)).until(() -> {
                long sum = 0;
                for (int q = 0; q < QUEUES; q++) {
                    sum += s.getMaxOffsetInQueue(TOPIC, q);
                }
                return sum == MESSAGES;
            });
            for (int q = 0; q < QUEUES; q++) {
                long expected = perQueue + (q < MESSAGES % QUEUES ? 1 : 0);
                assertEquals(expected, s.getMaxOffsetInQueue(TOPIC, q), "queue " + q);
                long offset = 0;
                while (offset < expected) {
                    GetMessageResult r = s.getMessage("check", TOPIC, q, offset, 32, null);
                    try {
                        assertEquals(GetMessageStatus.FOUND, r.getStatus(), "queue " + q + " offset " + offset);
                        for (ByteBuffer b : r.getMessageBufferList()) {
                            MessageExt m = MessageDecoder.decode(b, true, false);
                            assertEquals(offset, m.getQueueOffset(), "queue " + q);
                            assertArrayEquals(body(offset * QUEUES + q), m.getBody(), "queue " + q + " offset " + offset);
                            offset++;
                        }
                    } finally {
                        r.release();
                    }
                }
            }
        }
    }

    /** The body the generator writes for its message number {@code i}. */
    private static byte[] body(long i) {
        byte[] b = new byte[BODY];
        for (int k = 0; k < BODY; k++) {
            b[k] = (byte) (i >>> (8 * (k % 8)));
        }
        return b;
    }
}
