package dev.dledger.migration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The timer log's CommitLog offsets follow a conversion through the timer topic's queues ({@link TimerFiles}), on files
 * written in the stock layout: 52-byte timer log units closed by a blank, ConsumeQueue files of 20-byte units.
 */
class TimerFilesTest {

    private static final int CQ_FILE = 4 * ClassicStore.CQ_UNIT;
    private static final long READ_TIME = 1_000_000L;

    @TempDir
    Path tmp;

    @Test
    void timerLogOffsetsAreTranslatedThroughTheTimerQueues() throws Exception {
        Path from = tmp.resolve("from");
        Path to = tmp.resolve("to");
        // Five timer messages in the source (two queue files) and at other offsets in the target.
        queue(from, new long[] {1000, 2000, 3000, 4000, 5000}, 300);
        queue(to, new long[] {148, 548, 948, 1348, 1748}, 300);
        // Units: three pending (due after the read time), one delivered, one whose message is gone, one pending
        // delete marker; then the blank that closes the file.
        ByteBuffer log = ByteBuffer.allocate(TimerFiles.UNIT_SIZE * 8);
        unit(log, 1000, READ_TIME + 5000, 1);
        unit(log, 3000, READ_TIME - 5000, 1);
        unit(log, 5000, READ_TIME + 7000, 1);
        unit(log, 7777, READ_TIME + 9000, 1);
        unit(log, 2000, READ_TIME + 1000, 1 | 4);
        unit(log, 4000, READ_TIME + 2000, 1);
        log.putInt(log.remaining()).putLong(0).putInt(TimerFiles.BLANK_MAGIC);
        Files.createDirectories(from.resolve("timerlog"));
        Files.write(from.resolve("timerlog").resolve("00000000000000000000"), log.array());
        byte[] wheel = "the wheel's slots".getBytes(StandardCharsets.US_ASCII);
        Files.write(from.resolve("timerwheel"), wheel);
        Files.createDirectories(from.resolve("config"));
        Files.write(from.resolve("config").resolve("timercheck"), ByteBuffer.allocate(64).putLong(READ_TIME).array());

        ByteArrayOutputStream text = new ByteArrayOutputStream();
        TimerFiles.Result r = TimerFiles.carry(from, from.resolve("consumequeue"), to, to.resolve("consumequeue"),
            new PrintStream(text, true, StandardCharsets.UTF_8));

        assertEquals(new TimerFiles.Result(6, 5, 4, 1, 1), r);
        ByteBuffer out = ByteBuffer.wrap(Files.readAllBytes(to.resolve("timerlog").resolve("00000000000000000000")));
        long[] expected = {148, 948, 1748, -1, 548, 1348};
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], out.getLong(i * TimerFiles.UNIT_SIZE + 28), "unit " + i);
            // Everything else of the unit is kept.
            ByteBuffer a = out.duplicate().position(i * TimerFiles.UNIT_SIZE).limit(i * TimerFiles.UNIT_SIZE + 28);
            ByteBuffer b = ByteBuffer.wrap(log.array()).position(i * TimerFiles.UNIT_SIZE)
                .limit(i * TimerFiles.UNIT_SIZE + 28);
            assertEquals(b, a, "unit " + i);
        }
        assertEquals(ByteBuffer.wrap(log.array(), 6 * TimerFiles.UNIT_SIZE, 2 * TimerFiles.UNIT_SIZE),
            ByteBuffer.wrap(out.array(), 6 * TimerFiles.UNIT_SIZE, 2 * TimerFiles.UNIT_SIZE), "the blank");
        assertArrayEquals(wheel, Files.readAllBytes(to.resolve("timerwheel")));
        assertTrue(text.toString(StandardCharsets.UTF_8).contains("1 of them pending"), text.toString());
    }

    @Test
    void aTimerMessageOfAnotherSizeInTheTargetIsRefusedNamingTheFile() throws Exception {
        Path from = tmp.resolve("from");
        Path to = tmp.resolve("to");
        queue(from, new long[] {1000}, 300);
        queue(to, new long[] {148}, 299);
        ByteBuffer log = ByteBuffer.allocate(TimerFiles.UNIT_SIZE * 2);
        unit(log, 1000, READ_TIME, 1);
        Files.createDirectories(from.resolve("timerlog"));
        Files.write(from.resolve("timerlog").resolve("00000000000000000000"), log.array());
        MigrationException e = assertThrows(MigrationException.class, () -> TimerFiles.carry(from,
            from.resolve("consumequeue"), to, to.resolve("consumequeue"), new PrintStream(new ByteArrayOutputStream(),
                true, StandardCharsets.UTF_8)));
        assertTrue(e.getMessage().contains("00000000000000000000") && e.getMessage().contains("299 bytes"),
            e.getMessage());
    }

    @Test
    void aStoreWithoutTimerStateCarriesNothing() {
        assertEquals(null, TimerFiles.carry(tmp.resolve("none"), tmp.resolve("none"), tmp.resolve("to"),
            tmp.resolve("to"), new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8)));
    }

    /** The timer topic's queue 0 in {@code root}: units at {@code phys}, in files of four units. */
    private static void queue(Path root, long[] phys, int size) throws Exception {
        Path dir = root.resolve("consumequeue").resolve(TimerFiles.TIMER_TOPIC).resolve("0");
        Files.createDirectories(dir);
        for (int f = 0; f * 4 < phys.length; f++) {
            ByteBuffer b = ByteBuffer.allocate(CQ_FILE);
            for (int i = f * 4; i < Math.min(phys.length, f * 4 + 4); i++) {
                b.putLong(phys[i]).putInt(size).putLong(0);
            }
            Files.write(dir.resolve(String.format("%020d", (long) f * CQ_FILE)), b.array());
        }
    }

    private static void unit(ByteBuffer log, long offsetPy, long dueMs, int magic) {
        long enqueue = dueMs - 60_000;
        log.putInt(TimerFiles.UNIT_SIZE).putLong(-1).putInt(magic).putLong(enqueue).putInt(60_000).putLong(offsetPy)
            .putInt(300).putInt(7).putLong(0);
    }
}
