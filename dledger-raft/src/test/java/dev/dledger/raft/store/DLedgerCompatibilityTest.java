package dev.dledger.raft.store;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import io.openmessaging.storage.dledger.DLedgerConfig;
import io.openmessaging.storage.dledger.DLedgerServer;
import io.openmessaging.storage.dledger.MemberState;
import io.openmessaging.storage.dledger.client.DLedgerClient;
import io.openmessaging.storage.dledger.entry.DLedgerEntry;
import io.openmessaging.storage.dledger.protocol.AppendEntryResponse;
import java.io.IOException;
import java.net.ServerSocket;
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

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private DLedgerServer startStock(String peers) {
        DLedgerConfig c = new DLedgerConfig();
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
    void storeWrittenByOursReadsBackWithStockDLedger() throws Exception {
        Path dir = base.resolve("dledger-n0");
        List<Entry> written = new ArrayList<>();
        long[] positions;
        try (SegmentedLogStore ours = SegmentedLogStore.open(dir, CONFIG)) {
            // Application entries only: stock 0.3.3.4's recovery accepts data magic 1 with a non-empty body and
            // nothing else (not even its own NOOPs), so NOOP and CONFIG entries are outside what it can read back.
            for (int i = 0; i < 600; i++) {
                written.add(new Entry(i, 1, EntryType.NORMAL, body(i)));
            }
            positions = ours.append(written);
            ours.sync();
        }
        new MetaFiles(dir).writeHardState(new dev.dledger.raft.core.HardState(1, "n0"));
        DLedgerServer server = startStock("n0-localhost:" + freePort());
        try {
            assertTrue(server.getDLedgerStore().getLedgerEndIndex() >= 599);
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
