package dev.dledger.migration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.store.MetaFiles;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.apache.rocketmq.common.UtilAll;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code export} on Raft logs written here entry by entry: it stops at the commit index, makes the export durable
 * before it says "verified", gives an empty stock store for a log without messages, leaves the target as it was on a
 * failure (naming the entry and the log), and lists each source queue folder once.
 */
class ExporterTest {

    private static final String TOPIC = "Orders";
    private static final int QUEUES = 2;

    @TempDir
    Path dir;

    /** A message as the stock broker stores it (v1, IPv4 hosts, no properties) with the given offsets. */
    private static byte[] message(int queueId, long queueOffset, long phyOffset, int i) {
        byte[] body = ("message-" + i).getBytes(StandardCharsets.UTF_8);
        byte[] t = TOPIC.getBytes(StandardCharsets.UTF_8);
        int size = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + body.length + 1 + t.length + 2;
        ByteBuffer b = ByteBuffer.allocate(size);
        long ts = 1_700_000_000_000L + i;
        b.putInt(size).putInt(MessageDecoder.MESSAGE_MAGIC_CODE).putInt(UtilAll.crc32(body)).putInt(queueId)
            .putInt(0).putLong(queueOffset).putLong(phyOffset).putInt(0)
            .putLong(ts).put(new byte[] {127, 0, 0, 1}).putInt(40000)
            .putLong(ts).put(new byte[] {127, 0, 0, 1}).putInt(10911)
            .putInt(0).putLong(0).putInt(body.length).put(body).put((byte) t.length).put(t).putShort((short) 0);
        return b.array();
    }

    /**
     * Writes the Raft log of node n0 under {@code root}: entry i holds {@code entries.get(i)}; records {@code commitIndex}
     * in its checkpoint unless negative.
     */
    private static Path raftStore(Path root, List<byte[]> entries, long commitIndex) {
        Path node = root.resolve("dledger-n0");
        StoreConfig cfg = StoreConfig.defaults().withFileSizes(1 << 20, 1 << 20);
        try (SegmentedLogStore log = SegmentedLogStore.open(node, cfg)) {
            List<Entry> batch = new ArrayList<>();
            for (int i = 0; i < entries.size(); i++) {
                batch.add(new Entry(i, 1, EntryType.NORMAL, entries.get(i)));
            }
            if (!batch.isEmpty()) {
                log.append(batch);
            }
            log.sync();
        }
        if (commitIndex >= 0) {
            new MetaFiles(node).writeCommitCheckpoint(commitIndex);
        }
        return root;
    }

    /** {@code n} messages round-robin over the queues, as a broker wrote them. */
    private static List<byte[]> messages(int n) {
        List<byte[]> out = new ArrayList<>();
        long phy = 0;
        for (int i = 0; i < n; i++) {
            byte[] m = message(i % QUEUES, i / QUEUES, phy, i);
            phy += m.length;
            out.add(m);
        }
        return out;
    }

    private static long exportedMessages(Path store) {
        try (ClassicStore s = ClassicStore.open(store)) {
            return s.scan().messages();
        }
    }

