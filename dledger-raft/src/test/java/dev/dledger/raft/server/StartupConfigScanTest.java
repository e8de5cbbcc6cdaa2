package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.store.EntryFormat;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * At start a node finds the CONFIG entries of its log from the membership it recorded when they were appended, and
 * reads only the headers past the recorded point: the data files in between are never read. The proof: those files
 * are overwritten with garbage before the restart, which a start that reads every header refuses as corruption.
 */
class StartupConfigScanTest {

    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(4096, 32 * 256);
    private static final Membership ONE = Membership.of("n0");
    private static final Membership TWO = Membership.of("n0", "n1");
    private static final Membership THREE = Membership.of("n0", "n1", "n2");

    @TempDir
    Path base;

    private Path dir() {
        return base.resolve("dledger-n0");
    }

    private static Entry normal(long i) {
        return new Entry(i, 1, EntryType.NORMAL, ("entry-" + i + "-" + "x".repeat(80)).getBytes(StandardCharsets.UTF_8));
    }

    private static Entry config(long i, Membership m) {
        return new Entry(i, 1, EntryType.CONFIG, m.encode());
    }

    /** Entries lo..hi (inclusive): CONFIG where {@code configs} says, NORMAL elsewhere. */
    private static List<Entry> entries(long lo, long hi, Long twoAt, Long threeAt) {
        List<Entry> out = new ArrayList<>();
        for (long i = lo; i <= hi; i++) {
            if (i == 0) {
                out.add(config(i, ONE));
            } else if (twoAt != null && i == twoAt) {
                out.add(config(i, TWO));
            } else if (threeAt != null && i == threeAt) {
                out.add(config(i, THREE));
            } else {
                out.add(normal(i));
            }
        }
        return out;
    }

    private FileNodeStorage open() {
        return new FileNodeStorage(dir(), CONFIG, FlushMode.SYNC, 0);
    }

    private static void appendInBatches(FileNodeStorage s, List<Entry> all) {
        for (int from = 0; from < all.size(); from += 37) {
            s.append(all.subList(from, Math.min(all.size(), from + 37)));
        }
    }

    /**
     * Overwrites with garbage every data file except the first, the last four (recovery checks the last three that
     * hold records) and those that hold one of {@code keep}; returns how many were spoiled.
     */
    private int spoilMiddleFiles(long... keep) throws IOException {
        Set<Long> kept = new HashSet<>();
        List<Long> starts = new ArrayList<>();
        try (SegmentedLogStore log = SegmentedLogStore.open(dir(), CONFIG)) {
            for (SegmentedLogStore.DataFile f : log.dataFiles()) {
                starts.add(f.start());
            }
            for (long i : keep) {
                long pos = log.position(i);
                kept.add(pos - Math.floorMod(pos, (long) CONFIG.dataFileSizeBytes()));
            }
        }
        kept.add(starts.get(0));
        kept.addAll(starts.subList(Math.max(0, starts.size() - 4), starts.size()));
        byte[] junk = new byte[CONFIG.dataFileSizeBytes()];
        Arrays.fill(junk, (byte) 0x5A);
        int spoiled = 0;
        for (long start : starts) {
            if (kept.contains(start)) {
                continue;
            }
            Path file = dir().resolve("data").resolve(EntryFormat.fileName(start));
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(junk), 0);
            }
            spoiled++;
        }
        return spoiled;
    }

    private static List<Long> indexes(List<Entry> configs) {
        return configs.stream().map(Entry::index).collect(Collectors.toList());
    }

    @Test
    void startReadsOnlyTheHeadersPastTheRecordedMembership() throws Exception {
        try (FileNodeStorage s = open()) {
            appendInBatches(s, entries(0, 1500, 400L, 1000L));
        }
        assertTrue(spoilMiddleFiles(0, 400, 1000) > 20, "most of the log is garbage now");
        try (FileNodeStorage s = open()) {
            List<Entry> configs = s.configEntries();
            assertEquals(List.of(0L, 400L, 1000L), indexes(configs));
            assertEquals(THREE, Membership.decode(configs.get(2).data()));
            assertEquals(1500, s.log().lastIndex());
        }
    }

    @Test
    void aTruncatedConfigEntryFallsBackToThePreviousOne() throws Exception {
        try (FileNodeStorage s = open()) {
            appendInBatches(s, entries(0, 1200, 400L, 1000L));
            // A new leader cuts the uncommitted CONFIG entry at 1000 and what follows.
            s.truncateSuffix(1000);
            List<Entry> rest = new ArrayList<>();
            for (long i = 1000; i <= 1500; i++) {
                rest.add(normal(i));
            }
            appendInBatches(s, rest);
        }
        spoilMiddleFiles(0, 400);
        try (FileNodeStorage s = open()) {
            assertEquals(List.of(0L, 400L), indexes(s.configEntries()));
            assertEquals(TWO, Membership.decode(s.configEntries().get(1).data()));
        }
    }

    @Test
    void entriesAppendedByAnotherWriterAfterTheRecordedPointAreScanned() throws Exception {
        try (FileNodeStorage s = open()) {
            appendInBatches(s, entries(0, 1200, 400L, null));
        }
        // A tool (the migration tool, say) appends to the stopped node's log without going through the node storage.
        try (SegmentedLogStore log = SegmentedLogStore.open(dir(), CONFIG)) {
            List<Entry> more = new ArrayList<>();
            for (long i = 1201; i <= 1300; i++) {
                more.add(i == 1290 ? config(i, THREE) : normal(i));
            }
            log.append(more);
            log.sync();
        }
        spoilMiddleFiles(0, 400, 1290);
        try (FileNodeStorage s = open()) {
            assertEquals(List.of(0L, 400L, 1290L), indexes(s.configEntries()));
        }
    }

    @Test
    void aRecordedConfigEntryTheLogLostInACrashDoesNotCount() throws Exception {
        try (FileNodeStorage s = open()) {
            appendInBatches(s, entries(0, 1500, 400L, 1000L));
        }
        // The crash took the unsynced tail from 1000 on: the record still lists 1000 and covers 1500.
        try (SegmentedLogStore log = SegmentedLogStore.open(dir(), CONFIG)) {
            log.truncateSuffix(1000);
            log.sync();
        }
        spoilMiddleFiles(0, 400);
        try (FileNodeStorage s = open()) {
            assertEquals(List.of(0L, 400L), indexes(s.configEntries()));
            assertEquals(999, s.log().lastIndex());
        }
    }

    @Test
    void aStoreWrittenBeforeIsScannedOnceThenNoMore() throws Exception {
        // Written without the node storage, as by an older version: no membership recorded.
        try (SegmentedLogStore log = SegmentedLogStore.open(dir(), CONFIG)) {
            List<Entry> all = entries(0, 1500, 400L, 1000L);
            for (int from = 0; from < all.size(); from += 100) {
                log.append(all.subList(from, Math.min(all.size(), from + 100)));
            }
            log.sync();
        }
        try (FileNodeStorage s = open()) {
            assertEquals(List.of(0L, 400L, 1000L), indexes(s.configEntries()), "the first start scans the log");
        }
        spoilMiddleFiles(0, 400, 1000);
        try (FileNodeStorage s = open()) {
            assertEquals(List.of(0L, 400L, 1000L), indexes(s.configEntries()), "the second start does not");
        }
    }
}
