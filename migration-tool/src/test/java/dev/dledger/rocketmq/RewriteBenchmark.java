package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.migration.MigrateCommand;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Rewrite at production size ({@code -P benchmark} only, never in CI): a store of {@code -Dbench.gb} GB (default 20)
 * generated in the exact CommitLog format (1 KB messages, 8 queues, 1 GiB files) in {@code -Dbench.dir} (default the
 * temp folder); prints the raw sequential write bandwidth of that disk measured in the same run, the rewrite MB/s and
 * peak heap of a {@code -Xmx256m} convert, and the cutover pause of an incremental conversion: {@code convert --live}
 * while the last quarter of the files is not yet written, then the timed {@code convert} of the rest.
 */
class RewriteBenchmark {

    private static final int FILE_SIZE = 1 << 30;
    private static final int BODY = 1000;

    @Test
    void rewriteAtDiskSpeed() throws Exception {
        double gb = Double.parseDouble(System.getProperty("bench.gb", "20"));
        Path dir = Files.createTempDirectory(Path.of(System.getProperty("bench.dir",
            System.getProperty("java.io.tmpdir"))), "rewrite-bench");
        try {
            double raw = rawWriteMbPerSecond(dir.resolve("raw"), 2L << 30);
            long messages = (long) (gb * (1L << 30) / CommitLogGenerator.messageBytes("Bench", BODY));
            Path full = dir.resolve("full");
            long t0 = System.nanoTime();
            long end = CommitLogGenerator.write(full, "Bench", 8, messages, BODY, FILE_SIZE);
            System.out.printf(Locale.ROOT, "generated %d messages, %.1f GB in %.0f s%n", messages, end / 1e9,
                (System.nanoTime() - t0) / 1e9);

            String[] once = convert(full, dir.resolve("once"), false);
            double[] r = child(once);
            System.out.printf(Locale.ROOT, "REWRITE: %.1f GB at %.0f MB/s (raw sequential write %.0f MB/s, %.0f%%), "
                + "peak heap %.0f MB under -Xmx256m%n", end / 1e9, r[1], raw, 100 * r[1] / raw, r[2] / 1e6);
            deleteTree(dir.resolve("once"));

            // Incremental: the master has written three quarters of its files when the live pass runs.
            List<Path> files;
            try (var s = Files.list(full.resolve("commitlog"))) {
                files = s.sorted().toList();
            }
            Path master = dir.resolve("master");
            Files.createDirectories(master.resolve("commitlog"));
            int live = Math.max(1, files.size() * 3 / 4);
            for (Path f : files.subList(0, live)) {
                Files.createLink(master.resolve("commitlog").resolve(f.getFileName()), f);
            }
            double[] l = child(convert(master, dir.resolve("inc"), true));
            for (Path f : files.subList(live, files.size())) {
                Files.createLink(master.resolve("commitlog").resolve(f.getFileName()), f);
            }
            long p0 = System.nanoTime();
            double[] tail = child(convert(master, dir.resolve("inc"), false));
            System.out.printf(Locale.ROOT, "CUTOVER: live pass %.0f s; after the master stopped, the rest (%d of %d "
                + "files) converted in %.1f s (process included)%n", l[0], files.size() - live + 1, files.size(),
                (System.nanoTime() - p0) / 1e9);
            assertEquals(0, (int) tail[3]);
        } finally {
            deleteTree(dir);
        }
    }

    private static String[] convert(Path from, Path to, boolean live) {
        List<String> a = new ArrayList<>(List.of("convert", "--from", from.toString(), "--to", to.toString(), "--group",
            "g", "--peers", "n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3", "--self-id", "n0", "--mode", "rewrite"));
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
