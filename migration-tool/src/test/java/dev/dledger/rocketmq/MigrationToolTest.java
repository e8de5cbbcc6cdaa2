package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.migration.MigrateCommand;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.store.ConfigIndexFile;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.rocketmq.common.message.MessageClientIDSetter;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageExtBrokerInner;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.GetMessageResult;
import org.apache.rocketmq.store.GetMessageStatus;
import org.apache.rocketmq.store.PutMessageStatus;
import org.apache.rocketmq.store.QueryMessageResult;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The migration tool on real store files: a stock (master/slave) store written by RocketMQ's own store code is
 * checked, converted in both modes, verified, and then served by a three-node Raft group of message stores: the
 * consumer group resumes with exactly the unconsumed half in order per queue, old messages are found by key and by
 * message id, and new messages go through Raft (the other nodes receive the history by replication in rewrite mode).
 */
class MigrationToolTest {

    private static final String[] TOPICS = {"Orders", "Payments"};
    private static final int QUEUES = 4;
    private static final int N = 2400;
    private static final String PAD = "p".repeat(420);
    private static final String GROUP = "cg";

    @TempDir
    static Path shared;
    static Path master;
    static Path slave;
    /** Per topic/queue: the bodies in queue order. */
    static final Map<String, List<String>> SENT = new TreeMap<>();
    static final List<String> UNIQ = new ArrayList<>();

    @TempDir
    Path dir;

