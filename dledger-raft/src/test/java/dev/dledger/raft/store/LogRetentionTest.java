package dev.dledger.raft.store;

import static dev.dledger.raft.store.SegmentedLogStoreTest.SMALL;
import static dev.dledger.raft.store.SegmentedLogStoreTest.entries;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.Membership;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LogRetentionTest {

    private static final Membership VOTERS = Membership.of("a", "b", "c");
    private static final List<Entry> WRITTEN = entries(0, 1000, 1);

    @TempDir
    Path dir;

    /** A fixed clock at ten past {@code hour}, UTC. */
    private static Clock at(int hour) {
        return Clock.fixed(Instant.parse(String.format("2030-05-01T%02d:10:00Z", hour)), ZoneOffset.UTC);
    }

    private static List<Path> files(Path folder) throws IOException {
        try (Stream<Path> s = Files.list(folder)) {
            return s.sorted().toList();
        }
    }

    /** Sets the last-modified time of the oldest {@code count} data files (all for -1) to {@code hoursBefore}. */
    private void age(Clock clock, int count, long hoursBefore) throws IOException {
        List<Path> data = files(dir.resolve("data"));
        for (int i = 0; i < data.size() && (count < 0 || i < count); i++) {
            Files.setLastModifiedTime(data.get(i), FileTime.from(clock.instant().minus(Duration.ofHours(hoursBefore))));
        }
    }

    private SegmentedLogStore written() {
        SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL);
        s.append(WRITTEN);
        s.sync();
        return s;
    }

    private static void assertReadableFromFirstIndex(SegmentedLogStore s) {
        long first = s.firstIndex();
        assertEquals(WRITTEN.subList((int) first, WRITTEN.size()), s.entries(first, s.lastIndex() + 1, Long.MAX_VALUE));
        assertEquals(null, s.verify().problem());
    }

    @Test
    void expiredFilesAreDeletedOnlyAtTheConfiguredHourAndOldestFirst() throws IOException {
        try (SegmentedLogStore s = written()) {
            int before = files(dir.resolve("data")).size();
            assertTrue(before > 20, "the log spans many files: " + before);
            age(at(4), -1, 1);
            age(at(4), 5, 100);
            List<Path> oldest = files(dir.resolve("data")).subList(0, 5);

            LogRetention.Result r = new LogRetention(RetentionPolicy.defaults(), at(3), f -> 0.1).run(s, 999, i -> VOTERS);
            assertEquals(0, r.deletedFiles(), "03:10 is not a deleteWhen hour");
            assertEquals(0, s.firstIndex());

            r = new LogRetention(RetentionPolicy.defaults(), at(4), f -> 0.1).run(s, 999, i -> VOTERS);
            assertEquals(5, r.deletedFiles(), "the five files older than 72 h, and no newer one");
            assertTrue(r.timeToDelete());
            assertEquals(before - 5, files(dir.resolve("data")).size());
            oldest.forEach(p -> assertTrue(Files.notExists(p), p + " is deleted"));
            assertTrue(s.firstIndex() > 0);
            assertEquals(s.firstIndex(), s.firstEntryIndex(s.dataFiles().get(0).start()),
                "the log starts with the first entry of the oldest file kept");
            assertEquals(s.firstIndex() - 1, s.snapshot().index());
            assertEquals(VOTERS, s.snapshot().membership());
            assertReadableFromFirstIndex(s);

            r = new LogRetention(RetentionPolicy.defaults(), at(4), f -> 0.1).run(s, 999, i -> VOTERS);
            assertEquals(0, r.deletedFiles(), "the rest is younger than 72 h");
        }
    }

    @Test
    void noFileGoesWhereTheNodeKnowsNoConfiguration() throws IOException {
        // A node added to the group knows no configuration before the first configuration entry it received (here at
        // 500): a compaction there would record an empty membership. The files wait until a cut past that entry.
        try (SegmentedLogStore s = written()) {
            age(at(4), -1, 1);
            age(at(4), 5, 100);
            LogRetention retention = new LogRetention(RetentionPolicy.defaults(), at(4), f -> 0.1);
            assertEquals(0, retention.run(s, 999, i -> i < 500 ? Membership.EMPTY : VOTERS).deletedFiles());
            assertEquals(0, s.firstIndex());
            assertEquals(5, retention.run(s, 999, i -> VOTERS).deletedFiles(), "the same files, configuration known");
            assertEquals(VOTERS, s.snapshot().membership());
        }
    }

    @Test
    void filesAreNeverDeletedPastTheSafeIndexNorTheNewestOne() throws IOException {
        try (SegmentedLogStore s = written()) {
            age(at(4), -1, 1000);
            LogRetention retention = new LogRetention(RetentionPolicy.defaults().withDeleteWhen("1;4;23"), at(4),
                f -> 0.1);
            assertEquals(0, retention.run(s, -1, i -> VOTERS).deletedFiles(), "nothing is safe to delete yet");
            int runs = 0;
            while (retention.run(s, 400, i -> VOTERS).deletedFiles() > 0) {
                runs++;
                assertTrue(s.firstIndex() <= 401, "entry 401 is not safe to delete; the log starts at " + s.firstIndex());
            }
            assertTrue(runs >= 1);
            assertTrue(s.firstIndex() > 300, "everything up to the file holding entry 401 went: " + s.firstIndex());
            long position401 = s.position(401);
            assertTrue(s.dataFiles().get(0).start() <= position401 && position401 < s.dataFiles().get(0).start() + 4096,
                "the oldest file kept holds entry 401");
            assertReadableFromFirstIndex(s);

            int deleted;
            do {
                deleted = retention.run(s, 999, i -> VOTERS).deletedFiles();
                assertTrue(deleted <= LogRetention.MAX_FILES_PER_RUN);
            } while (deleted > 0);
            assertEquals(1, files(dir.resolve("data")).size(), "the newest file always stays");
            assertEquals(999, s.lastIndex());
            assertReadableFromFirstIndex(s);
        }
    }

    @Test
    void diskUseAboveTheForceRatioDeletesFilesThatHaveNotExpired() throws IOException {
        try (SegmentedLogStore s = written()) {
            age(at(10), -1, 1);
            int before = files(dir.resolve("data")).size();
            RetentionPolicy policy = RetentionPolicy.defaults();
            assertEquals(0, new LogRetention(policy, at(10), f -> 0.60).run(s, 999, i -> VOTERS).deletedFiles());
            assertEquals(0, new LogRetention(policy, at(10), f -> 0.75).run(s, 999, i -> VOTERS).deletedFiles(),
                "above the check ratio only expired files go, and none has expired");
            RetentionPolicy noForce = new RetentionPolicy(72, "04", 0.70, 0.85, false);
            assertEquals(0, new LogRetention(noForce, at(10), f -> 0.95).run(s, 999, i -> VOTERS).deletedFiles(),
                "forced cleaning is off");

            LogRetention.Result r = new LogRetention(policy, at(10), f -> f.equals(dir) ? 0.9 : 0.1)
                .run(s, 999, i -> VOTERS);
            assertTrue(r.forced());
            assertEquals(LogRetention.MAX_FILES_PER_RUN, r.deletedFiles());
            assertEquals(before - LogRetention.MAX_FILES_PER_RUN, files(dir.resolve("data")).size());
            assertReadableFromFirstIndex(s);
        }
    }

    @Test
    void expiredFilesGoAtAnyHourAboveTheCheckRatio() throws IOException {
        try (SegmentedLogStore s = written()) {
            age(at(10), -1, 1);
            age(at(10), 3, 100);
            assertEquals(3, new LogRetention(RetentionPolicy.defaults(), at(10), f -> 0.75).run(s, 999, i -> VOTERS)
                .deletedFiles());
        }
    }

    @Test
    void storeReopensWithTheDeletedPrefixAndGoesOn() throws IOException {
        long first;
        try (SegmentedLogStore s = written()) {
            age(at(4), 8, 100);
            new LogRetention(RetentionPolicy.defaults(), at(4), f -> 0.1).run(s, 999, i -> VOTERS);
            first = s.firstIndex();
            assertTrue(first > 0);
        }
        List<Path> indexFiles = files(dir.resolve("index"));
        assertTrue(Long.parseLong(indexFiles.get(0).getFileName().toString()) > 0,
            "index files wholly below the first index are deleted too");
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(first, s.firstIndex());
            assertEquals(999, s.lastIndex());
            assertEquals(VOTERS, s.snapshot().membership());
            assertEquals(1, s.term(first - 1), "the term at the cut is known");
            assertEquals(-1, s.term(first - 2));
            assertReadableFromFirstIndex(s);
            s.append(entries(1000, 50, 2));
            s.sync();
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            assertEquals(first, s.firstIndex());
            assertEquals(1049, s.lastIndex());
            assertEquals(entries(1000, 50, 2), s.entries(1000, 1050, Long.MAX_VALUE));
        }
    }

    @Test
    void theOwnersGuardBoundsDeletionByPositionAndHearsBeforeAndAfter() throws IOException {
        try (SegmentedLogStore s = written()) {
            age(at(4), -1, 1000);
            List<SegmentedLogStore.DataFile> data = s.dataFiles();
            long bound = data.get(4).start();
            List<String> heard = new ArrayList<>();
            LogRetention retention = new LogRetention(RetentionPolicy.defaults(), at(4), f -> 0.1,
                new LogRetention.Guard() {
                    @Override
                    public long safePosition() {
                        return bound;
                    }

                    @Override
                    public void beforeDelete(long firstIndex, long firstPosition) {
                        heard.add("before " + firstIndex + "@" + firstPosition + ", oldest still there: "
                            + Files.exists(data.get(0).path()));
                    }

                    @Override
                    public void deleted(int files, long firstIndex, long firstPosition) {
                        heard.add("deleted " + files + ", " + firstIndex + "@" + firstPosition + ", oldest still there: "
                            + Files.exists(data.get(0).path()));
                    }
                });
            assertEquals(4, retention.run(s, 999, i -> VOTERS).deletedFiles(),
                "the files that end at or before the owner's safe position, and no more");
            long first = s.firstIndex();
            assertEquals(bound, s.position(first));
            assertEquals(List.of("before " + first + "@" + bound + ", oldest still there: true",
                "deleted 4, " + first + "@" + bound + ", oldest still there: false"), heard);
            assertEquals(0, retention.run(s, 999, i -> VOTERS).deletedFiles(), "the bound holds on the next run");
            assertEquals(4, retention.deletedFiles());
        }
    }

    @Test
    void aForcedRunDeletesFilesThatHaveNotExpiredAtAnyHourOnce() throws IOException {
        try (SegmentedLogStore s = written()) {
            age(at(10), -1, 1);
            LogRetention retention = new LogRetention(RetentionPolicy.defaults(), at(10), f -> 0.1);
            assertEquals(0, retention.run(s, 999, i -> VOTERS).deletedFiles(), "nothing expired, not the hour");
            retention.forceNextRun();
            LogRetention.Result r = retention.run(s, 999, i -> VOTERS);
            assertTrue(r.forced());
            assertEquals(LogRetention.MAX_FILES_PER_RUN, r.deletedFiles());
            assertEquals(0, retention.run(s, 999, i -> VOTERS).deletedFiles(), "one run only");
            assertReadableFromFirstIndex(s);
        }
    }

    @Test
    void aNewPolicyAppliesFromTheNextRun() throws IOException {
        try (SegmentedLogStore s = written()) {
            age(at(4), -1, 1);
            age(at(4), 3, 10);
            LogRetention retention = new LogRetention(RetentionPolicy.defaults(), at(4), f -> 0.1);
            assertEquals(0, retention.run(s, 999, i -> VOTERS).deletedFiles(), "72 h: nothing expired");
            retention.policy(RetentionPolicy.defaults().withFileReservedHours(5));
            assertEquals(5, retention.policy().fileReservedHours());
            assertEquals(3, retention.run(s, 999, i -> VOTERS).deletedFiles(), "5 h: the three 10-hour-old files");
            assertEquals(3, retention.deletedFiles());
        }
    }

    @Test
    void badPolicyValuesAreRefusedNamingTheValue() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> RetentionPolicy.defaults().withDeleteWhen("04;25"));
        assertTrue(e.getMessage().contains("\"25\" is not an hour"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RetentionPolicy.defaults().withDiskSpaceRatios(0.7, 1.5));
        assertTrue(e.getMessage().contains("diskSpaceRatioToForceClean"), e.getMessage());
        assertEquals(3_600_000L, RetentionPolicy.defaults().withFileReservedHours(0).reservedMillis(),
            "at least one hour, as DLedger");
    }
}
