package dev.dledger.raft.store;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.testing.FreePorts;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import io.openmessaging.storage.dledger.DLedgerConfig;
import io.openmessaging.storage.dledger.DLedgerServer;
import io.openmessaging.storage.dledger.MemberState;
import io.openmessaging.storage.dledger.client.DLedgerClient;
import io.openmessaging.storage.dledger.entry.DLedgerEntry;
import io.openmessaging.storage.dledger.protocol.AppendEntryResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Stores written by openmessaging DLedger 0.3.3.4 open with ours, and the other way round, byte for byte. */
class DLedgerCompatibilityTest {

    private static final int DATA_FILE = 64 * 1024;
    private static final int INDEX_FILE = 32 * 1024;
    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(DATA_FILE, INDEX_FILE);

    @TempDir
    Path base;

    private static int freePort() {
        return FreePorts.take(1)[0];
    }

    private DLedgerServer startStock(String peers) {
        return startStock(peers, null);
    }

    /** Starts stock DLedger as the single node n0; {@code dataStorePath} null means the default folder. */
    private DLedgerServer startStock(String peers, String dataStorePath) {
        DLedgerConfig c = new DLedgerConfig();
        if (dataStorePath != null) {
            c.setDataStorePath(dataStorePath);
        }
        c.setGroup("compat");
        c.setSelfId("n0");
        c.setPeers(peers);
        c.setStoreBaseDir(base.toString());
        c.setStoreType(DLedgerConfig.FILE);
        c.setMappedFileSizeForEntryData(DATA_FILE);
        c.setMappedFileSizeForEntryIndex(INDEX_FILE);
        c.setEnableDiskForceClean(false);
        DLedgerServer server = new DLedgerServer(c);
        server.startup();
        await().atMost(Duration.ofSeconds(20))
            .until(() -> server.getMemberState().getRole() == MemberState.Role.LEADER);
        return server;
    }

