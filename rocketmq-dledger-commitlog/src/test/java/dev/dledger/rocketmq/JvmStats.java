package dev.dledger.rocketmq;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The threads and the live heap of a running child JVM, asked with the JDK's {@code jcmd} (the one next to the
 * {@code java} running the tests): {@code Thread.print} for the thread names, {@code GC.run} then
 * {@code GC.heap_info} for the heap in use after a full collection.
 *
 * @param threads  the names of the process's Java threads
 * @param heapUsed bytes of heap in use after a full collection
 */
record JvmStats(List<String> threads, long heapUsed) {

    private static final Pattern THREAD = Pattern.compile("^\"(.*)\" #\\d+");
    private static final Pattern USED = Pattern.compile("(?:generation|space|garbage-first heap)\\s+total \\d+K, "
        + "used (\\d+)K");

    /** The threads of the Raft library: driver loops, fsync threads (shared or per node), blocking work. */
    static final Predicate<String> RAFT_THREAD = n -> n.startsWith("raft-") || n.startsWith("flush-")
        || n.startsWith("sync-");

    /** Asks the process {@code pid}. */
    static JvmStats of(long pid) throws IOException, InterruptedException {
        List<String> names = new ArrayList<>();
        for (String line : jcmd(pid, "Thread.print")) {
            Matcher m = THREAD.matcher(line);
            if (m.find()) {
                names.add(m.group(1));
            }
        }
        jcmd(pid, "GC.run");
        long used = 0;
        for (String line : jcmd(pid, "GC.heap_info")) {
            Matcher m = USED.matcher(line);
            if (m.find()) {
                used += Long.parseLong(m.group(1)) * 1024;
            }
        }
        if (names.isEmpty() || used == 0) {
            throw new IllegalStateException("jcmd " + pid + " gave no threads or no heap (" + names.size()
                + " threads, " + used + " bytes)");
        }
        return new JvmStats(List.copyOf(names), used);
    }

    /** How many of the threads {@code which} names. */
    long count(Predicate<String> which) {
        return threads.stream().filter(which).count();
    }

    private static List<String> jcmd(long pid, String command) throws IOException, InterruptedException {
        Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        Process p = new ProcessBuilder(jcmd.toString(), Long.toString(pid), command).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new IllegalStateException("jcmd " + pid + " " + command + " failed: "
                + new String(out, StandardCharsets.UTF_8).lines().limit(3).toList());
        }
        return new String(out, StandardCharsets.UTF_8).lines().toList();
    }
}
