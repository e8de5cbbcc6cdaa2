package dev.dledger.rocketmq;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.apache.rocketmq.common.UtilAll;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.store.CommitLog;

/**
 * Writes a master/slave store's CommitLog in the exact format a stock 5.5.1 broker writes (v1 messages, IPv4 hosts,
 * a BLANK record at the end of each full file), fast enough for millions of messages: one large buffer per file,
 * written sequentially. Messages go round-robin to the queues of one topic, each with its own queue offset. No
 * ConsumeQueue or index files are written (the converter takes the tags code from the message when there is no unit).
 */
final class CommitLogGenerator {

    /** Bytes of a message with {@code bodyBytes} of body, topic {@code topic} and no properties. */
    static int messageBytes(String topic, int bodyBytes) {
        return 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + bodyBytes + 1
            + topic.getBytes(StandardCharsets.UTF_8).length + 2;
    }

    /**
     * Writes {@code messages} messages into {@code root/commitlog} in files of {@code fileSize} bytes.
     *
     * @return the end offset of the last message
     */
    static long write(Path root, String topic, int queues, long messages, int bodyBytes, int fileSize)
        throws IOException {
        Path dir = root.resolve("commitlog");
        Files.createDirectories(dir);
        byte[] t = topic.getBytes(StandardCharsets.UTF_8);
        int size = messageBytes(topic, bodyBytes);
        ByteBuffer file = ByteBuffer.allocateDirect(fileSize);
        long[] queueOffsets = new long[queues];
        byte[] body = new byte[bodyBytes];
        long fileStart = 0;
        long base = 1_700_000_000_000L;
        for (long i = 0; i < messages; i++) {
            if (file.remaining() < size + 8) {
                file.putInt(file.remaining()).putInt(CommitLog.BLANK_MAGIC_CODE);
                flush(dir, fileStart, file);
                fileStart += fileSize;
            }
            int q = (int) (i % queues);
            for (int b = 0; b < bodyBytes; b++) {
                body[b] = (byte) (i >>> (8 * (b % 8)));
            }
            long ts = base + i / 1000;
            long at = fileStart + file.position();
            file.putInt(size).putInt(MessageDecoder.MESSAGE_MAGIC_CODE).putInt(UtilAll.crc32(body)).putInt(q)
                .putInt(0).putLong(queueOffsets[q]++).putLong(at).putInt(0)
                .putLong(ts).put(new byte[] {127, 0, 0, 1}).putInt(40000)
                .putLong(ts).put(new byte[] {127, 0, 0, 1}).putInt(10911)
                .putInt(0).putLong(0).putInt(bodyBytes).put(body).put((byte) t.length).put(t).putShort((short) 0);
        }
        long end = fileStart + file.position();
        flush(dir, fileStart, file);
        return end;
    }

    private static void flush(Path dir, long start, ByteBuffer file) throws IOException {
        file.position(file.capacity());
        file.flip();
        try (FileChannel ch = FileChannel.open(dir.resolve(String.format("%020d", start)), StandardOpenOption.CREATE_NEW,
            StandardOpenOption.WRITE)) {
            while (file.hasRemaining()) {
                ch.write(file);
            }
        }
        file.clear();
        while (file.hasRemaining()) {
            file.putLong(0);
        }
        file.clear();
    }

    private CommitLogGenerator() {
    }
}
