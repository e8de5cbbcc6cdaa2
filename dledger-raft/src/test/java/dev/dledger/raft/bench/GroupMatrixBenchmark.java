package dev.dledger.raft.bench;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.cli.GroupBenchmark;
import dev.dledger.raft.server.FileNodeStorage;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.store.StoreConfig;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The group matrix in one run: for each thread count of {@code bench.matrixThreads} (default 1,8,32,128) with async
 * flush, and for 32 threads with sync flush, DLedger 0.3.3.4 and our group with the same closed loop, side by side
 * with the ratio; then our group with pipelined clients ({@code bench.pipelined}, default {@code 1x1024,4x256}:
 * threads x appends in flight per thread, all through one client connection), next to the CPU the run used and the
 * raw sequential write bandwidth of the same disk (as {@code StoreWriteBenchmark} writes it: blocks of 256 entries of
 * 1 KiB + 48 header bytes, without and with an fsync per block). Only under the {@code benchmark} profile:
 *
 * <pre>
 * mvn -pl dledger-raft -P benchmark test -Dtest=GroupMatrixBenchmark -Dbench.warmup=30 -Dbench.seconds=20
 * </pre>
 */
class GroupMatrixBenchmark {

    private static final int SIZE = 1024;
    private static final int ENTRY_ON_DISK = SIZE + 48;
    private static final int BLOCK_ENTRIES = 256;

    @Test
    void closedLoopMatrixAgainstDLedgerThenPipelinedAgainstDiskAndCpu() throws Exception {
        int warmup = Integer.getInteger("bench.warmup", 60);
        int seconds = Integer.getInteger("bench.seconds", 30);
        String threadList = System.getProperty("bench.matrixThreads", "1,8,32,128");
        String pipelined = System.getProperty("bench.pipelined", "1x1024,4x256");
        int cores = Runtime.getRuntime().availableProcessors();
        System.out.printf("matrix: size=%d warmup=%ds seconds=%ds cores=%d load=%s%n", SIZE, warmup, seconds, cores,
            loadAverage());

        List<String> table = new ArrayList<>();
        int port = 21011;
        List<GroupBenchmark.Settings> closed = new ArrayList<>();
        for (String t : threadList.split(",")) {
            closed.add(new GroupBenchmark.Settings(Integer.parseInt(t.trim()), SIZE, warmup, seconds, FlushMode.ASYNC));
        }
        closed.add(new GroupBenchmark.Settings(32, SIZE, warmup, seconds, FlushMode.SYNC));
        for (GroupBenchmark.Settings s : closed) {
            Path theirDir = Files.createTempDirectory("dledger-baseline");
            GroupBenchmark.Result theirs = DLedgerBaseline.run(s, theirDir, port);
            deleteTree(theirDir);
            port += 10;
            System.out.println(theirs.line() + " system=dledger-0.3.3.4");
            GroupBenchmark.Result ours = ours(s);
            System.out.println(ours.line() + " system=ours");
            String row = String.format(Locale.ROOT, "matrix: threads=%d flush=%s dledger_tps=%.0f dledger_p50=%.2f "
                    + "dledger_p99=%.2f ours_tps=%.0f ours_p50=%.2f ours_p99=%.2f ratio=%.2f errors=%d/%d",
                s.threads(), flushName(s), theirs.tps(), theirs.p50Ms(), theirs.p99Ms(), ours.tps(), ours.p50Ms(),
                ours.p99Ms(), ours.tps() / theirs.tps(), theirs.errors(), ours.errors());
            System.out.println(row);
            table.add(row);
            assertTrue(ours.appends() > 0 && theirs.appends() > 0, "a system acknowledged nothing: " + row);
        }

        for (String p : pipelined.split(",")) {
            String[] tp = p.trim().split("x");
            GroupBenchmark.Settings s = new GroupBenchmark.Settings(Integer.parseInt(tp[0]), SIZE, warmup, seconds,
                FlushMode.ASYNC, Integer.parseInt(tp[1]));
            CpuWindow cpu = CpuWindow.during(warmup, seconds);
            GroupBenchmark.Result ours = ours(s);
            String cpuLine = cpu.finish();
            System.out.println(ours.line() + " system=ours");
            String row = String.format(Locale.ROOT, "pipelined: threads=%d in_flight=%d entries_s=%.0f mb_s=%.1f "
                    + "p50=%.2f p99=%.2f errors=%d %s", s.threads(), s.pipeline(), ours.tps(),
                ours.megabytesPerSecond(), ours.p50Ms(), ours.p99Ms(), ours.errors(), cpuLine);
            System.out.println(row);
            table.add(row);
            assertTrue(ours.appends() > 0, "nothing acknowledged: " + row);
        }

        Path rawDir = Files.createTempDirectory("raw-disk");
        rawDir.toFile().deleteOnExit();
        for (boolean fsync : new boolean[] {false, true}) {
            double mbs = rawWriteMegabytesPerSecond(rawDir.resolve("raw-" + fsync), fsync, 10);
            String row = String.format(Locale.ROOT, "disk: raw sequential write, blocks of %d x %d bytes, fsync per "
                    + "block=%s: %.1f MB/s = %.0f entries/s of 1 KiB on one copy, %.0f entries/s with 3 copies on this "
                    + "disk", BLOCK_ENTRIES, ENTRY_ON_DISK, fsync, mbs, mbs * 1e6 / ENTRY_ON_DISK,
                mbs * 1e6 / ENTRY_ON_DISK / 3);
            System.out.println(row);
            table.add(row);
        }
        System.out.println("matrix summary (load " + loadAverage() + "):");
        table.forEach(System.out::println);
    }

