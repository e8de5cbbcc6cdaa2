package dev.dledger.raft.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SegmentedLogStoreTest {

    /** Small files so that a few hundred entries span several of them. */
    static final StoreConfig SMALL = StoreConfig.defaults().withFileSizes(4096, 32 * 64);

    @TempDir
    Path dir;

    static List<Entry> entries(long from, int count, long term) {
        List<Entry> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long index = from + i;
            EntryType type = index % 17 == 0 ? EntryType.NOOP : EntryType.NORMAL;
            byte[] body = type == EntryType.NOOP ? new byte[0]
                : ("entry-" + index + "-" + "x".repeat((int) (index % 90))).getBytes(StandardCharsets.UTF_8);
            out.add(new Entry(index, term, type, body));
        }
        return out;
    }

    private static List<Path> files(Path folder) throws IOException {
        try (Stream<Path> s = Files.list(folder)) {
            return s.sorted().toList();
        }
    }

    @Test
    void entriesReadBackAfterReopenAcrossFileBoundaries() {
        List<Entry> written = entries(0, 300, 1);
        long[] pos;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            pos = s.append(written.subList(0, 120));
            s.append(written.subList(120, 300));
            s.sync();
            assertEquals(0, pos[0]);
            assertEquals(49, pos[1], "entry 0 is an empty NOOP, stored with a one-byte body");
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(0, s.firstIndex());
            assertEquals(299, s.lastIndex());
            assertEquals(written, s.entries(0, 300, Long.MAX_VALUE));
            assertEquals(1, s.term(150));
            assertEquals(pos[1], s.position(1));
            assertTrue(s.writePosition() > 4096 * 5, "spans several data files");
        }
    }

    @Test
    void appendsContinueAfterReopenWithAnUnbrokenChain() {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 50, 1));
            s.sync();
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(50, 50, 2));
            s.sync();
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(99, s.lastIndex());
            assertEquals(2, s.term(99));
            assertEquals(0, s.crcFrom());
        }
    }

    @Test
    void truncatedSuffixDoesNotComeBackAfterReopen() {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 200, 1));
            s.truncateSuffix(80);
            assertEquals(79, s.lastIndex());
            s.append(entries(80, 10, 2));
            s.sync();
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(89, s.lastIndex(), "the removed entries 90..199 stay removed");
            assertEquals(2, s.term(85));
            assertEquals(1, s.term(79));
        }
    }

    @Test
    void compactedPrefixStaysCompactedAndFilesAreDeleted() throws IOException {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
            int before = files(dir.resolve("data")).size();
            s.compactPrefix(new SnapshotMeta(200, 1, Membership.of("a", "b", "c")));
            assertTrue(files(dir.resolve("data")).size() < before, "whole files below the snapshot are gone");
            s.sync();
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(201, s.firstIndex());
            assertEquals(299, s.lastIndex());
            assertEquals(1, s.term(200), "the snapshot's term");
            assertEquals(-1, s.term(150));
            assertEquals(Membership.of("a", "b", "c"), s.snapshot().membership());
            assertEquals(entries(0, 300, 1).subList(201, 300), s.entries(201, 300, Long.MAX_VALUE));
        }
    }

    @Test
    void snapshotPastTheEndEmptiesTheLogWhichContinuesAfterIt() {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 20, 1));
            s.compactPrefix(new SnapshotMeta(500, 3, Membership.of("a")));
            assertEquals(500, s.lastIndex());
            s.append(entries(501, 5, 3));
            s.sync();
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(501, s.firstIndex());
            assertEquals(505, s.lastIndex());
            assertEquals(entries(501, 5, 3), s.entries(501, 506, Long.MAX_VALUE));
        }
    }

    @Test
    void tornTailIsCutBackToTheLastWholeEntry() throws IOException {
        long tailPos;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 100, 1));
            s.sync();
            tailPos = s.position(99);
        }
        // Tear the last entry: keep its header and half its body, as a crash mid-write would.
        Path last = files(dir.resolve("data")).get(files(dir.resolve("data")).size() - 1);
        long inFile = tailPos % 4096;
        try (RandomAccessFile f = new RandomAccessFile(last.toFile(), "rw")) {
            f.seek(inFile + 52);
            f.write(new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(98, s.lastIndex(), "entry 99 was torn and is cut off");
            s.append(entries(99, 1, 1));
            s.sync();
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(99, s.lastIndex());
            assertEquals(entries(99, 1, 1), s.entries(99, 100, Long.MAX_VALUE));
        }
    }

    @Test
    void flippedByteInASealedFileStopsTheStoreNamingTheFile() throws IOException {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
            s.sync();
        }
        List<Path> data = files(dir.resolve("data"));
        Path victim = data.get(data.size() - 2);
        try (RandomAccessFile f = new RandomAccessFile(victim.toFile(), "rw")) {
            f.seek(60);
            int b = f.read();
            f.seek(60);
            f.write(b ^ 0x40);
        }
        StoreCorruptedException e = assertThrows(StoreCorruptedException.class, () -> SegmentedLogStore.open(dir, SMALL));
        assertTrue(e.getMessage().contains(victim.getFileName().toString()), e.getMessage());
        assertTrue(e.getMessage().contains("CRC"), e.getMessage());
    }

    @Test
    void flippedByteOutsideTheRecoveryScanIsCaughtOnRead() throws IOException {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 400, 1));
            s.sync();
        }
        Path first = files(dir.resolve("data")).get(0);
        // Entry 0 is an empty NOOP (49 bytes with its filler byte); entry 1's body starts at 97.
        try (RandomAccessFile f = new RandomAccessFile(first.toFile(), "rw")) {
            f.seek(100);
            int b = f.read();
            f.seek(100);
            f.write(b ^ 0x40);
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            StoreCorruptedException e = assertThrows(StoreCorruptedException.class,
                () -> s.entries(0, 2, Long.MAX_VALUE));
            assertTrue(e.getMessage().contains("body CRC of entry 1"), e.getMessage());
        }
    }

    @Test
    void truncatedIndexFileIsRefusedWithItsSize() throws IOException {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 100, 1));
            s.sync();
        }
        Path idx = files(dir.resolve("index")).get(0);
        try (RandomAccessFile f = new RandomAccessFile(idx.toFile(), "rw")) {
            f.setLength(100);
        }
        StoreCorruptedException e = assertThrows(StoreCorruptedException.class, () -> SegmentedLogStore.open(dir, SMALL));
        assertTrue(e.getMessage().contains(idx.getFileName() + " is 100 bytes, expected 2048"), e.getMessage());
    }

    @Test
    void indexUnitThatDisagreesWithASealedEntryIsRefused() throws IOException {
        long target = -1;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
            s.sync();
            List<Path> data = files(dir.resolve("data"));
            long sealedStart = Long.parseLong(data.get(data.size() - 2).getFileName().toString());
            for (long i = 0; i < 300 && target < 0; i++) {
                if (s.position(i) >= sealedStart) {
                    target = i;
                }
            }
        }
        long unitAt = target * 32;
        Path idx = dir.resolve("index").resolve(EntryFormat.fileName(unitAt - unitAt % 2048));
        try (RandomAccessFile f = new RandomAccessFile(idx.toFile(), "rw")) {
            f.seek(unitAt % 2048 + 24);
            f.writeLong(7);
        }
        StoreCorruptedException e = assertThrows(StoreCorruptedException.class, () -> SegmentedLogStore.open(dir, SMALL));
        assertTrue(e.getMessage().contains("disagrees with entry " + target), e.getMessage());
    }

    @Test
    void missingMiddleDataFileIsRefused() throws IOException {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
            s.sync();
        }
        List<Path> data = files(dir.resolve("data"));
        Files.delete(data.get(2));
        StoreCorruptedException e = assertThrows(StoreCorruptedException.class, () -> SegmentedLogStore.open(dir, SMALL));
        assertTrue(e.getMessage().contains("files missing"), e.getMessage());
    }

    @Test
    void oversizedEntryIsRefusedAndNothingIsWritten() {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 3, 1));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> s.append(List.of(new Entry(3, 1, EntryType.NORMAL, new byte[5000]))));
            assertTrue(e.getMessage().contains("does not fit"), e.getMessage());
            assertEquals(2, s.lastIndex());
            s.append(entries(3, 1, 1));
            assertArrayEquals(entries(3, 1, 1).get(0).data(), s.entries(3, 4, 1).get(0).data());
        }
    }
}