    private static byte[] body(int i) {
        return ("message-" + i + "-" + "y".repeat(i % 300)).getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void storeWrittenByStockDLedgerReadsBackWithOurs() throws Exception {
        String peers = "n0-localhost:" + freePort();
        DLedgerServer server = startStock(peers);
        List<Long> positions = new ArrayList<>();
        DLedgerClient client = new DLedgerClient("compat", peers);
        client.startup();
        try {
            for (int i = 0; i < 600; i++) {
                AppendEntryResponse r = client.append(body(i));
                assertEquals(200, r.getCode(), "stock append " + i);
                assertEquals(i, r.getIndex());
                positions.add(r.getPos());
            }
        } finally {
            client.shutdown();
            server.shutdown();
        }
        Path dir = base.resolve("dledger-n0");
        assertEquals(599, new MetaFiles(dir).readCommitCheckpoint(), "stock's checkpoint gives the commit index");
        try (SegmentedLogStore ours = SegmentedLogStore.open(dir, CONFIG)) {
            assertEquals(0, ours.firstIndex());
            assertEquals(599, ours.lastIndex());
            assertEquals(600, ours.crcFrom(), "the stock range carries no CRCs; ours starts after it");
            List<Entry> read = ours.entries(0, 600, Long.MAX_VALUE);
            for (int i = 0; i < 600; i++) {
                assertArrayEquals(body(i), read.get(i).data(), "entry " + i);
                assertEquals(positions.get(i), ours.position(i), "pos of entry " + i);
            }
            assertTrue(ours.writePosition() > DATA_FILE, "the data spans several files");
            SegmentedLogStore.VerifyReport report = ours.verify();
            assertEquals(null, report.problem());
            assertEquals(600, report.entries());
            assertEquals(600, report.stockQuirks(), "every stock entry lacks CRCs");
            // Appending continues the stock log with our CRCs.
            ours.append(List.of(new Entry(600, read.get(599).term(), EntryType.NORMAL, body(600))));
            ours.sync();
        }
        try (SegmentedLogStore again = SegmentedLogStore.open(dir, CONFIG)) {
            assertEquals(600, again.lastIndex());
            assertArrayEquals(body(600), again.entries(600, 601, Long.MAX_VALUE).get(0).data());
        }
    }

    @Test
    void multiPathStoreWrittenByStockDLedgerReadsBackWithOurs() throws Exception {
        Path a = base.resolve("disk-a");
        Path b = base.resolve("disk-b");
        String peers = "n0-localhost:" + freePort();
        DLedgerServer server = startStock(peers, a + StoreConfig.PATH_SEPARATOR + b);
        List<Long> positions = new ArrayList<>();
        DLedgerClient client = new DLedgerClient("compat", peers);
        client.startup();
        try {
            for (int i = 0; i < 900; i++) {
                AppendEntryResponse r = client.append(body(i));
                assertEquals(200, r.getCode(), "stock append " + i);
                positions.add(r.getPos());
            }
        } finally {
            client.shutdown();
            server.shutdown();
        }
        List<Path> inA = SegmentedLogStoreTest.files(a);
        List<Path> inB = SegmentedLogStoreTest.files(b);
        assertTrue(!inA.isEmpty() && !inB.isEmpty(), "stock DLedger spread its data files over both folders: " + inA
            + " " + inB);
        Path dir = base.resolve("dledger-n0");
        StoreConfig multi = CONFIG.withDataStorePaths(StoreConfig.splitPaths(a + "," + b));
        try (SegmentedLogStore ours = SegmentedLogStore.open(dir, multi)) {
            assertEquals(899, ours.lastIndex());
            List<Entry> read = ours.entries(0, 900, Long.MAX_VALUE);
            for (int i = 0; i < 900; i++) {
                assertArrayEquals(body(i), read.get(i).data(), "entry " + i);
                assertEquals(positions.get(i), ours.position(i), "pos of entry " + i);
            }
            assertEquals(null, ours.verify().problem());
            // Our new files follow stock's rotation: sorted folders, file number modulo their count.
            long[] pos = ours.append(List.of(new Entry(900, read.get(899).term(), EntryType.NORMAL,
                new byte[DATA_FILE / 2]), new Entry(901, read.get(899).term(), EntryType.NORMAL, new byte[DATA_FILE / 2])));
            ours.sync();
            for (long p : pos) {
                long start = p - p % DATA_FILE;
                Path expected = (start / DATA_FILE % 2 == 0 ? a : b).resolve(EntryFormat.fileName(start));
                assertTrue(java.nio.file.Files.exists(expected), expected + " holds position " + p);
            }
        }
    }

    @Test
    void noopAndConfigEntriesWrittenByOursOpenWithStockDLedger() throws Exception {
        Path dir = base.resolve("dledger-n0");
        List<Entry> written = new ArrayList<>();
        try (SegmentedLogStore ours = SegmentedLogStore.open(dir, CONFIG)) {
            for (int i = 0; i < 600; i++) {
                EntryType type = i % 50 == 0 ? EntryType.NOOP : i % 50 == 25 ? EntryType.CONFIG : EntryType.NORMAL;
                byte[] data = type == EntryType.NOOP ? null
                    : type == EntryType.CONFIG ? dev.dledger.raft.core.Membership.of("n0", "n" + i).encode() : body(i);
                written.add(new Entry(i, 1 + i / 200, type, data));
            }
            ours.append(written);
            ours.sync();
        }
        new MetaFiles(dir).writeHardState(new dev.dledger.raft.core.HardState(3, "n0"));
        DLedgerServer server = startStock("n0-localhost:" + freePort());
        try {
            assertTrue(server.getDLedgerStore().getLedgerEndIndex() >= 599,
                "stock recovery keeps every entry: " + server.getDLedgerStore().getLedgerEndIndex());
            for (int i = 0; i < 600; i++) {
                DLedgerEntry e = server.getDLedgerStore().get((long) i);
                Entry w = written.get(i);
                assertEquals(i, e.getIndex());
                assertEquals(w.term(), e.getTerm());
                assertEquals(1, e.getMagic(), "entry " + i);
                assertEquals(EntryFormat.typeCode(w.type()), e.getChannel() & EntryFormat.TYPE_MASK, "entry " + i);
                assertArrayEquals(w.type() == EntryType.NOOP ? new byte[] {0} : w.data(), e.getBody(), "entry " + i);
            }
        } finally {
            server.shutdown();
        }
        try (SegmentedLogStore again = SegmentedLogStore.open(dir, CONFIG)) {
            assertEquals(written, again.entries(0, 600, Long.MAX_VALUE), "types and payloads survive stock's restart");
            SegmentedLogStore.VerifyReport r = again.verify();
            assertEquals(null, r.problem());
            assertEquals(12L, r.types().get(EntryType.NOOP));
            assertEquals(12L, r.types().get(EntryType.CONFIG));
        }
    }

    @Test
    void storeWrittenByOursReadsBackWithStockDLedger() throws Exception {
        Path dir = base.resolve("dledger-n0");
        List<Entry> written = new ArrayList<>();
        long[] positions;
        try (SegmentedLogStore ours = SegmentedLogStore.open(dir, CONFIG)) {
            for (int i = 0; i < 600; i++) {
                written.add(new Entry(i, 1, EntryType.NORMAL, body(i)));
            }
            positions = ours.append(written);
            ours.sync();
        }
        new MetaFiles(dir).writeHardState(new dev.dledger.raft.core.HardState(1, "n0"));
        new MetaFiles(dir).writeCommitCheckpoint(599);
        DLedgerServer server = startStock("n0-localhost:" + freePort());
        try {
            assertTrue(server.getDLedgerStore().getLedgerEndIndex() >= 599);
            assertEquals(599, server.getDLedgerStore().getCommittedIndex(), "stock reads our checkpoint");
            for (int i = 0; i < 600; i++) {
                DLedgerEntry e = server.getDLedgerStore().get((long) i);
                assertEquals(i, e.getIndex());
                assertEquals(positions[i], e.getPos());
                assertEquals(1, e.getMagic());
                assertArrayEquals(written.get(i).data(), e.getBody(), "entry " + i);
            }
        } finally {
            server.shutdown();
        }
    }
}