    private record Run(int code, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = MigrateCommand.run(new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8), args);
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void exportStopsAtTheCommitIndex() {
        Path from = raftStore(dir.resolve("raft"), messages(10), 6);
        Path to = dir.resolve("back");
        Run r = run("export", "--from", from.toString(), "--self-id", "n0", "--to", to.toString(), "--file-size",
            "4096", "--index-hash-slots", "100", "--index-max-items", "400");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("export: 7 messages"), r.out());
        assertTrue(r.out().contains("3 entries after the commit index 6"), r.out());
        assertTrue(r.out().contains("export verified: 7 messages"), r.out());
        assertEquals(7, exportedMessages(to));
    }

    @Test
    void exportIsDurableBeforeItSaysVerified() throws IOException {
        Path from = raftStore(dir.resolve("raft"), messages(40), 39);
        Path to = dir.resolve("back");
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);
        Set<Path> synced = new TreeSet<>();
        List<String> late = new ArrayList<>();
        Exporter.Sync recording = p -> {
            if (buf.toString(StandardCharsets.UTF_8).contains("verified")) {
                late.add(p.toString());
            }
            synced.add(p);
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(p)) {
                ch.force(true);
            }
        };
        assertEquals(40, new Exporter(from, to, "n0", 2048, 100, 400, out, recording).run());
        assertTrue(buf.toString(StandardCharsets.UTF_8).contains("export verified: 40 messages"), buf.toString());
        assertEquals(List.of(), late, "synced after 'verified' was printed");
        Path stage = to.resolve(Exporter.STAGE);
        List<Path> notSynced = new ArrayList<>();
        try (Stream<Path> s = Files.walk(to)) {
            for (Path p : s.toList()) {
                // Synced where it was written (the stage folder) or where it lies now (the renames' folders).
                if (!synced.contains(p) && !synced.contains(stage.resolve(to.relativize(p).toString()))) {
                    notSynced.add(p);
                }
            }
        }
        assertEquals(List.of(), notSynced);
        assertTrue(synced.contains(to), "the target folder holds the renames: " + synced);
        assertTrue(Files.list(to.resolve("commitlog")).count() > 1, "several CommitLog files");
    }

    @Test
    void emptyLogGivesAnEmptyStockStore() {
        Path from = raftStore(dir.resolve("raft"), List.of(), -1);
        Path to = dir.resolve("back");
        Run r = run("export", "--from", from.toString(), "--self-id", "n0", "--to", to.toString(),
            "--index-hash-slots", "100", "--index-max-items", "400");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("export verified: 0 messages"), r.out());
        assertTrue(Files.isDirectory(to.resolve("commitlog")));
        assertTrue(ClassicStore.dataFiles(to.resolve("commitlog")).isEmpty());
        assertFalse(Files.exists(to.resolve(Exporter.STAGE)));
    }

    @Test
    void failureLeavesTheTargetAsItWasAndNamesTheEntry() throws IOException {
        List<byte[]> entries = messages(6);
        entries.set(3, "not a message at all".getBytes(StandardCharsets.UTF_8));
        Path from = raftStore(dir.resolve("raft"), entries, 5);
        Path to = dir.resolve("back");
        Files.createDirectories(to.resolve("config"));
        Files.writeString(to.resolve("config").resolve("mine.json"), "{}");
        Run r = run("export", "--from", from.toString(), "--self-id", "n0", "--to", to.toString(),
            "--index-hash-slots", "100", "--index-max-items", "400");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("entry 3 of " + from.resolve("dledger-n0")), r.err());
        assertTrue(r.err().contains("nothing was written to " + to), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        try (Stream<Path> s = Files.list(to)) {
            assertEquals(List.of(to.resolve("config")), s.toList(), "what the failed export left in " + to);
        }
        assertEquals("{}", Files.readString(to.resolve("config").resolve("mine.json")));

        // A target that already holds a ConsumeQueue is refused before anything is written, naming it.
        Path cq = to.resolve("consumequeue").resolve(TOPIC).resolve("0");
        Files.createDirectories(cq);
        Files.write(cq.resolve("00000000000000000000"), new byte[20]);
        Path good = raftStore(dir.resolve("raft2"), messages(4), 3);
        r = run("export", "--from", good.toString(), "--self-id", "n0", "--to", to.toString(),
            "--index-hash-slots", "100", "--index-max-items", "400");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains(to.resolve("consumequeue") + " is not empty"), r.err());
        assertFalse(Files.exists(to.resolve("commitlog")));
        assertFalse(Files.exists(to.resolve(Exporter.STAGE)));
    }

    @Test
    void eachSourceQueueFolderIsListedOnce() throws IOException {
        List<byte[]> entries = messages(50);
        Path from = raftStore(dir.resolve("raft"), entries, 49);
        // The group's ConsumeQueues, as the broker wrote them: the units point at the messages' old offsets.
        for (int q = 0; q < QUEUES; q++) {
            Path qd = from.resolve("consumequeue").resolve(TOPIC).resolve(Integer.toString(q));
            Files.createDirectories(qd);
            ByteBuffer units = ByteBuffer.allocate(20 * 40);
            for (int i = q; i < entries.size(); i += QUEUES) {
                ByteBuffer m = ByteBuffer.wrap(entries.get(i));
                units.putLong(m.getLong(MessageDecoder.PHY_POS_POSITION)).putInt(m.remaining()).putLong(7);
            }
            Files.write(qd.resolve("00000000000000000000"), units.array());
        }
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Exporter e = new Exporter(from, dir.resolve("back"), "n0", 4096, 100, 400,
            new PrintStream(buf, true, StandardCharsets.UTF_8));
        assertEquals(50, e.run());
        assertEquals(QUEUES, e.queueListings(), buf.toString());
        // The tags code came from the group's units (7 there, 0 computed from no tags).
        try (ClassicStore s = ClassicStore.open(dir.resolve("back"))) {
            assertEquals(7L, s.queueUnit(TOPIC, 1, 24)[2]);
        }
    }
}
