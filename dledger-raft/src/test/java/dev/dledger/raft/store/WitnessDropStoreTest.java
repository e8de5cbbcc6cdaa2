package dev.dledger.raft.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A witness's file store drops entry bodies (issue 19) by deleting whole data files and keeping the index files:
 * terms and indexes stay for votes and log matching, NOOP and CONFIG entries stay whole, a dropped body is refused
 * with a clear error, and a restart (also after a crash between writing the drop record and deleting the files)
 * opens the same log.
 */
class WitnessDropStoreTest {

    private static final StoreConfig SMALL = SegmentedLogStoreTest.SMALL;

    @TempDir
    Path tmp;

    private Path dir;

    @BeforeEach
    void storeFolder() {
        dir = tmp.resolve("witness");
    }

    /** 300 entries over several 4 KiB files, a CONFIG entry at 40, NOOPs every 17, terms 1 then 2 from 150. */
    private static List<Entry> log() {
        List<Entry> out = new ArrayList<>(SegmentedLogStoreTest.entries(0, 150, 1));
        out.addAll(SegmentedLogStoreTest.entries(150, 150, 2));
        out.set(40, new Entry(40, 1, EntryType.CONFIG, new Membership(List.of("n1", "n2", "n3"))
            .withWitness("n3", true).encode()));
        return out;
    }

    private static long dataFiles(Path dir) throws IOException {
        return SegmentedLogStoreTest.files(dir.resolve("data")).size();
    }

    private void checkDropped(SegmentedLogStore s, List<Entry> written, long through) {
        assertEquals(0, s.firstIndex());
        assertEquals(written.size() - 1, s.lastIndex());
        List<Entry> read = s.entries(0, written.size(), Long.MAX_VALUE);
        for (Entry w : written) {
            Entry r = read.get((int) w.index());
            assertEquals(w.term(), s.term(w.index()), "term of " + w.index());
            if (w.index() <= through && w.type() == EntryType.NORMAL) {
                assertEquals(new Entry(w.index(), w.term(), EntryType.NORMAL, null), r, "dropped " + w.index());
                BodyDroppedException e = assertThrows(BodyDroppedException.class, () -> s.entryWithBody(w.index()));
                assertTrue(e.getMessage().contains("entry " + w.index()) && e.getMessage().contains(
                    "body dropped on witness"), e.getMessage());
            } else {
                assertEquals(w, r, "kept " + w.index());
                assertArrayEquals(w.data(), s.entryWithBody(w.index()).data());
            }
        }
        assertEquals(EntryType.CONFIG, s.info(40).type());
        assertNull(s.verify().problem(), s.verify().problem());
    }

    @Test
    void witnessDropsWholeDataFilesKeepsTermsAndRestarts() throws IOException {
        List<Entry> written = log();
        long through;
        long before;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(written);
            s.sync();
            before = dataFiles(dir);
            long indexFiles = SegmentedLogStoreTest.files(dir.resolve("index")).size();
            s.dropBodiesThrough(200);
            through = s.bodiesDroppedThrough();
            assertTrue(through > 100 && through <= 200, "whole files up to 200 dropped, through " + through);
            assertTrue(dataFiles(dir) < before - 3, "data files " + before + " -> " + dataFiles(dir));
            assertEquals(indexFiles, SegmentedLogStoreTest.files(dir.resolve("index")).size(), "index files stay");
            assertEquals(200, s.droppedBodiesThrough(), "reports what it was allowed");
            checkDropped(s, written, through);
            // Dropping less, or again, changes nothing; the file being written is never dropped.
            s.dropBodiesThrough(150);
            s.dropBodiesThrough(10_000);
            assertTrue(s.bodiesDroppedThrough() < 299 || dataFiles(dir) >= 1);
            assertThrows(IllegalArgumentException.class, () -> s.truncateSuffix(50));
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            long after = s.bodiesDroppedThrough();
            assertTrue(after >= through, "the drop survives a restart");
            checkDropped(s, written, after);
            // The log goes on after a restart.
            List<Entry> more = SegmentedLogStoreTest.entries(300, 20, 3);
            s.append(more);
            s.sync();
            assertEquals(more, s.entries(300, 320, Long.MAX_VALUE));
        }
    }

    @Test
    void aCrashBetweenTheDropRecordAndTheFileDeletionIsFinishedAtOpen() throws IOException {
        List<Entry> written = log();
        Path copy = Files.createDirectories(tmp.resolve("before-drop"));
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(written);
            s.sync();
            for (Path f : SegmentedLogStoreTest.files(dir.resolve("data"))) {
                Files.copy(f, copy.resolve(f.getFileName()));
            }
            s.dropBodiesThrough(200);
        }
        // The record is written, then the crash: no data file deleted yet.
        for (Path f : SegmentedLogStoreTest.files(copy)) {
            Files.copy(f, dir.resolve("data").resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        long all = dataFiles(dir);
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertTrue(dataFiles(dir) < all, "the open deletes the files the record says are gone");
            checkDropped(s, written, s.bodiesDroppedThrough());
            assertTrue(s.bodiesDroppedThrough() > 100);
        }
        // A crash before the record: nothing was dropped, every body is there.
        Files.delete(dir.resolve(SegmentedLogStore.DROPPED));
        Path fresh = tmp.resolve("no-record");
        Files.createDirectories(fresh.resolve("data"));
        Files.createDirectories(fresh.resolve("index"));
        for (Path f : SegmentedLogStoreTest.files(copy)) {
            Files.copy(f, fresh.resolve("data").resolve(f.getFileName()));
        }
        for (Path f : SegmentedLogStoreTest.files(dir.resolve("index"))) {
            Files.copy(f, fresh.resolve("index").resolve(f.getFileName()));
        }
        Files.copy(dir.resolve("crc-from"), fresh.resolve("crc-from"));
        try (SegmentedLogStore s = SegmentedLogStore.open(fresh, SMALL)) {
            assertEquals(-1, s.bodiesDroppedThrough());
            assertEquals(written, s.entries(0, 300, Long.MAX_VALUE));
        }
    }

    @Test
    void aStoreThatNeverDropsReadsAsBefore() {
        List<Entry> written = log();
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(written);
            s.sync();
            assertEquals(-1, s.droppedBodiesThrough());
            assertArrayEquals("entry-7-xxxxxxx".getBytes(StandardCharsets.UTF_8), s.entryWithBody(7).data());
            assertFalse(Files.exists(dir.resolve(SegmentedLogStore.DROPPED)));
        }
    }
}