    private record Run(int code, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        int code = MigrateCommand.run(new PrintStream(o, true, StandardCharsets.UTF_8),
            new PrintStream(e, true, StandardCharsets.UTF_8), args);
        Run r = new Run(code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        System.out.println("$ dledger-migrate " + String.join(" ", args) + "\n" + r.out + r.err.replace('\r', '\n')
            .lines().filter(l -> !l.isBlank()).reduce((a, b) -> b).orElse("") + "\n-> exit " + code);
        return r;
    }

    /**
     * Old messages are found by key and by message id (the client's unique id, as the admin tools look it up) in the
     * store, each at the physical offset it says it lies at.
     */
    private static void assertLookups(DefaultMessageStore s) {
        for (int i : new int[] {0, 1, N / 2, N - 1}) {
            String topic = TOPICS[i % 2];
            QueryMessageResult byKey = s.queryMessage(topic, "order-" + i, 4, 0, Long.MAX_VALUE);
            try {
                assertEquals(1, byKey.getMessageBufferList().size(), "key order-" + i);
                assertEquals(topic + "-" + i + PAD, new String(MessageDecoder.decode(byKey.getMessageBufferList()
                    .get(0), true, false).getBody(), StandardCharsets.UTF_8));
            } finally {
                byKey.release();
            }
            String uniq = UNIQ.get(i).split(" ")[1];
            QueryMessageResult byId = s.queryMessage(topic, uniq, 4, 0, Long.MAX_VALUE);
            try {
                assertEquals(1, byId.getMessageBufferList().size(), "message id " + uniq);
                MessageExt m = MessageDecoder.decode(byId.getMessageBufferList().get(0), true, false);
                assertEquals(uniq, m.getProperty(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX));
                // The stored physical offset is where the message now lies.
                assertEquals(m.getCommitLogOffset(), s.lookMessageByOffset(m.getCommitLogOffset())
                    .getCommitLogOffset());
            } finally {
                byId.release();
            }
        }
    }

    private static MessageExtBrokerInner message(String topic, int queueId, int i) {
        MessageExtBrokerInner m = new MessageExtBrokerInner();
        m.setTopic(topic);
        m.setQueueId(queueId);
        m.setTags(i % 3 == 0 ? "TagA" : "TagB");
        m.setKeys("order-" + i + " k" + i);
        m.setBody((topic + "-" + i + PAD).getBytes(StandardCharsets.UTF_8));
        m.setBornTimestamp(System.currentTimeMillis());
        m.setBornHost(new InetSocketAddress("127.0.0.1", 8123));
        m.setStoreHost(new InetSocketAddress("127.0.0.1", 10911));
        MessageClientIDSetter.setUniqID(m);
        if (i == 7) {
            m.putUserProperty("note", "delayed");
            m.setDelayTimeLevel(3);
        }
        m.setPropertiesString(MessageDecoder.messageProperties2String(m.getProperties()));
        return m;
    }

    /** The source: a stock store with N messages on 2 topics x 4 queues; its slave copy stopped a little behind. */
    @BeforeAll
    static void writeStockStores() throws Exception {
        Path base = shared.resolve("stock");
        try (StoreGroup g = new StoreGroup(base, 1)) {
            DefaultMessageStore s = g.startClassic("master");
            for (int i = 0; i < N; i++) {
                String topic = TOPICS[i % 2];
                int q = (i / 2) % QUEUES;
                MessageExtBrokerInner m = message(topic, q, i);
                assertEquals(PutMessageStatus.PUT_OK, s.putMessage(m).getPutMessageStatus());
                SENT.computeIfAbsent(topic + "/" + q, k -> new ArrayList<>()).add(new String(m.getBody(),
                    StandardCharsets.UTF_8));
                UNIQ.add(topic + " " + MessageClientIDSetter.getUniqID(m));
                if (i == N - 100) {
                    // The slave's copy: what replication had reached when the pair was stopped.
                    await().atMost(Duration.ofSeconds(10)).until(() -> queued(s) == SENT.values().stream()
                        .mapToInt(List::size).sum());
                    copySlave(base);
                }
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> queued(s) == N);
        }
        master = base.resolve("master");
        slave = base.resolve("slave");
        // The consumer group consumed the first half of every queue (what the broker keeps in consumerOffset.json).
        StringBuilder json = new StringBuilder("{\"offsetTable\":{");
        for (String topic : TOPICS) {
            json.append('"').append(topic).append('@').append(GROUP).append("\":{");
            for (int q = 0; q < QUEUES; q++) {
                json.append(q == 0 ? "" : ",").append('"').append(q).append("\":")
                    .append(SENT.get(topic + "/" + q).size() / 2);
            }
            json.append("},");
        }
        json.setLength(json.length() - 1);
        json.append("}}");
        Files.createDirectories(master.resolve("config"));
        Files.writeString(master.resolve("config").resolve("consumerOffset.json"), json.toString());
        Files.writeString(master.resolve("config").resolve("topics.json"),
            "{\"topicConfigTable\":{\"Orders\":{\"topicName\":\"Orders\",\"readQueueNums\":4,\"writeQueueNums\":4},"
                + "\"Payments\":{\"topicName\":\"Payments\",\"readQueueNums\":4,\"writeQueueNums\":4}}}");
    }

    private static long queued(DefaultMessageStore s) {
        long n = 0;
        for (String t : TOPICS) {
            for (int q = 0; q < QUEUES; q++) {
                try {
                    n += s.getMaxOffsetInQueue(t, q);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        return n;
    }

    private static void copySlave(Path base) throws IOException {
        Path from = base.resolve("master");
        Path to = base.resolve("slave");
        try (Stream<Path> s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path d = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(d);
                } else if (!p.getFileName().toString().equals("lock") && !p.getFileName().toString().equals("abort")) {
                    Files.copy(p, d);
                }
            }
        }
    }

    private static Map<String, byte[]> snapshot(Path root) throws IOException {
        Map<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                out.put(root.relativize(p).toString(), Files.readAllBytes(p));
            }
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------------------------
    // check

    @Test
    void checkReportsCountsPrefixAndCleanShutdown() throws IOException {
        Map<String, byte[]> before = snapshot(master);
        Run r = run("check", "--master", master.toString(), "--slave", slave.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("messages: " + N + " "), r.out());
        assertTrue(r.out().contains("agree with the CommitLog"), r.out());
        assertTrue(r.out().contains("slave is a prefix of the master"), r.out());
        assertTrue(r.out().contains("lags") && r.out().contains("(99 messages)"), r.out());
        assertTrue(r.out().contains("shut down cleanly: yes"), r.out());
        Map<String, byte[]> after = snapshot(master);
        assertEquals(before.keySet(), after.keySet(), "check creates or deletes nothing");
        for (String f : before.keySet()) {
            assertTrue(java.util.Arrays.equals(before.get(f), after.get(f)), "check changed " + f);
        }
    }

    @Test
    void checkCountsTheLagOfASlaveAttachedLate() throws IOException {
        // A stock slave attached to a master that already wrote data starts at the master's last file.
        Path s = dir.resolve("late");
        MigrationProcesses.copyTree(slave, s);
        Files.delete(s.resolve("commitlog").resolve("00000000000000000000"));
        Run r = run("check", "--master", master.toString(), "--slave", s.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("slave is a prefix of the master") && r.out().contains("(99 messages)"),
            "the lag counts the messages after the slave's end only: " + r.out());
        assertTrue(r.out().contains("the slave starts at offset " + StoreGroup.FILE_SIZE), r.out());
    }

    @Test
    void checkFindsWhereTheSlaveDiffersAndAnUncleanShutdown() throws IOException {
        Path s = dir.resolve("slave");
        MigrationProcesses.copyTree(slave, s);
        long at = 300_000;
        try (RandomAccessFile f = new RandomAccessFile(s.resolve("commitlog").resolve("00000000000000000000")
            .toFile(), "rw")) {
            f.seek(at);
            int b = f.read();
            f.seek(at);
            f.write(b ^ 0x55);
        }
        Run r = run("check", "--master", master.toString(), "--slave", s.toString());
        assertEquals(1, r.code());
        assertTrue(r.out().contains("the slave differs from the master at CommitLog offset " + at), r.out());

        Path m = dir.resolve("unclean");
        MigrationProcesses.copyTree(master, m);
        Files.writeString(m.resolve("abort"), "");
        r = run("check", "--master", m.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("not shut down cleanly"), r.err());
    }

    @Test
    void badInputGetsOneLineAndChangesNothing() throws IOException {
        Run r = run("check", "--master", dir.resolve("nothing").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("is not a RocketMQ store"), r.err());
        assertEquals(1, r.err().lines().count(), r.err());

        Path t = dir.resolve("truncated");
        MigrationProcesses.copyTree(master, t);
        try (FileChannel ch = FileChannel.open(t.resolve("commitlog").resolve("00000000000000000000"),
            StandardOpenOption.WRITE)) {
            ch.truncate(1000);
        }
        r = run("check", "--master", t.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("truncated"), r.err());

        Path target = dir.resolve("full");
        Files.createDirectories(target);
        Files.writeString(target.resolve("something"), "x");
        r = run("convert", "--from", master.toString(), "--to", target.toString(), "--group", "g", "--peers",
            "n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3", "--self-id", "n0", "--mode", "rewrite");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("is not empty"), r.err());
        assertEquals(List.of("something"), Files.list(target).map(p -> p.getFileName().toString()).toList());

        Path inUse = dir.resolve("inuse");
        MigrationProcesses.copyTree(master, inUse);
        try (FileChannel ch = FileChannel.open(inUse.resolve("lock"), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE); FileLock l = ch.lock(0, 1, false)) {
            assertNotNull(l);
            r = run("convert", "--from", inUse.toString(), "--to", dir.resolve("t2").toString(), "--group", "g",
                "--peers", "n0-127.0.0.1:1", "--self-id", "n0", "--mode", "bridge");
            assertEquals(2, r.code());
            assertTrue(r.err().contains("in use by a running broker"), r.err());
            assertFalse(Files.exists(dir.resolve("t2").resolve("commitlog")));
        }

        Path dledger = dir.resolve("stockdledger");
        Files.createDirectories(dledger.resolve("dledger-n0").resolve("data"));
        Files.write(dledger.resolve("dledger-n0").resolve("data").resolve("00000000000000000000"), new byte[64]);
        r = run("check", "--master", dledger.toString());
        assertEquals(0, r.code());
        assertTrue(r.out().contains("opens it in place") || r.out().contains("open it in place"), r.out());
    }

    // ------------------------------------------------------------------------------------------------------------
    // convert + verify

    @Test
    void rewriteIsResumableAndGivesTheSameResult() throws IOException {
        String peers = "n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3";
        Path a = dir.resolve("a");
        Run r = run("convert", "--from", master.toString(), "--to", a.toString(), "--group", "g", "--peers", peers,
            "--self-id", "n0", "--mode", "rewrite", "--index-hash-slots", "1000", "--index-max-items", "4000");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("MB/s") && r.err().contains("left"), "a progress bar: " + r.err());
        r = run("verify", "--from", master.toString(), "--to", a.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("verified (rewrite): " + N + " messages identical, " + N + " found"), r.out());
        // The node's first start finds its membership from this record, reading no header of the history.
        ConfigIndexFile configs = ConfigIndexFile.read(a.resolve("dledger-n0"));
        assertNotNull(configs, "the converted node folder records its CONFIG entries");
        assertEquals(List.of(0L, N + 1L), configs.configs().stream().map(ConfigIndexFile.Point::index).toList());
        assertEquals(N + 1L, configs.coveredIndex(), "complete up to the log's end");

        // An interrupted run: half the log written and its last write torn, the queues half built.
        Path b = dir.resolve("b");
        Path partial = b.resolve(".dledger-migrate-partial");
        MigrationProcesses.copyTree(a.resolve("dledger-n0"), partial.resolve("dledger-n0"));
        Files.delete(partial.resolve("dledger-n0").resolve("checkpoint"));
        try (SegmentedLogStore log = SegmentedLogStore.open(partial.resolve("dledger-n0"), StoreConfig.detect(
            partial.resolve("dledger-n0"), StoreConfig.defaults()))) {
            log.truncateSuffix(N / 2);
        }
        Path data = partial.resolve("dledger-n0").resolve("data");
        Path lastFile = Files.list(data).sorted().reduce((x, y) -> y).orElseThrow();
        try (FileChannel ch = FileChannel.open(lastFile, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap("torn".getBytes(StandardCharsets.UTF_8)), ch.size() / 2);
        }
        Files.createDirectories(partial.resolve("consumequeue").resolve("Orders").resolve("0"));
        Files.write(partial.resolve("consumequeue").resolve("Orders").resolve("0").resolve("00000000000000000000"),
            new byte[7]);
        r = run("convert", "--from", master.toString(), "--to", b.toString(), "--group", "g", "--peers", peers,
            "--self-id", "n0", "--mode", "rewrite", "--index-hash-slots", "1000", "--index-max-items", "4000");
        assertEquals(0, r.code(), r.err());
        Map<String, byte[]> sa = snapshot(a);
        Map<String, byte[]> sb = snapshot(b);
        assertEquals(sa.keySet(), sb.keySet());
        for (String f : sa.keySet()) {
            assertTrue(java.util.Arrays.equals(sa.get(f), sb.get(f)), "resumed run differs in " + f);
        }
    }

