package dev.dledger.raft.store;

import static dev.dledger.raft.store.SegmentedLogStoreTest.SMALL;
import static dev.dledger.raft.store.SegmentedLogStoreTest.entries;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Data files over several folders (DLedger's multi-path) and in read-only folders. */
class MultiPathStoreTest {

    @TempDir
    Path base;

    private Path node() {
        return base.resolve("node");
    }

    private static List<Path> files(Path folder) throws IOException {
        if (!Files.isDirectory(folder)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(folder)) {
            return s.sorted().toList();
        }
    }

    private static long start(Path file) {
        return Long.parseLong(file.getFileName().toString());
    }

    /** Content and last-modified time of every file of {@code folder}. */
    private static Map<Path, String> fingerprint(Path folder) throws IOException {
        Map<Path, String> out = new LinkedHashMap<>();
        for (Path p : files(folder)) {
            out.put(p, java.util.Arrays.hashCode(Files.readAllBytes(p)) + "@" + Files.getLastModifiedTime(p));
        }
        return out;
    }

    @Test
    void dataFilesTakeTheFoldersInTurnAndReopen() throws IOException {
        Path a = base.resolve("a");
        Path b = base.resolve("b");
        // Listed out of order: the rotation follows the sorted names, as DLedger's.
        StoreConfig config = SMALL.withDataStorePaths(List.of(b, a));
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            assertEquals(List.of(a, b), s.writableDataFolders());
            s.append(entries(0, 600, 1));
            s.sync();
        }
        assertTrue(files(a).size() >= 5 && files(b).size() >= 5, files(a) + " " + files(b));
        files(a).forEach(p -> assertEquals(0, start(p) / 4096 % 2, p + " has an even file number"));
        files(b).forEach(p -> assertEquals(1, start(p) / 4096 % 2, p + " has an odd file number"));
        assertTrue(files(node().resolve("data")).isEmpty(), "no default data folder is used");
        assertTrue(!files(node().resolve("index")).isEmpty(), "the index stays in the store folder");
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            assertEquals(599, s.lastIndex());
            assertEquals(entries(0, 600, 1), s.entries(0, 600, Long.MAX_VALUE));
            s.append(entries(600, 100, 2));
            s.sync();
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            assertEquals(699, s.lastIndex());
            assertEquals(null, s.verify().problem());
        }
    }

    @Test
    void tornTailInAnotherFolderIsCutOffOnRecovery() throws IOException {
        Path a = base.resolve("a");
        Path b = base.resolve("b");
        StoreConfig config = SMALL.withDataStorePaths(List.of(a, b));
        long tailPos;
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            s.append(entries(0, 300, 1));
            s.sync();
            tailPos = s.position(299);
        }
        long lastStart = tailPos - tailPos % 4096;
        Path last = (lastStart / 4096 % 2 == 0 ? a : b).resolve(EntryFormat.fileName(lastStart));
        try (RandomAccessFile f = new RandomAccessFile(last.toFile(), "rw")) {
            f.seek(tailPos % 4096 + 50);
            f.write(new byte[] {9, 9, 9, 9});
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            assertEquals(298, s.lastIndex(), "the torn entry 299 is cut off");
        }
    }

    @Test
    void newFilesAvoidAFullFolderWhileAnotherHasRoom() throws IOException {
        Path a = base.resolve("a");
        Path b = base.resolve("b");
        StoreConfig config = SMALL.withDataStorePaths(List.of(a, b));
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            s.append(entries(0, 100, 1));
            List<Path> inA = files(a);
            Clock noon = Clock.fixed(Instant.parse("2030-05-01T12:00:00Z"), ZoneOffset.UTC);
            LogRetention.Result r = new LogRetention(RetentionPolicy.defaults(), noon, f -> f.equals(a) ? 0.9 : 0.2)
                .run(s, s.lastIndex(), i -> Membership.of("a"));
            assertEquals(0, r.deletedFiles(), "the store's own disk is not full: nothing is deleted");
            s.append(entries(100, 500, 1));
            s.sync();
            assertEquals(inA, files(a), "no new file went to the full folder");
            assertTrue(files(b).size() > 5);
        }
    }

    @Test
    void readOnlyFilesAreReadButNeitherWrittenNorDeleted() throws IOException {
        Path ro = base.resolve("ro");
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), SMALL)) {
            s.append(entries(0, 600, 1));
            s.sync();
        }
        // An operator moved the older files to a read-only folder.
        Files.createDirectories(ro);
        List<Path> data = files(node().resolve("data"));
        for (Path p : data.subList(0, data.size() - 2)) {
            Files.move(p, ro.resolve(p.getFileName()), StandardCopyOption.ATOMIC_MOVE);
        }
        Map<Path, String> before = fingerprint(ro);
        StoreConfig config = SMALL.withReadOnlyDataStoreDirs(List.of(ro));
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            assertEquals(entries(0, 600, 1), s.entries(0, 600, Long.MAX_VALUE));
            assertTrue(s.dataFiles().get(0).readOnly());
            s.append(entries(600, 200, 2));
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.truncateSuffix(10));
            assertTrue(e.getMessage().contains("read-only"), e.getMessage());
            s.compactPrefix(new SnapshotMeta(700, 2, Membership.of("a")));
            assertEquals(701, s.firstIndex());
            Clock clock = Clock.fixed(Instant.parse("2030-05-01T04:10:00Z"), ZoneOffset.UTC);
            assertEquals(0, new LogRetention(RetentionPolicy.defaults(), clock, f -> 0.99)
                .run(s, s.lastIndex(), i -> Membership.of("a")).deletedFiles(), "retention stops at a read-only file");
            s.sync();
        }
        assertEquals(before, fingerprint(ro), "the read-only files are as they were");
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            assertEquals(701, s.firstIndex());
            assertEquals(799, s.lastIndex());
            assertEquals(entries(701, 99, 2), s.entries(701, 800, Long.MAX_VALUE));
        }
        assertEquals(before, fingerprint(ro));
    }

    @Test
    void whenTheNewestFileIsReadOnlyTheLogGoesOnInTheNextFile() throws IOException {
        Path ro = base.resolve("ro");
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), SMALL)) {
            s.append(entries(0, 300, 1));
            s.sync();
        }
        Files.createDirectories(ro);
        List<Path> data = files(node().resolve("data"));
        for (Path p : data) {
            Files.move(p, ro.resolve(p.getFileName()), StandardCopyOption.ATOMIC_MOVE);
        }
        long nextFile = start(data.get(data.size() - 1)) + 4096;
        Map<Path, String> before = fingerprint(ro);
        StoreConfig config = SMALL.withReadOnlyDataStoreDirs(List.of(ro));
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            assertEquals(299, s.lastIndex());
            long[] pos = s.append(entries(300, 20, 2));
            assertEquals(nextFile, pos[0], "the first new entry opens the file after the read-only one");
            s.sync();
        }
        assertEquals(before, fingerprint(ro));
        assertTrue(Files.exists(node().resolve("data").resolve(EntryFormat.fileName(nextFile))));
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), config)) {
            assertEquals(319, s.lastIndex(), "recovery passes the unwritten end of the read-only file");
            assertEquals(entries(0, 300, 1), s.entries(0, 300, Long.MAX_VALUE));
            assertArrayEquals(entries(319, 1, 2).get(0).data(), s.entries(319, 320, 1).get(0).data());
            assertEquals(null, s.verify().problem());
        }
    }

    @Test
    void missingReadOnlyFolderAndDuplicateFilesAreRefused() throws IOException {
        Path ro = base.resolve("ro");
        StoreIoException e = assertThrows(StoreIoException.class,
            () -> SegmentedLogStore.open(node(), SMALL.withReadOnlyDataStoreDirs(List.of(ro))));
        assertTrue(e.getMessage().contains(ro + " of store"), e.getMessage());
        try (SegmentedLogStore s = SegmentedLogStore.open(node(), SMALL)) {
            s.append(entries(0, 100, 1));
            s.sync();
        }
        Files.createDirectories(ro);
        Path first = files(node().resolve("data")).get(0);
        Files.copy(first, ro.resolve(first.getFileName()));
        StoreCorruptedException c = assertThrows(StoreCorruptedException.class,
            () -> SegmentedLogStore.open(node(), SMALL.withReadOnlyDataStoreDirs(List.of(ro))));
        assertTrue(c.getMessage().contains("is both in"), c.getMessage());
        assertEquals(List.of(Path.of("/x/a"), Path.of("/x/b")), StoreConfig.splitPaths(" /x/a, /x/b "));
        assertThrows(IllegalArgumentException.class, () -> StoreConfig.splitPaths("/x/a,,/x/b"));
    }
}
