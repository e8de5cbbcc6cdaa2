package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.apache.rocketmq.store.timer.Slot;
import org.apache.rocketmq.store.timer.TimerWheel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link TimerWheelFlush}: the wheel's file ends as the stock flush leaves it. */
class TimerWheelFlushTest {

    private static final int SLOTS = 3600;
    private static final int PRECISION_MS = 1000;

    @TempDir
    Path dir;

    @Test
    void copyChangesMakesTheTargetEqualWritingOnlyTheSlotsThatDiffer() {
        Random random = new Random(42);
        ByteBuffer from = ByteBuffer.allocateDirect(64 * TimerWheelFlush.SLOT_BYTES);
        ByteBuffer to = ByteBuffer.allocateDirect(64 * TimerWheelFlush.SLOT_BYTES);
        assertEquals(0, TimerWheelFlush.copyChanges(from, to), "equal buffers: nothing to write");
        // Changes in slots 0, 5 (two bytes), 63 (its last byte): three slots.
        from.put(0, (byte) 1);
        from.put(5 * 32 + 3, (byte) random.nextInt());
        from.put(5 * 32 + 31, (byte) 7);
        from.put(64 * 32 - 1, (byte) 9);
        assertEquals(3, TimerWheelFlush.copyChanges(from, to));
        assertEquals(-1, from.mismatch(to), "the target holds the source's bytes");
        assertEquals(0, TimerWheelFlush.copyChanges(from, to));
    }

    @Test
    void aFlushedWheelIsReadBackFromItsFileAndAnUnflushedOneIsNot() throws Exception {
        Path file = dir.resolve("timerwheel");
        long now = 1_700_000_000_000L;
        TimerWheel wheel = new TimerWheel(file.toString(), SLOTS, PRECISION_MS);
        try {
            for (int i = 0; i < 100; i += 7) {
                wheel.putSlot(now + i * 1000L, 1000L + i, 2000L + i, i + 1, 0);
            }
            assertEquals(-1, readSlot(file, now).firstPos, "before a flush the file holds nothing of it");
            TimerWheelFlush.flushWheel(wheel);
        } finally {
            wheel.shutdown(false);
        }
        TimerWheel reopened = new TimerWheel(file.toString(), SLOTS, PRECISION_MS);
        try {
            for (int i = 0; i < 100; i++) {
                Slot s = reopened.getSlot(now + i * 1000L);
                if (i % 7 == 0) {
                    assertEquals(1000L + i, s.firstPos, "slot " + i);
                    assertEquals(2000L + i, s.lastPos, "slot " + i);
                    assertEquals(i + 1, s.num, "slot " + i);
                } else {
                    assertEquals(-1, s.firstPos, "slot " + i + " was never put");
                }
            }
        } finally {
            reopened.shutdown(false);
        }
    }

    @Test
    void theFileEndsByteForByteAsTheStockFlushLeavesIt() throws Exception {
        Path ours = dir.resolve("ours");
        Path stock = dir.resolve("stock");
        long now = 1_700_000_000_000L;
        TimerWheel a = new TimerWheel(ours.toString(), SLOTS, PRECISION_MS);
        TimerWheel b = new TimerWheel(stock.toString(), SLOTS, PRECISION_MS);
        try {
            Random random = new Random(7);
            for (int round = 0; round < 3; round++) {
                for (int i = 0; i < 500; i++) {
                    long at = now + random.nextInt(SLOTS) * 1000L;
                    long first = random.nextInt(1 << 20);
                    int num = random.nextInt(100);
                    a.putSlot(at, first, first + num, num, 0);
                    b.putSlot(at, first, first + num, num, 0);
                }
                TimerWheelFlush.flushWheel(a);
                b.flush();
                assertArrayEquals(Files.readAllBytes(stock), Files.readAllBytes(ours), "after round " + round);
            }
            assertFalse(java.util.Arrays.equals(new byte[(int) Files.size(ours)], Files.readAllBytes(ours)));
        } finally {
            a.shutdown(false);
            b.shutdown(false);
        }
        assertTrue(Files.size(ours) > 0);
    }

    @Test
    void theGateComparesAfterTheLogMovedOnceMoreAfterItStoppedAndEveryTenthQuietFlush() {
        TimerWheelFlush.ChangeGate gate = new TimerWheelFlush.ChangeGate();
        assertTrue(gate.compareNow(0), "the first flush compares (a revised wheel after a recovery)");
        assertTrue(gate.compareNow(0), "once more after the log stopped: a put that lagged its append");
        for (int quiet = 2; quiet < TimerWheelFlush.ChangeGate.COMPARE_EVERY; quiet++) {
            assertFalse(gate.compareNow(0), "quiet flush " + quiet);
        }
        assertTrue(gate.compareNow(0), "every tenth quiet flush compares regardless");
        assertFalse(gate.compareNow(0));
        assertTrue(gate.compareNow(4096), "the log grew: a slot may have been put");
        assertTrue(gate.compareNow(8192));
        assertTrue(gate.compareNow(8192), "once more after it stopped");
        assertFalse(gate.compareNow(8192));
    }

    /** The slot at {@code at} in a copy of {@code file} (a wheel reads its file when it opens). */
    private static Slot readSlot(Path file, long at) throws Exception {
        Path copy = Path.of(file + ".copy");
        Files.copy(file, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        TimerWheel w = new TimerWheel(copy.toString(), SLOTS, PRECISION_MS);
        try {
            return w.getSlot(at);
        } finally {
            w.shutdown(false);
        }
    }
}