    @Test
    void exportGivesAStockStoreThatServesEveryMessage() throws Exception {
        String peers = "n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3";
        Path raft = dir.resolve("raft");
        Run r = run("convert", "--from", master.toString(), "--to", raft.toString(), "--group", "g", "--peers", peers,
            "--self-id", "n0", "--mode", "rewrite", "--index-hash-slots", "1000", "--index-max-items", "4000");
        assertEquals(0, r.code(), r.err());
        Path back = dir.resolve("back");
        r = run("export", "--from", raft.toString(), "--self-id", "n0", "--to", back.resolve("master").toString(),
            "--index-hash-slots", "1000", "--index-max-items", "4000");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("export verified: " + N + " messages"), r.out());
        r = run("export", "--from", raft.toString(), "--self-id", "n0", "--to", back.resolve("master").toString());
        assertEquals(2, r.code(), "a second export onto the first is refused: " + r.err());
        assertTrue(r.err().contains("is not empty"), r.err());
        // A stock store (the broker's own DefaultMessageStore, master/slave) on the exported files.
        try (StoreGroup g = new StoreGroup(back, 1)) {
            DefaultMessageStore s = g.startClassic("master");
            for (String topic : TOPICS) {
                for (int q = 0; q < QUEUES; q++) {
                    List<String> got = new ArrayList<>();
                    long at = 0;
                    while (true) {
                        GetMessageResult res = s.getMessage(GROUP, topic, q, at, 64, null);
                        try {
                            if (res.getStatus() != GetMessageStatus.FOUND) {
                                break;
                            }
                            for (ByteBuffer b : res.getMessageBufferList()) {
                                got.add(new String(MessageDecoder.decode(b, true, false).getBody(),
                                    StandardCharsets.UTF_8));
                            }
                            at = res.getNextBeginOffset();
                        } finally {
                            res.release();
                        }
                    }
                    assertEquals(SENT.get(topic + "/" + q), got, topic + "/" + q);
                }
            }
            assertTrue(Files.exists(back.resolve("master").resolve("config").resolve("consumerOffset.json")));
            // Lookups by key and id find the exported history: the export wrote index/.
            assertLookups(s);
            // The stock store takes new messages after the exported ones.
            MessageExtBrokerInner m = message("Orders", 0, N);
            m.setDelayTimeLevel(0);
            m.getProperties().remove(MessageConst.PROPERTY_DELAY_TIME_LEVEL);
            m.setPropertiesString(MessageDecoder.messageProperties2String(m.getProperties()));
            var put = s.putMessage(m);
            assertEquals(PutMessageStatus.PUT_OK, put.getPutMessageStatus());
            assertEquals(SENT.get("Orders/0").size(), put.getAppendMessageResult().getLogicsOffset());
        }
    }

    @Test
    void controllerModeStoreIsTakenUpToItsConfirmOffset() throws IOException {
        // A Controller-mode store: the epoch file beside the CommitLog, the confirm offset in the checkpoint. The
        // confirm offset is where the 81st message starts (Orders/0 holds messages 0, 8, 16, ...: unit 10 is message 80).
        Path src = dir.resolve("controller");
        MigrationProcesses.copyTree(master, src);
        ByteBuffer cq = ByteBuffer.wrap(Files.readAllBytes(src.resolve("consumequeue").resolve("Orders").resolve("0")
            .resolve("00000000000000000000")));
        long confirm = cq.getLong(10 * 20);
        Files.writeString(src.resolve("epochFileCheckpoint"), "2\n0\n1-0\n2-" + (confirm / 2) + "\n");
        try (FileChannel ch = FileChannel.open(src.resolve("checkpoint"), StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).putLong(0, confirm), 32);
        }
        String peers = "n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3";
        Run r = run("check", "--master", src.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("Controller-mode store: 2 epochs") && r.out().contains("confirm offset " + confirm)
            && r.out().contains("messages: 80 "), r.out());
        r = run("convert", "--from", src.toString(), "--to", dir.resolve("bridge").toString(), "--group", "g",
            "--peers", peers, "--self-id", "n0", "--mode", "bridge");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("after its confirm offset " + confirm) && r.err().lines().count() == 1, r.err());
        r = run("convert", "--from", src.toString(), "--to", dir.resolve("rewrite").toString(), "--group", "g",
            "--peers", peers, "--self-id", "n0", "--mode", "rewrite", "--index-hash-slots", "1000",
            "--index-max-items", "4000");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("converted: 80 messages"), r.out());
        r = run("verify", "--from", src.toString(), "--to", dir.resolve("rewrite").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("80 messages identical"), r.out());
        // A damaged epoch file is named with its line.
        Files.writeString(src.resolve("epochFileCheckpoint"), "2\n0\n1-0\nx-9\n");
        r = run("check", "--master", src.toString());
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("epochFileCheckpoint: line 4 'x-9' is not epoch-startOffset"), r.err());
    }

    @Test
    void multiPathCommitLogIsReadFromAllItsFolders() throws IOException {
        // storePathCommitLog=a:b: the broker spread the CommitLog files over two folders.
        Path src = dir.resolve("multi");
        MigrationProcesses.copyTree(master, src);
        Path second = dir.resolve("second-disk").resolve("commitlog");
        Files.createDirectories(second);
        List<Path> files;
        try (Stream<Path> s = Files.list(src.resolve("commitlog"))) {
            files = s.sorted().toList();
        }
        assertTrue(files.size() >= 2, "CommitLog files: " + files);
        for (int i = 1; i < files.size(); i += 2) {
            Files.move(files.get(i), second.resolve(files.get(i).getFileName()));
        }
        String peers = "n0-127.0.0.1:1";
        Path to = dir.resolve("to");
        Run r = run("convert", "--from", src.toString(), "--to", to.toString(), "--group", "g", "--peers", peers,
            "--self-id", "n0", "--mode", "rewrite", "--index-hash-slots", "1000", "--index-max-items", "4000");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("is missing") && r.err().contains("--commitlog"), r.err());
        String paths = src.resolve("commitlog") + ":" + second;
        r = run("convert", "--from", src.toString(), "--commitlog", paths, "--to", to.toString(), "--group", "g",
            "--peers", peers, "--self-id", "n0", "--mode", "rewrite", "--index-hash-slots", "1000",
            "--index-max-items", "4000");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("converted: " + N + " messages"), r.out());
        r = run("verify", "--from", src.toString(), "--commitlog", paths, "--to", to.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains(N + " messages identical"), r.out());
        // A file in both folders is refused, naming it.
        Files.copy(second.resolve(files.get(1).getFileName()), src.resolve("commitlog").resolve(files.get(1)
            .getFileName()));
        r = run("check", "--master", src.toString(), "--commitlog", paths);
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains(files.get(1).getFileName() + " is in both"), r.err());
    }

    @Test
    void bridgeCopiesOrLinksAndVerifies() throws IOException {
        Path t = dir.resolve("bridge");
        Run r = run("plan", "--from", master.toString(), "--to", t.toString(), "--group", "g", "--peers",
            "n0-127.0.0.1:1", "--self-id", "n0", "--mode", "bridge", "--link");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("disk space") && r.out().contains("starts the Raft log at offset"), r.out());
        assertFalse(Files.exists(t), "plan writes nothing");
        r = run("convert", "--from", master.toString(), "--to", t.toString(), "--group", "g", "--peers",
            "n0-127.0.0.1:1", "--self-id", "n0", "--mode", "bridge", "--link");
        assertEquals(0, r.code(), r.err());
        r = run("verify", "--from", master.toString(), "--to", t.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("verified (bridge): " + N + " messages identical"), r.out());
        // A difference is found and named.
        Path last = Files.list(t.resolve("commitlog")).sorted().reduce((x, y) -> y).orElseThrow();
        try (RandomAccessFile f = new RandomAccessFile(last.toFile(), "rw")) {
            f.seek(200);
            int b = f.read();
            f.seek(200);
            f.write(b ^ 1);
        }
        r = run("verify", "--from", master.toString(), "--to", t.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("message "), r.err());
    }

    @Test
    void bridgeStoreIsCheckedOnItsHostAndAnInterruptedConversionGoesOn() throws IOException {
        String[] convert = {"convert", "--from", master.toString(), "--to", "", "--group", "g", "--peers",
            "n0-127.0.0.1:1", "--self-id", "n0", "--mode", "bridge"};
        Path t = dir.resolve("bridge");
        convert[4] = t.toString();
        Run r = run(convert);
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("listed with its CRC32C in dledger-migrate.manifest (0 kept"), r.out());
        // Shipped to the node's host (no source there): checked file by file against the manifest.
        Path host = dir.resolve("host-n0");
        MigrationProcesses.copyTree(t, host);
        r = run("verify", "--to", host.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("verified (manifest): "), r.out());
        Path first = Files.list(host.resolve("commitlog")).sorted().findFirst().orElseThrow();
        try (RandomAccessFile f = new RandomAccessFile(first.toFile(), "rw")) {
            f.seek(100);
            int b = f.read();
            f.seek(100);
            f.write(b ^ 1);
        }
        r = run("verify", "--to", host.toString());
        assertEquals(1, r.code(), r.out());
        // One line names the file (the progress bar, drawn on stderr, ends its own line first).
        assertEquals(List.of("dledger-migrate: " + first), r.err().lines().filter(l -> l.startsWith("dledger-migrate:"))
            .map(l -> l.contains(" differs") ? l.substring(0, l.indexOf(" differs")) : l).toList(), r.err());
        Files.delete(first);
        r = run("verify", "--to", host.toString());
        assertEquals(1, r.code(), r.out());
        assertTrue(r.err().contains(first + " is missing"), r.err());

        // An interrupted run: the manifest lists two complete files, a third was being copied. The next run keeps the
        // two and copies the rest; the result is the same store.
        Path u = dir.resolve("bridge-again");
        Path work = u.resolve(".dledger-migrate-partial");
        Files.createDirectories(work.resolve("commitlog"));
        List<String> lines = Files.readAllLines(t.resolve("dledger-migrate.manifest"));
        Files.write(work.resolve("dledger-migrate.manifest"), lines.subList(0, 2));
        for (String line : lines.subList(0, 3)) {
            String rel = line.split(" ", 3)[2];
            Files.createDirectories(work.resolve(rel).getParent());
            Files.copy(t.resolve(rel), work.resolve(rel));
        }
        String third = lines.get(2).split(" ", 3)[2];
        try (FileChannel ch = FileChannel.open(work.resolve(third), StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() / 2);
        }
        convert[4] = u.toString();
        r = run(convert);
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("(2 kept from an interrupted run)"), r.out());
        assertEquals(lines, Files.readAllLines(u.resolve("dledger-migrate.manifest")));
        r = run("verify", "--to", u.toString());
        assertEquals(0, r.code(), r.err());
        r = run("verify", "--from", master.toString(), "--to", u.toString());
        assertEquals(0, r.code(), r.err());
    }

    // ------------------------------------------------------------------------------------------------------------
    // end to end: a Raft group of stores on the result

    @Test
    void rewriteGroupResumesConsumersAndReplicatesTheHistory() throws Exception {
        Path base = dir.resolve("group");
        try (StoreGroup g = new StoreGroup(base, 3)) {
            long t0 = System.nanoTime();
            for (String id : List.of("n0", "n1", "n2")) {
                List<String> args = new ArrayList<>(List.of("convert", "--to", base.resolve(id).toString(),
                    "--group", "g", "--peers", g.peers, "--self-id", id, "--mode", "rewrite", "--seed", "n0",
                    "--index-hash-slots", "1000", "--index-max-items", "4000", "--data-file-size",
                    Integer.toString(StoreGroup.FILE_SIZE)));
                if (id.equals("n0")) {
                    args.addAll(List.of("--from", master.toString()));
                }
                Run r = run(args.toArray(String[]::new));
                assertEquals(0, r.code(), r.err());
                // Without --from a joining node gets no config/: the consumer offsets come only from the master.
                assertEquals(!id.equals("n0"), r.err().contains("warning: without --from, " + id + " gets no config/"),
                    r.err());
                assertEquals(id.equals("n0"), Files.exists(base.resolve(id).resolve("config")
                    .resolve("consumerOffset.json")));
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            long bytes = Files.size(master.resolve("commitlog").resolve("00000000000000000000"))
                * Files.list(master.resolve("commitlog")).count();
            System.out.printf("rewrite: N=%d, %.1f MB of CommitLog files in %.2f s = %.1f MB/s%n", N, bytes / 1e6,
                secs, bytes / 1e6 / secs);
            assertEquals(0, run("verify", "--from", master.toString(), "--to", base.resolve("n0").toString()).code());
            for (String id : List.of("n0", "n1", "n2")) {
                g.start(id, false);
            }
            DefaultMessageStore leader = g.awaitLeader();
            assertEquals("n0", StoreGroup.log(leader).node().status().leaderId(), "only the seed can lead first");
            assertServes(leader, base.resolve("n0"), true);
            for (String id : List.of("n1", "n2")) {
                DefaultMessageStore f = g.stores.get(id);
                await().atMost(Duration.ofSeconds(30)).until(() -> queued(f) == N + 8);
                assertEquals(StoreGroup.log(f).node().status().role(), Role.FOLLOWER);
                assertEquals(new String(f.lookMessageByOffset(firstOffset(leader, "Payments", 3)).getBody(),
                    StandardCharsets.UTF_8), SENT.get("Payments/3").get(0));
            }
        }
    }

    @Test
    void bridgeGroupServesTheOldFilesAndTheRaftLogAbove() throws Exception {
        Path base = dir.resolve("group");
        try (StoreGroup g = new StoreGroup(base, 3)) {
            for (String id : List.of("n0", "n1", "n2")) {
                Run r = run("convert", "--from", master.toString(), "--to", base.resolve(id).toString(), "--group",
                    "g", "--peers", g.peers, "--self-id", id, "--mode", "bridge", "--link");
                assertEquals(0, r.code(), r.err());
                assertEquals(0, run("verify", "--from", master.toString(), "--to", base.resolve(id).toString())
                    .code());
            }
            for (String id : List.of("n0", "n1", "n2")) {
                g.start(id, false);
            }
            DefaultMessageStore leader = g.awaitLeader();
            assertTrue(StoreGroup.log(leader).dividedOffset() > 0, "the raft log starts above the old files");
            assertServes(leader, base.resolve(leaderId(g, leader)), false);
            for (DefaultMessageStore s : g.stores.values()) {
                await().atMost(Duration.ofSeconds(30)).until(() -> queued(s) == N + 8);
            }
        }
    }

    private static String leaderId(StoreGroup g, DefaultMessageStore leader) {
        return g.stores.entrySet().stream().filter(e -> e.getValue() == leader).findFirst().orElseThrow().getKey();
    }

    private static long firstOffset(DefaultMessageStore s, String topic, int q) {
        GetMessageResult r = s.getMessage(GROUP, topic, q, 0, 1, null);
        try {
            MessageExt m = MessageDecoder.decode(r.getMessageBufferList().get(0), true, false);
            return m.getCommitLogOffset();
        } finally {
            r.release();
        }
    }

    /** The consumer group resumes with the other half in order, old messages are found, new ones go through Raft. */
    private static void assertServes(DefaultMessageStore s, Path root, boolean rewrite) throws IOException {
        String offsets = Files.readString(root.resolve("config").resolve("consumerOffset.json"));
        com.alibaba.fastjson2.JSONObject table = com.alibaba.fastjson2.JSON.parseObject(offsets)
            .getJSONObject("offsetTable");
        int resumed = 0;
        for (String topic : TOPICS) {
            for (int q = 0; q < QUEUES; q++) {
                List<String> sent = SENT.get(topic + "/" + q);
                long from = table.getJSONObject(topic + "@" + GROUP).getLongValue(Integer.toString(q));
                List<String> got = new ArrayList<>();
                long at = from;
                while (true) {
                    GetMessageResult r = s.getMessage(GROUP, topic, q, at, 64, null);
                    try {
                        if (r.getStatus() != GetMessageStatus.FOUND) {
                            break;
                        }
                        for (ByteBuffer b : r.getMessageBufferList()) {
                            got.add(new String(MessageDecoder.decode(b, true, false).getBody(),
                                StandardCharsets.UTF_8));
                        }
                        at = r.getNextBeginOffset();
                    } finally {
                        r.release();
                    }
                }
                assertEquals(sent.subList((int) from, sent.size()), got, topic + "/" + q + " from " + from);
                resumed += got.size();
            }
        }
        assertEquals(N - N / 2, resumed, "the consumer group gets exactly the other half");
        assertLookups(s);
        // New messages through Raft, after the old ones in their queues.
        Map<String, Integer> next = new TreeMap<>();
        for (int i = 0; i < 8; i++) {
            MessageExtBrokerInner m = message("Orders", i % QUEUES, N + i);
            m.setDelayTimeLevel(0);
            m.getProperties().remove(MessageConst.PROPERTY_DELAY_TIME_LEVEL);
            m.setTopic(TOPICS[i % 2]);
            m.setPropertiesString(MessageDecoder.messageProperties2String(m.getProperties()));
            var res = s.putMessage(m);
            assertEquals(PutMessageStatus.PUT_OK, res.getPutMessageStatus());
            assertTrue(res.getAppendMessageResult().getWroteOffset() > (rewrite ? 0
                : StoreGroup.log(s).dividedOffset() - 1));
            String q = TOPICS[i % 2] + "/" + (i % QUEUES);
            next.merge(q, 1, Integer::sum);
            assertEquals(SENT.get(q).size() + next.get(q) - 1, res.getAppendMessageResult()
                .getLogicsOffset(), "queue offsets carry on");
        }
        System.out.printf("%s: N=%d, resumed %d (the unconsumed half), 8 new messages through raft%n",
            rewrite ? "rewrite" : "bridge", N, resumed);
    }
}