    private static GroupBenchmark.Result ours(GroupBenchmark.Settings s) throws Exception {
        Path dir = Files.createTempDirectory("dledger-ours");
        try {
            return GroupBenchmark.run(s,
                id -> new FileNodeStorage(dir.resolve("dledger-" + id), StoreConfig.defaults(), s.flush(), 10));
        } finally {
            deleteTree(dir);
        }
    }

    /** Deletes a run's folder (runs write gigabytes). */
    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static String flushName(GroupBenchmark.Settings s) {
        return s.flush().name().toLowerCase(Locale.ROOT);
    }

    /** Writes blocks to a new file for {@code seconds}, fsyncing each when asked; the file is deleted after. */
    private static double rawWriteMegabytesPerSecond(Path file, boolean fsync, int seconds) throws IOException {
        ByteBuffer block = ByteBuffer.allocate(BLOCK_ENTRIES * ENTRY_ON_DISK);
        long written = 0;
        long start = System.nanoTime();
        long end = start + TimeUnit.SECONDS.toNanos(seconds);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            while (System.nanoTime() < end) {
                block.clear();
                while (block.hasRemaining()) {
                    written += ch.write(block, written);
                }
                if (fsync) {
                    ch.force(false);
                }
            }
            ch.force(false);
        } finally {
            Files.deleteIfExists(file);
        }
        return written / ((System.nanoTime() - start) / 1e9) / 1e6;
    }

    private static String loadAverage() {
        return String.format(Locale.ROOT, "%.2f", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
    }

    /**
     * The CPU this JVM (the three nodes and the client) and the whole machine used in the measured window: sampled by a
     * thread that waits out the warm-up, then reads the process CPU time and /proc/stat at both ends of the window.
     */
    private static final class CpuWindow {
        private final Thread sampler;
        private volatile String result = "cpu: not sampled";

        private CpuWindow(int warmup, int seconds) {
            sampler = new Thread(() -> {
                try {
                    TimeUnit.SECONDS.sleep(warmup);
                    long[] m0 = machineJiffies();
                    long p0 = processCpuNanos();
                    long w0 = System.nanoTime();
                    TimeUnit.SECONDS.sleep(seconds);
                    long[] m1 = machineJiffies();
                    double wall = System.nanoTime() - w0;
                    double processCores = (processCpuNanos() - p0) / wall;
                    double busy = m1[1] - m0[1] == 0 ? 0 : 1.0 - (double) (m1[0] - m0[0]) / (m1[1] - m0[1]);
                    int cores = Runtime.getRuntime().availableProcessors();
                    result = String.format(Locale.ROOT, "cpu: this jvm %.2f of %d cores, machine %.0f%% busy",
                        processCores, cores, busy * 100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (IOException e) {
                    result = "cpu: " + e;
                }
            }, "cpu-window");
            sampler.setDaemon(true);
        }

        static CpuWindow during(int warmup, int seconds) {
            CpuWindow w = new CpuWindow(warmup, seconds);
            w.sampler.start();
            return w;
        }

        String finish() throws InterruptedException {
            sampler.join(5000);
            return result;
        }

        private static long processCpuNanos() {
            return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
        }

        /** {idle + iowait, total} jiffies of all cores from the first line of /proc/stat. */
        private static long[] machineJiffies() throws IOException {
            String[] f = Files.readAllLines(Path.of("/proc/stat")).get(0).trim().split("\\s+");
            long total = 0;
            for (int i = 1; i < f.length; i++) {
                total += Long.parseLong(f[i]);
            }
            return new long[] {Long.parseLong(f[4]) + Long.parseLong(f[5]), total};
        }
    }
}
