package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.migration.MigrateCommand;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.remoting.protocol.body.TopicConfigSerializeWrapper;
import org.junit.jupiter.api.Test;

/**
 * Rewrite at production size ({@code -P benchmark} only, never in CI): a store of {@code -Dbench.gb} GB (default 20)
 * generated in the exact CommitLog format (1 KB messages, 8 queues, 1 GiB files) in {@code -Dbench.dir} (default the
 * temp folder); prints the raw sequential write bandwidth of that disk measured in the same run, the rewrite MB/s and
 * peak heap of a {@code -Xmx256m} convert, and the cutover pause of an incremental conversion: {@code convert --live}
 * while the last quarter of the files is not yet written, again when all but the last are, then the timed
 * {@code convert} of the rest and the start of a three-broker group on it until its first accepted send.
 */
class RewriteBenchmark {

    private static final int FILE_SIZE = 1 << 30;
    private static final int BODY = 1000;
    private static final String TOPIC = "Bench";
    private static final int QUEUES = 8;

    @Test
    void rewriteAtDiskSpeed() throws Exception {
        double gb = Double.parseDouble(System.getProperty("bench.gb", "20"));
        Path dir = Files.createTempDirectory(Path.of(System.getProperty("bench.dir",
            System.getProperty("java.io.tmpdir"))), "rewrite-bench");
        try {
            double raw = rawWriteMbPerSecond(dir.resolve("raw"), 2L << 30);
            long messages = (long) (gb * (1L << 30) / CommitLogGenerator.messageBytes(TOPIC, BODY));
            Path full = dir.resolve("full");
            long t0 = System.nanoTime();
            long end = CommitLogGenerator.write(full, TOPIC, QUEUES, messages, BODY, FILE_SIZE);
            System.out.printf(Locale.ROOT, "generated %d messages, %.1f GB in %.0f s%n", messages, end / 1e9,
                (System.nanoTime() - t0) / 1e9);

            // The stock broker's topic config, which the conversion carries to the group (sends need the topic).
            Files.createDirectories(full.resolve("config"));
            TopicConfigSerializeWrapper topics = new TopicConfigSerializeWrapper();
            topics.setTopicConfigTable(new ConcurrentHashMap<>(Map.of(TOPIC, new TopicConfig(TOPIC, QUEUES, QUEUES))));
            Files.writeString(full.resolve("config").resolve("topics.json"), topics.toJson(true));
            MigrationProcesses px = new MigrationProcesses(dir.resolve("group"));
            Map<String, InetSocketAddress> raft = px.raftPorts();
            String peers = MigrationProcesses.peers(raft);

            String[] once = convert(full, dir.resolve("once"), peers, false);
            double[] r = child(once);
            System.out.printf(Locale.ROOT, "REWRITE: %.1f GB at %.0f MB/s (raw sequential write %.0f MB/s, %.0f%%), "
                + "peak heap %.0f MB under -Xmx256m%n", end / 1e9, r[1], raw, 100 * r[1] / raw, r[2] / 1e6);
            deleteTree(dir.resolve("once"));

            // Incremental: the master has written three quarters of its files when the first live pass runs, all but
            // its last file at the second, which the operator runs just before stopping it; the tail is what the
            // master wrote after that (here its last file, 1 GiB).
            List<Path> files;
            try (var s = Files.list(full.resolve("commitlog"))) {
                files = s.sorted().toList();
            }
            Path master = dir.resolve("master");
            Files.createDirectories(master.resolve("commitlog"));
            MigrationProcesses.copyTree(full.resolve("config"), master.resolve("config"));
            int live = Math.max(1, files.size() * 3 / 4);
            for (Path f : files.subList(0, live)) {
                Files.createLink(master.resolve("commitlog").resolve(f.getFileName()), f);
            }
            Path n0 = dir.resolve("group").resolve("n0");
            double[] l = child(convert(master, n0.resolve("store"), peers, true));
            for (Path f : files.subList(live, files.size() - 1)) {
                Files.createLink(master.resolve("commitlog").resolve(f.getFileName()), f);
            }
            double[] l2 = child(convert(master, n0.resolve("store"), peers, true));
            Path lastFile = files.get(files.size() - 1);
            Files.createLink(master.resolve("commitlog").resolve(lastFile.getFileName()), lastFile);
            long p0 = System.nanoTime();
            double[] tail = child(convert(master, n0.resolve("store"), peers, false));
            long tailMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - p0);
            System.out.printf(Locale.ROOT, "CUTOVER: live passes %.0f s (%d of %d files) and %.0f s (to %d); after the "
                + "master stopped, the rest (2 files: the one it was writing at the last live pass, and its last) "
                + "converted in %.1f s (process included)%n", l[0], live - 1, files.size(), l2[0], files.size() - 2,
                tailMs / 1e3);
            assertEquals(0, (int) tail[3]);
            try (px) {
                firstSend(px, raft, peers, n0, messages, tailMs);
            }
        } finally {
            if (!Boolean.getBoolean("bench.keep")) {
                deleteTree(dir);
            }
        }
    }

    /**
     * The group on the converted history: n1 and n2 get n0's converted store (every node converts the same source to
     * the same log; the sealed Raft data files are hard-linked, since this disk cannot hold three copies, the rest is
     * copied), then a nameserver and the three brokers start, and a producer sends until the first SEND_OK. Prints
     * the pause an operator sees on each host, the tail's conversion plus the group's start to its first send.
     */
    private static void firstSend(MigrationProcesses px, Map<String, InetSocketAddress> raft, String peers, Path n0,
                                  long messages, long tailMs) throws Exception {
        long c0 = System.nanoTime();
        for (String id : List.of("n1", "n2")) {
            cloneNode(n0.resolve("store"), n0.resolveSibling(id).resolve("store"), id);
        }
        long cloneMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - c0);
        px.startNamesrv();
        String[] sizes = {"mappedFileSizeCommitLog=" + FILE_SIZE, "mappedFileSizeConsumeQueue=" + 300_000 * 20,
            "maxHashSlotNum=5000000", "maxIndexNum=20000000"};
        long t0 = System.nanoTime();
        List<MigrationProcesses.Broker> group = new ArrayList<>();
        for (String id : raft.keySet()) {
            group.add(px.raftBroker(n0.resolveSibling(id), id, peers, raft.get(id), sizes));
        }
        DefaultMQProducer producer = px.producer();
        producer.setSendMsgTimeout(3000);
        producer.setRetryTimesWhenSendFailed(0);
        Message first = new Message(TOPIC, "first after cutover".getBytes(StandardCharsets.UTF_8));
        SendResult sent = await("the first send on the new group").atMost(Duration.ofMinutes(30))
            .pollInterval(Duration.ofMillis(200)).ignoreExceptions()
            .until(() -> producer.send(first), r -> r.getSendStatus() == SendStatus.SEND_OK);
        long firstMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        System.out.printf(Locale.ROOT, "FIRST SEND: %d messages of history; the 3 brokers started, first SEND_OK "
            + "%.1f s later; pause on a host (tail converted + group start to first send) %.1f s (n1, n2 prepared "
            + "from n0's store in %.1f s, not counted: each host converts its own copy)%n", messages, firstMs / 1e3,
            (tailMs + firstMs) / 1e3, cloneMs / 1e3);
        // The new message follows the history in its queue: the history came along and the offsets go on.
        int q = sent.getMessageQueue().getQueueId();
        assertEquals(messages / QUEUES + (q < messages % QUEUES ? 1 : 0), sent.getQueueOffset(),
            "queue offset of the first new message in queue " + q);
    }

    /**
     * Makes {@code to} the store of node {@code id} from n0's converted store {@code from}: the Raft log folder renamed,
     * every full data file of the Raft log hard-linked (the broker only appends after the last one), the rest copied.
     */
    private static void cloneNode(Path from, Path to, String id) throws IOException {
        Path data = from.resolve("dledger-n0").resolve("data");
        List<Path> sealed;
        try (var s = Files.list(data)) {
            sealed = s.sorted().toList();
        }
        sealed = sealed.subList(0, Math.max(0, sealed.size() - 1));
        try (var s = Files.walk(from)) {
            for (Path p : s.toList()) {
                Path d = to.resolve(from.relativize(p).toString().replace("dledger-n0", "dledger-" + id));
                if (Files.isDirectory(p)) {
                    Files.createDirectories(d);
                } else if (sealed.contains(p)) {
                    Files.createLink(d, p);
                } else {
                    Files.copy(p, d);
                }
            }
        }
    }

    private static String[] convert(Path from, Path to, String peers, boolean live) {
        List<String> a = new ArrayList<>(List.of("convert", "--from", from.toString(), "--to", to.toString(), "--group",
            MigrationProcesses.BROKER_NAME, "--peers", peers, "--self-id", "n0", "--seed", "n0", "--mode", "rewrite"));
        if (live) {
            a.add("--live");
        }
        return a.toArray(String[]::new);
    }

    /** Runs {@link #main} in a {@code -Xmx256m} JVM: {seconds, MB/s, peak heap bytes, exit code}. */
    private static double[] child(String[] args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx256m", "-cp", System.getProperty("java.class.path"), RewriteBenchmark.class.getName()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile("rewrite-bench", ".out");
        long t0 = System.nanoTime();
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        p.waitFor(4, TimeUnit.HOURS);
        double secs = (System.nanoTime() - t0) / 1e9;
        String text = Files.readString(out);
        Files.delete(out);
        assertEquals(0, p.exitValue(), text);
        double rate = 0;
        double heap = 0;
        for (String line : text.lines().toList()) {
            if (line.startsWith("converted: ")) {
                rate = Double.parseDouble(line.replaceAll(".*\\(([0-9.]+) MB/s\\).*", "$1"));
            } else if (line.startsWith("PEAK_HEAP ")) {
                heap = Double.parseDouble(line.substring(10));
            }
        }
        return new double[] {secs, rate, heap, p.exitValue()};
    }

    /** The child: the command, then the peak heap over all heap pools. */
    public static void main(String[] args) {
        int code = MigrateCommand.run(System.out, System.err, args);
        long peak = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                peak += pool.getPeakUsage().getUsed();
            }
        }
        System.out.println("PEAK_HEAP " + peak);
        System.exit(code);
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (var s = Files.walk(root)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    /** Sequential writes of 8 MB buffers to one file, fsynced at the end. */
    private static double rawWriteMbPerSecond(Path f, long bytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocateDirect(8 << 20);
        long t0 = System.nanoTime();
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long done = 0; done < bytes; done += b.capacity()) {
                b.clear();
                while (b.hasRemaining()) {
                    ch.write(b);
                }
            }
            ch.force(true);
        }
        double rate = bytes / 1e6 / ((System.nanoTime() - t0) / 1e9);
        Files.delete(f);
        return rate;
    }
}
