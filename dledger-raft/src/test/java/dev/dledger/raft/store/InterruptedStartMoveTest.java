package dev.dledger.raft.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A store whose snapshot record says where the log goes on, beyond every data file, while data files that hold nothing
 * after the snapshot are still there: what a crash leaves in the middle of a compaction to an empty log, or of a move
 * of the start ({@link SegmentedLogStore#moveStartTo}), after the record and before the old files went. It opens going
 * on at the record's position and removes those files; left, the next data file would open a gap that the store
 * refuses at its next open.
 */
class InterruptedStartMoveTest {

    private static final int FILE = 4096;

    @TempDir
    Path dir;

    @Test
    void leftoverDataFilesBehindTheRecordsPositionGoAtTheOpen() throws IOException {
        long next;
        Path dataFolder;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SegmentedLogStoreTest.SMALL)) {
            s.append(SegmentedLogStoreTest.entries(0, 200, 1));
            s.compactPrefix(new SnapshotMeta(500, 2, Membership.of("n0")));
            next = s.writePosition();
            assertTrue(s.dataFiles().isEmpty(), "compacted to an empty log: " + s.dataFiles());
            dataFolder = dir.resolve("data");
        }
        // The crash's leftover: an old data file two files below the recorded position, holding nothing.
        try (RandomAccessFile f = new RandomAccessFile(dataFolder.resolve(EntryFormat.fileName(next - 2 * FILE)).toFile(),
            "rw")) {
            f.setLength(FILE);
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SegmentedLogStoreTest.SMALL)) {
            assertEquals(next, s.writePosition());
            assertTrue(s.dataFiles().isEmpty(), "the leftover is still there: " + s.dataFiles());
            s.append(SegmentedLogStoreTest.entries(501, 3, 2));
            assertEquals(next, s.position(501));
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SegmentedLogStoreTest.SMALL)) {
            assertEquals(503, s.lastIndex());
            assertEquals(next, s.position(501));
        }
    }
}
