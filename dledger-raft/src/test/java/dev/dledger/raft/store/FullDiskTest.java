package dev.dledger.raft.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A full disk fails the append with a clear error, stops further writes, and keeps what was stored readable. */
class FullDiskTest {

    @TempDir
    Path dir;

    @Test
    void fullDiskFailsTheAppendAndKeepsWhatWasStored() {
        AtomicLong budget = new AtomicLong(60_000);
        FileOpener full = (path, options) -> new FullDiskChannel(FileChannel.open(path, options), budget);
        long stored = -1;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SegmentedLogStoreTest.SMALL, full)) {
            StoreIoException error = null;
            for (int batch = 0; batch < 1000 && error == null; batch++) {
                List<Entry> next = SegmentedLogStoreTest.entries(s.lastIndex() + 1, 10, 1);
                try {
                    s.append(next);
                    s.sync();
                    stored = s.lastIndex();
                } catch (StoreIoException e) {
                    error = e;
                }
            }
            assertTrue(error != null, "the budget ran out");
            assertTrue(error.getMessage().contains("No space left on device"), error.getMessage());
            assertTrue(error.getMessage().contains(dir.toString()), "names the store: " + error.getMessage());
            StoreIoException again = assertThrows(StoreIoException.class,
                () -> s.append(SegmentedLogStoreTest.entries(s.lastIndex() + 1, 1, 1)));
            assertTrue(again.getMessage().contains("takes no more writes"), again.getMessage());
            assertTrue(stored > 100, "something was stored first: " + stored);
            assertEquals(SegmentedLogStoreTest.entries(0, (int) stored + 1, 1), s.entries(0, stored + 1, Long.MAX_VALUE),
                "what was stored before stays readable");
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SegmentedLogStoreTest.SMALL)) {
            assertTrue(s.lastIndex() >= stored, "after a restart with room, everything synced is there");
            assertEquals(null, s.verify().problem());
        }
    }
}
