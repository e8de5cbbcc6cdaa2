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
import java.util.Map;
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

    static List<Path> files(Path folder) throws IOException {
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
    void endPositionsOfNewEntriesAreTheIndexsAfterTruncationsAndCompactions() {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
            assertEndsAsIndexed(s);
            // Rewritten from 150 with other sizes: the ends kept for the old entries must not be given for the new.
            s.truncateSuffix(150);
            List<Entry> longer = new ArrayList<>();
            for (long i = 150; i < 260; i++) {
                longer.add(new Entry(i, 2, EntryType.NORMAL, ("rewritten-" + i + "-" + "y".repeat((int) (i % 50) + 40))
                    .getBytes(StandardCharsets.UTF_8)));
            }
            s.append(longer);
            assertEndsAsIndexed(s);
            s.compactPrefix(new SnapshotMeta(100, 1, Membership.of("a")));
            assertEndsAsIndexed(s);
            s.compactPrefix(new SnapshotMeta(400, 2, Membership.of("a")));
            s.append(entries(401, 30, 2));
            assertEndsAsIndexed(s);
        }
    }

    /** Every entry's {@link SegmentedLogStore#endPosition} is its index unit's position plus its record's size. */
    private static void assertEndsAsIndexed(SegmentedLogStore s) {
        for (long i = s.firstIndex(); i <= s.lastIndex(); i++) {
            Entry e = s.entries(i, i + 1, Long.MAX_VALUE).get(0);
            assertEquals(s.position(i) + EntryFormat.recordSize(e), s.endPosition(i), "end of entry " + i);
        }
    }

    @Test
    void aStoreStartedAtABoundaryKeepsThatStartAcrossARestart() {
        long start = 5 * 4096;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.startAt(start);
            assertEquals(start, s.writePosition());
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(start, s.writePosition(), "the start survives a restart before the first entry");
            long[] pos = s.append(entries(0, 100, 1));
            assertEquals(start, pos[0]);
            assertThrows(IllegalStateException.class, () -> s.startAt(10 * 4096));
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(start, s.position(0));
            assertEquals(99, s.lastIndex());
            assertEquals(null, s.verify().problem());
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir.resolve("other"), SMALL)) {
            assertThrows(IllegalArgumentException.class, () -> s.startAt(4096 + 1));
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
    void indexUnitsLostInACrashAreRebuiltFromTheDataOfTheNewestFiles() throws IOException {
        long firstLost;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
            s.sync();
            // Units of the newest two data files: the index is fsynced only at rolls, so a crash can lose these.
            List<Path> data = files(dir.resolve("data"));
            long sealedStart = Long.parseLong(data.get(data.size() - 2).getFileName().toString());
            long i = 299;
            while (i > 0 && s.position(i - 1) >= sealedStart) {
                i--;
            }
            firstLost = i;
        }
        for (long i = firstLost; i < 300; i++) {
            long at = i * 32;
            try (RandomAccessFile f = new RandomAccessFile(dir.resolve("index").resolve(EntryFormat.fileName(
                at - at % 2048)).toFile(), "rw")) {
                f.seek(at % 2048);
                f.write(new byte[32]);
            }
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(299, s.lastIndex());
            assertEquals(entries(0, 300, 1), s.entries(0, 300, Long.MAX_VALUE));
            assertEquals(null, s.verify().problem());
        }
    }

    @Test
    void noopAndConfigEntriesAreWrittenWithMagicOneAndTheirTypeInTheChannel() throws IOException {
        List<Entry> written = List.of(new Entry(0, 1, EntryType.NOOP, null),
            new Entry(1, 1, EntryType.CONFIG, Membership.of("a", "b").encode()),
            new Entry(2, 1, EntryType.NORMAL, "x".getBytes(StandardCharsets.UTF_8)));
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(written);
            s.sync();
        }
        try (RandomAccessFile f = new RandomAccessFile(files(dir.resolve("data")).get(0).toFile(), "r");
             RandomAccessFile idx = new RandomAccessFile(files(dir.resolve("index")).get(0).toFile(), "r")) {
            long pos = 0;
            int[] channels = {2, 3, 0};
            for (int i = 0; i < 3; i++) {
                f.seek(pos);
                assertEquals(1, f.readInt(), "magic of entry " + i);
                int size = f.readInt();
                f.seek(pos + 32);
                assertEquals(channels[i], f.readInt(), "channel of entry " + i);
                f.seek(pos + 44);
                assertTrue(f.readInt() > 0, "every body is non-empty");
                idx.seek(i * 32L);
                assertEquals(1, idx.readInt(), "index magic of entry " + i);
                pos += size;
            }
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(written, s.entries(0, 3, Long.MAX_VALUE), "the NOOP's filler byte is dropped");
            assertEquals(EntryType.CONFIG, s.info(1).type());
            assertEquals(Map.of(EntryType.NOOP, 1L, EntryType.CONFIG, 1L, EntryType.NORMAL, 1L), s.verify().types());
        }
    }

    @Test
    void flippedTypeByteBreaksTheChain() throws IOException {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
            s.sync();
        }
        // Entry 0 is a NOOP, outside the recovery scan: channel 2 at byte 32. Make it a CONFIG.
        try (RandomAccessFile f = new RandomAccessFile(files(dir.resolve("data")).get(0).toFile(), "rw")) {
            f.seek(35);
            f.write(3);
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            String problem = s.verify().problem();
            assertTrue(problem != null && problem.contains("chain CRC of entry 0"), problem);
        }
    }

    @Test
    void stockNoopWithMagicTwoAndIndexMagicOneReadsAsANoop() throws IOException {
        // As stock DLedger 0.4 writes a NOOP (bug S6): data magic 2, empty body, index unit magic 1, no CRCs.
        Files.createDirectories(dir.resolve("data"));
        Files.createDirectories(dir.resolve("index"));
        java.nio.ByteBuffer data = java.nio.ByteBuffer.allocate(4096);
        java.nio.ByteBuffer index = java.nio.ByteBuffer.allocate(2048);
        int[] magics = {1, 2, 1};
        byte[][] bodies = {"a".getBytes(StandardCharsets.UTF_8), new byte[0], "c".getBytes(StandardCharsets.UTF_8)};
        for (int i = 0; i < 3; i++) {
            int pos = data.position();
            data.putInt(magics[i]).putInt(48 + bodies[i].length).putLong(i).putLong(0).putLong(pos).putInt(0)
                .putInt(0).putInt(0).putInt(bodies[i].length).put(bodies[i]);
            index.putInt(1).putLong(pos).putInt(48 + bodies[i].length).putLong(i).putLong(0);
        }
        Files.write(dir.resolve("data").resolve(EntryFormat.fileName(0)), data.array());
        Files.write(dir.resolve("index").resolve(EntryFormat.fileName(0)), index.array());
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(2, s.lastIndex());
            List<Entry> read = s.entries(0, 3, Long.MAX_VALUE);
            assertEquals(List.of(EntryType.NORMAL, EntryType.NOOP, EntryType.NORMAL),
                read.stream().map(Entry::type).toList());
            assertEquals(0, read.get(1).data().length);
            SegmentedLogStore.VerifyReport r = s.verify();
            assertEquals(null, r.problem());
            assertEquals(Map.of(EntryType.NOOP, 1L, EntryType.NORMAL, 2L), r.types());
        }
    }

    @Test
    void aStockEntryWithAStrayChainFieldIsNotTheChainPredecessorOfTheFirstEntryOfOurRange() throws IOException {
        // Fuzz finding (store-bytes, kept as damaged-entry-kept-as-chain-predecessor): a stock entry (no valid CRCs)
        // whose chain field holds stray bytes. The first entry appended after recovery starts our CRC range, which
        // chains from 0; it was chained from the stray field, so the next open refused the store.
        Files.createDirectories(dir.resolve("data"));
        Files.createDirectories(dir.resolve("index"));
        java.nio.ByteBuffer data = java.nio.ByteBuffer.allocate(4096);
        java.nio.ByteBuffer index = java.nio.ByteBuffer.allocate(2048);
        byte[] body = "a".getBytes(StandardCharsets.UTF_8);
        data.putInt(1).putInt(48 + body.length).putLong(0).putLong(1).putLong(0).putInt(0)
            .putInt(0x0fc70000).putInt(0x3825f93a).putInt(body.length).put(body);
        index.putInt(1).putLong(0).putInt(48 + body.length).putLong(0).putLong(1);
        Files.write(dir.resolve("data").resolve(EntryFormat.fileName(0)), data.array());
        Files.write(dir.resolve("index").resolve(EntryFormat.fileName(0)), index.array());
        Entry appended = new Entry(1, 1, EntryType.NORMAL, "b".getBytes(StandardCharsets.UTF_8));
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(0, s.lastIndex());
            s.append(List.of(appended));
            s.sync();
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(1, s.lastIndex());
            assertEquals(1, s.crcFrom());
            assertArrayEquals(appended.data(), s.entries(1, 2, Long.MAX_VALUE).get(0).data());
            assertEquals(null, s.verify().problem());
        }
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

    @Test
    void aDamagedIndexUnitOfAnOldEntryIsCorruptionNotAWrongTerm() throws IOException {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
        }
        // Entry 5 is in the first data file, which recovery does not scan; the term is the last field of its unit.
        try (RandomAccessFile f = new RandomAccessFile(files(dir.resolve("index")).get(0).toFile(), "rw")) {
            f.seek(5 * 32 + 24);
            f.writeLong(65537);
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            StoreCorruptedException e = assertThrows(StoreCorruptedException.class, () -> s.term(5));
            assertTrue(e.getMessage().contains(files(dir.resolve("index")).get(0) + " at 160: index unit")
                && e.getMessage().contains("disagrees with the record"), e.getMessage());
            assertThrows(StoreCorruptedException.class, () -> s.position(5));
            assertEquals(1, s.term(6), "the units around it are fine");
        }
    }

    @Test
    void theEndOfTheLogBeforeAFileWithRecordsIsAHoleNotATornTail() throws IOException {
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
        }
        List<Path> data = files(dir.resolve("data"));
        // The first file recovery scans loses its first record header: it reads as the end of the log.
        Path hole = data.get(data.size() - 3);
        try (RandomAccessFile f = new RandomAccessFile(hole.toFile(), "rw")) {
            f.write(new byte[48]);
        }
        StoreCorruptedException e = assertThrows(StoreCorruptedException.class, () -> SegmentedLogStore.open(dir, SMALL),
            "the entries in the files after it must not be dropped, nor overwritten by the next appends");
        assertTrue(e.getMessage().startsWith(hole + " at 0 (position ") && e.getMessage().contains("the log ends here, "
            + "but the later data file " + data.get(data.size() - 2) + " holds records"), e.getMessage());
    }

    @Test
    void aChangedHeaderOfAnOldEntryBreaksTheChainWhenItIsRead() throws IOException {
        long pos;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries(0, 300, 1));
            pos = s.position(20);
        }
        // Entry 20's term, in its record header only: its body CRC still holds, recovery does not scan its file.
        Path file = dir.resolve("data").resolve(EntryFormat.fileName(pos - pos % 4096));
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(pos % 4096 + 16);
            f.writeLong(7);
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            StoreCorruptedException e = assertThrows(StoreCorruptedException.class,
                () -> s.entries(18, 22, Long.MAX_VALUE));
            assertTrue(e.getMessage().startsWith(file + " at " + pos + ": chain CRC of entry 20 breaks the chain"),
                e.getMessage());
            assertEquals(entries(22, 1, 1), s.entries(22, 23, Long.MAX_VALUE), "the entries after it read");
        }
    }
}
