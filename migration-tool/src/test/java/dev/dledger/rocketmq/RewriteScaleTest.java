package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.migration.MigrateCommand;
import dev.dledger.raft.store.EntryFormat;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Rewrite with memory bounded independently of the store's size: a store of more messages than a {@code long} per
 * message fits in the heap converts in a child JVM with {@code -Xmx32m}, and the result is checked entry by entry at
 * its ends and unit by unit in the queues.
 */
class RewriteScaleTest {

    /** 4.2 million messages: one {@code long} each is 33.6 MB, more than the whole 32 MiB heap. */
    private static final long MESSAGES = 4_200_000;
    private static final int QUEUES = 4;
    private static final int BODY = 8;
    private static final int FILE_SIZE = 64 << 20;
    private static final String TOPIC = "T";

    @TempDir
    Path dir;

    @Test
    void rewriteOfMillionsOfMessagesRunsInASmallHeap() throws Exception {
        Path from = dir.resolve("master");
        long end = CommitLogGenerator.write(from, TOPIC, QUEUES, MESSAGES, BODY, FILE_SIZE);
        Path to = dir.resolve("n0");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx32m", "-XX:+ExitOnOutOfMemoryError", "-cp", System.getProperty("java.class.path"),
            MigrateCommand.class.getName(), "convert", "--from", from.toString(), "--to", to.toString(), "--group", "g",
            "--peers", "n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3", "--self-id", "n0", "--mode", "rewrite",
            "--index-hash-slots", "1000", "--index-max-items", "4000"));
        Path log = dir.resolve("convert.log");
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "convert did not finish within 120 s");
        } finally {
            p.destroyForcibly();
        }
        String output = Files.readString(log);
        String lastLines = output.length() > 2000 ? output.substring(output.length() - 2000) : output;
        System.out.printf("rewrite of %d messages (%d MB) under -Xmx32m: exit %d in %.1f s%n%s%n", MESSAGES, end >> 20,
            p.exitValue(), (System.nanoTime() - t0) / 1e9, lastLines);
        assertEquals(0, p.exitValue(), lastLines);

        Path node = to.resolve("dledger-n0");
        long lastPos;
        try (SegmentedLogStore s = SegmentedLogStore.open(node, StoreConfig.detect(node, StoreConfig.defaults()))) {
            assertEquals(MESSAGES + 1, s.lastIndex(), "the messages and the CONFIG of the group after them");
            lastPos = s.position(MESSAGES) + EntryFormat.HEADER_SIZE;
        }
        // Every unit of every queue: its queue offset's message, at increasing new offsets; the last at the last entry.
        long max = -1;
        for (int q = 0; q < QUEUES; q++) {
            long units = MESSAGES / QUEUES + (q < MESSAGES % QUEUES ? 1 : 0);
            long prev = -1;
            long n = 0;
            Path qdir = to.resolve("consumequeue").resolve(TOPIC).resolve(Integer.toString(q));
            try (var files = Files.list(qdir)) {
                for (Path f : files.sorted().toList()) {
                    ByteBuffer b = read(f);
                    while (b.remaining() >= 20 && n < units) {
                        long phy = b.getLong();
                        int size = b.getInt();
                        b.getLong();
                        assertTrue(phy > prev && size == CommitLogGenerator.messageBytes(TOPIC, BODY),
                            "queue " + q + " unit " + n + ": offset " + phy + " after " + prev + ", size " + size);
                        prev = phy;
                        n++;
                    }
                }
            }
            assertEquals(units, n, "units of queue " + q);
            max = Math.max(max, prev);
        }
        assertEquals(lastPos, max, "the last unit points at the last message's new offset");
    }

    private static ByteBuffer read(Path f) throws IOException {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate((int) ch.size());
            while (b.hasRemaining() && ch.read(b) >= 0) {
                // reads the whole file
            }
            return b.flip();
        }
    }
}
