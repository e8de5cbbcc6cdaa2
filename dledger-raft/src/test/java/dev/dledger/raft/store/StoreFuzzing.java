package dev.dledger.raft.store;

import static dev.dledger.raft.fuzz.FuzzTally.check;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.fuzz.FuzzTally;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What the store fuzz targets do with a node folder of fuzzed files, and the contract they check.
 *
 * <p>The folder is laid out as DLedger's ({@code data/}, {@code index/}, {@code currterm}, {@code checkpoint},
 * {@code crc-from}, {@code compacted}). The store is opened with {@link SegmentedLogStore#open}, every entry is read
 * (entry, header, term, position), the whole log is verified; then one entry is appended, and the store opened again
 * must end with it. The meta files are read with {@link MetaFiles}.
 *
 * <p>Contract: each of these succeeds, or fails with {@link StoreCorruptedException} or {@link StoreIoException}
 * whose one-line message names the folder's path (the file, and where it applies the position). Any other exception,
 * any error (an {@link OutOfMemoryError} under the fuzz JVM's small heap) and a hang are findings; so is an appended
 * entry that the next open loses.
 */
final class StoreFuzzing {

    /** Small files, so that a fuzz input of a few KiB spans several of them. */
    static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(4096, 32 * 64);
    /** The files of a node folder besides the data and the index. */
    static final List<String> META_FILES = List.of("currterm", "checkpoint", "crc-from", "compacted");

    private StoreFuzzing() {
    }

    /** A folder for the executions of one JVM, on tmpfs when the machine has one: recovery fsyncs every file. */
    static Path scratch(String name) {
        try {
            Path shm = Path.of("/dev/shm");
            Path base = Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
            return Files.createTempDirectory(base, name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Deletes {@code dir} and everything in it. */
    static void delete(Path dir) {
        clear(dir);
        try {
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Deletes everything in {@code dir}, keeping the folder. */
    static void clear(Path dir) {
        try {
            Files.walkFileTree(dir, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                    Files.delete(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                    if (!d.equals(dir)) {
                        Files.delete(d);
                    }
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Opens, reads, verifies, appends to and reopens the store in {@code dir}, and reads its meta files, checking the
     * contract.
     *
     * @return the entries that read back, by index
     * @throws AssertionError (a finding) when the contract is broken
     */
    static Map<Long, Entry> exercise(Path dir) {
        MetaFiles meta = new MetaFiles(dir);
        try {
            meta.readHardState();
        } catch (StoreCorruptedException e) {
            FuzzTally.clearErrorNaming(e, dir.resolve("currterm").toString());
        }
        try {
            meta.readCommitCheckpoint();
        } catch (StoreCorruptedException e) {
            FuzzTally.clearErrorNaming(e, dir.resolve("checkpoint").toString());
        }
        Map<Long, Entry> read = new HashMap<>();
        Entry appended;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, CONFIG)) {
            readAll(s, dir, read);
            SegmentedLogStore.VerifyReport report = s.verify();
            check(report.problem() == null || !report.problem().isBlank(), "verify names its problem", null);
            appended = appendOne(s);
        } catch (StoreCorruptedException | StoreIoException e) {
            FuzzTally.clearErrorNaming(e, dir.toString());
            return read;
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, CONFIG)) {
            check(s.lastIndex() == appended.index(), "the store reopens with the entry appended after recovery as its "
                + "last (" + appended.index() + "), not " + s.lastIndex(), null);
            check(appended.equals(s.entries(appended.index(), appended.index() + 1, Long.MAX_VALUE).get(0)),
                "the entry appended after recovery reads back", null);
        } catch (StoreCorruptedException | StoreIoException e) {
            throw new AssertionError("a store that opened and took an append does not open again: " + e, e);
        }
        return read;
    }

    private static void readAll(SegmentedLogStore s, Path dir, Map<Long, Entry> read) {
        check(s.term(s.lastIndex() + 1) == -1, "no term past the end", null);
        for (long i = s.firstIndex(); i <= s.lastIndex(); i++) {
            try {
                Entry e = s.entries(i, i + 1, Long.MAX_VALUE).get(0);
                check(e.index() == i, "entry " + i + " reads back as entry " + e.index(), null);
                SegmentedLogStore.EntryInfo info = s.info(i);
                check(info.index() == i && info.term() == e.term() && info.type() == e.type(),
                    "the header of entry " + i + " agrees with the entry", null);
                check(info.pos() == s.position(i), "the position of entry " + i + " agrees with its header", null);
                check(s.term(i) == e.term(), "the term of entry " + i + " is " + s.term(i) + " but the entry says "
                    + e.term(), null);
                read.put(i, e);
            } catch (StoreCorruptedException | StoreIoException e) {
                FuzzTally.clearErrorNaming(e, dir.toString());
            }
        }
    }

    /** Appends one entry after the last, in the last term (a new entry never has a lower term). */
    private static Entry appendOne(SegmentedLogStore s) {
        long index = s.lastIndex() + 1;
        long term = Math.max(1, s.term(s.lastIndex()));
        Entry e = new Entry(index, term, EntryType.NORMAL, ("appended " + index).getBytes(StandardCharsets.UTF_8));
        s.append(List.of(e));
        s.sync();
        return e;
    }
}
