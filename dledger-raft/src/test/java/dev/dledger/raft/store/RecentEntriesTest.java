package dev.dledger.raft.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.RequestId;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RecentEntriesTest {

    private static Entry entry(long index, int bytes) {
        return new Entry(index, 1, EntryType.NORMAL, new byte[bytes]);
    }

    @Test
    void keepsTheNewestEntriesAcrossManyWrapsOfTheRing() {
        RecentEntries r = new RecentEntries(8, Long.MAX_VALUE);
        List<Entry> all = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            all.add(entry(i, 10));
            r.add(all.get(i));
            for (int j = Math.max(0, i - 7); j <= i; j++) {
                assertSame(all.get(j), r.get(j), "entry " + j + " after adding " + i);
            }
            assertNull(r.get(i - 8));
            assertNull(r.get(i + 1));
        }
    }

    @Test
    void dropsTheOldestOnceOverTheByteBoundButKeepsTheNewest() {
        // Each entry costs 100 + 48 header bytes.
        RecentEntries r = new RecentEntries(16, 300);
        Entry a = entry(0, 100);
        Entry b = entry(1, 100);
        Entry c = entry(2, 100);
        r.add(a);
        r.add(b);
        r.add(c);
        assertNull(r.get(0));
        assertSame(b, r.get(1));
        assertSame(c, r.get(2));
        Entry big = entry(3, 1000);
        r.add(big);
        assertNull(r.get(2));
        assertSame(big, r.get(3));
    }

    @Test
    void truncationForgetsTheSuffixAndAGapForgetsAll() {
        RecentEntries r = new RecentEntries(8, Long.MAX_VALUE);
        for (int i = 0; i < 6; i++) {
            r.add(entry(i, 1));
        }
        r.truncateFrom(4);
        assertNull(r.get(4));
        assertNull(r.get(5));
        Entry replacement = entry(4, 2);
        r.add(replacement);
        assertSame(replacement, r.get(4));
        r.dropBelow(2);
        assertNull(r.get(1));
        Entry afterGap = entry(10, 1);
        r.add(afterGap);
        assertNull(r.get(3));
        assertNull(r.get(4));
        assertSame(afterGap, r.get(10));
    }

    @Test
    void aStoreServesTheNewestEntriesAsItWouldReadThemFromItsFiles(@TempDir Path dir) {
        List<Entry> written = List.of(
            new Entry(0, 1, EntryType.NOOP, new byte[0]),
            new Entry(1, 1, EntryType.NOOP, new byte[] {0}),
            new Entry(2, 1, EntryType.CONFIG, Membership.of("n0", "n1").encode()),
            new Entry(3, 1, EntryType.NORMAL, new byte[] {1, 2, 3}, new RequestId(7, 9)),
            new Entry(4, 2, EntryType.NORMAL, new byte[0]));
        List<Entry> held;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, StoreConfig.defaults())) {
            s.append(written);
            held = s.entries(0, 5, Long.MAX_VALUE);
        }
        List<Entry> read;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, StoreConfig.defaults())) {
            read = s.entries(0, 5, Long.MAX_VALUE);
        }
        assertEquals(read.size(), held.size());
        for (int i = 0; i < read.size(); i++) {
            Entry a = held.get(i);
            Entry b = read.get(i);
            assertEquals(b.index(), a.index());
            assertEquals(b.term(), a.term());
            assertEquals(b.type(), a.type());
            assertEquals(b.requestId(), a.requestId());
            assertArrayEquals(b.data(), a.data(), "payload of entry " + i);
        }
    }

    @Test
    void aStoreWithTheLeanCachesReadsEveryEntryAndTermBackFromItsFiles(@TempDir Path dir) {
        int n = 3 * StoreConfig.MIN_TERM_CACHE;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, StoreConfig.lean().withFileSizes(64 << 10, 32 << 10))) {
            for (int i = 0; i < n; i++) {
                s.append(List.of(new Entry(i, 1 + i / 100, EntryType.NORMAL, new byte[] {(byte) i, (byte) (i >> 8)})));
            }
            for (int i = 0; i < n; i++) {
                assertEquals(1 + i / 100, s.term(i), "term of " + i);
                Entry e = s.entries(i, i + 1, Long.MAX_VALUE).get(0);
                assertEquals(i, e.index());
                assertArrayEquals(new byte[] {(byte) i, (byte) (i >> 8)}, e.data(), "payload of entry " + i);
            }
        }
    }
}
