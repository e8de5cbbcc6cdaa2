package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The checker of the broker fault runs must see what it is there to see: logs that differ, queue slots taken twice. */
@Tag("in-process")
class ReplicaLogsTest {

    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(1 << 20, 32 * 1024);

    @TempDir
    Path tmp;

    @Test
    void identicalCommittedPrefixesAgreeWhateverLiesBeyondTheCommitIndex() throws Exception {
        write("a", entries(10, 1, null));
        write("b", entries(10, 1, null));
        // An uncommitted tail of another term past the commit index does not count.
        List<Entry> c = entries(8, 1, null);
        c.add(new Entry(8, 2, EntryType.NORMAL, "other".getBytes(StandardCharsets.UTF_8)));
        write("c", c);
        try (ReplicaLogs logs = open()) {
            ReplicaLogs.Comparison r = logs.compare(new long[] {9, 9, 7});
            assertEquals(0, r.divergentEntries(), r.problems().toString());
            assertEquals(10 + 8, r.comparedEntries());
        }
    }

    @Test
    void aCommittedEntryThatDiffersOrIsMissingIsDivergent() throws Exception {
        write("a", entries(10, 1, null));
        write("b", entries(10, 1, 4));
        write("c", entries(6, 1, null));
        try (ReplicaLogs logs = open()) {
            // b differs at index 4; c claims commit index 9 but holds only up to 5.
            ReplicaLogs.Comparison r = logs.compare(new long[] {9, 9, 9});
            assertEquals(1 + 4, r.divergentEntries(), r.problems().toString());
            assertTrue(r.problems().stream().anyMatch(p -> p.startsWith("entry 4 of n1 differs")), r.problems().toString());
        }
    }

    @Test
    void theLogsAreOpenedWithoutWritingToThem() throws Exception {
        write("a", entries(5, 1, null));
        write("b", entries(5, 1, null));
        write("c", entries(5, 1, null));
        Map<Path, byte[]> before = contents();
        try (ReplicaLogs logs = open()) {
            assertEquals(4, logs.lastIndex(0));
        }
        Map<Path, byte[]> after = contents();
        assertEquals(before.keySet(), after.keySet());
        before.forEach((p, bytes) -> assertTrue(Arrays.equals(bytes, after.get(p)), p + " changed"));
        // A folder without a log cannot be opened read-only, and no store is created there.
        assertThrows(IllegalStateException.class, () -> ReplicaLogs.openReadOnly(List.of(tmp.resolve("none"))));
        assertTrue(Files.notExists(tmp.resolve("none")));
    }

    @Test
    void aQueueOffsetHeldByTwoMessagesIsAConflictAndAnOffsetHeldByNoneAGap() {
        Map<String, List<ReplicaLogs.Copy>> log = Map.of(
            "k1", List.of(new ReplicaLogs.Copy(1, 100, 0, 0, "id1")),
            "k2", List.of(new ReplicaLogs.Copy(2, 200, 0, 1, "id2"), new ReplicaLogs.Copy(3, 300, 0, 1, "id3")),
            "k3", List.of(new ReplicaLogs.Copy(4, 400, 1, 5, "id4")),
            "k4", List.of(new ReplicaLogs.Copy(5, 500, 1, 7, "id5")));
        ReplicaLogs.QueueCheck q = ReplicaLogs.checkQueueOffsets(log);
        assertEquals(1, q.conflicts(), q.examples().toString());
        assertEquals(1, q.gaps());
    }

    private ReplicaLogs open() {
        return ReplicaLogs.openReadOnly(List.of(tmp.resolve("a"), tmp.resolve("b"), tmp.resolve("c")));
    }

    /** {@code count} NORMAL entries of {@code term}; the one at {@code changed} (if any) has other bytes. */
    private static List<Entry> entries(int count, long term, Integer changed) {
        List<Entry> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            // The changed entry has as many bytes, so only its bytes differ, not the positions after it.
            String body = (changed != null && changed == i ? "ENTRY-" : "entry-") + i;
            out.add(new Entry(i, term, EntryType.NORMAL, body.getBytes(StandardCharsets.UTF_8)));
        }
        return out;
    }

    private void write(String name, List<Entry> entries) {
        try (SegmentedLogStore s = SegmentedLogStore.open(tmp.resolve(name), CONFIG)) {
            s.append(entries);
            s.sync();
        }
    }

    private Map<Path, byte[]> contents() throws Exception {
        Map<Path, byte[]> out = new TreeMap<>();
        try (Stream<Path> files = Files.walk(tmp)) {
            for (Path p : files.filter(Files::isRegularFile).toList()) {
                out.put(p, Files.readAllBytes(p));
            }
        }
        return out;
    }
}
