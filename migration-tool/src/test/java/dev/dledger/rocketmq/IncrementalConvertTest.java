package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.migration.MigrateCommand;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Incremental conversion: {@code convert --live} while the master still runs (its lock held, its abort file there)
 * takes the sealed CommitLog files; after the master stopped, the same {@code convert} without {@code --live} takes
 * only the files written since, checks the converted prefix by its last entry, and the result equals a conversion
 * made in one run.
 */
class IncrementalConvertTest {

    private static final int FILE_SIZE = 1 << 20;
    private static final long MESSAGES = 60_000;
    private static final String PEERS = "n0-127.0.0.1:1;n1-127.0.0.1:2;n2-127.0.0.1:3";

    @TempDir
    Path dir;

    private record Run(int code, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = MigrateCommand.run(new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8), args);
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static String[] convert(Path from, Path to, boolean live) {
        List<String> a = new java.util.ArrayList<>(List.of("convert", "--from", from.toString(), "--to", to.toString(),
            "--group", "g", "--peers", PEERS, "--self-id", "n0", "--mode", "rewrite", "--index-hash-slots", "1000",
            "--index-max-items", "4000"));
        if (live) {
            a.add("--live");
        }
        return a.toArray(String[]::new);
    }

    @Test
    void secondConvertTakesOnlyWhatWasAppendedSinceTheLivePass() throws Exception {
        Path full = dir.resolve("full");
        CommitLogGenerator.write(full, "T", 3, MESSAGES, 40, FILE_SIZE);
        List<Path> files;
        try (var s = Files.list(full.resolve("commitlog"))) {
            files = s.sorted().toList();
        }
        assertTrue(files.size() >= 6, "files: " + files.size());
        // The running master: the first files written, the last of them still being written; lock held, abort there.
        Path master = dir.resolve("master");
        Files.createDirectories(master.resolve("commitlog"));
        int liveFiles = files.size() / 2;
        for (Path f : files.subList(0, liveFiles)) {
            Files.copy(f, master.resolve("commitlog").resolve(f.getFileName()));
        }
        Files.writeString(master.resolve("abort"), "");
        Path to = dir.resolve("n0");
        try (FileChannel ch = FileChannel.open(master.resolve("lock"), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE); FileLock lock = ch.lock()) {
            Run refused = run(convert(master, to, false));
            assertEquals(2, refused.code(), "a running master is refused without --live: " + refused.err());
            Run live = run(convert(master, to, true));
            assertEquals(0, live.code(), live.err());
            assertTrue(live.out().contains("live pass: "), live.out());
            assertEquals(liveFiles - 1L, converted(live)[1] / FILE_SIZE, "only the sealed files: " + live.out());
            assertFalse(Files.exists(to.resolve("dledger-n0")), "nothing is in place before the last run");
        }
        // The master wrote on and stopped: the rest of the files, the one being written complete now.
        for (Path f : files.subList(liveFiles - 1, files.size())) {
            Files.copy(f, master.resolve("commitlog").resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        Files.delete(master.resolve("abort"));
        Run rest = run(convert(master, to, false));
        assertEquals(0, rest.code(), rest.err());
        assertTrue(rest.out().contains("going on after"), rest.out());
        long[] tail = converted(rest);
        assertEquals(files.size() - liveFiles + 1L, tail[1] / FILE_SIZE, "only the files since: " + rest.out());
        assertTrue(tail[0] < MESSAGES * 2 / 3, "only the messages since: " + rest.out());

        // The same as one conversion of the stopped master.
        Path once = dir.resolve("once");
        Run r = run(convert(master, once, false));
        assertEquals(0, r.code(), r.err());
        assertEquals(MESSAGES, converted(r)[0]);
        java.util.Map<String, Integer> one = digest(once);
        java.util.Map<String, Integer> inc = digest(to);
        List<String> differ = new java.util.ArrayList<>();
        for (String f : new java.util.TreeSet<>(one.keySet())) {
            if (!one.get(f).equals(inc.get(f))) {
                differ.add(f);
            }
        }
        for (String f : inc.keySet()) {
            if (!one.containsKey(f)) {
                differ.add(f + " (only incremental)");
            }
        }
        assertEquals(List.of(), differ, "an incremental conversion differs from one made in one run");
        Path node = to.resolve("dledger-n0");
        try (SegmentedLogStore s = SegmentedLogStore.open(node, StoreConfig.detect(node, StoreConfig.defaults()))) {
            assertEquals(MESSAGES + 1, s.lastIndex());
            assertEquals(EntryType.CONFIG, s.info(MESSAGES + 1).type());
        }
        Run v = run("verify", "--from", master.toString(), "--to", to.toString());
        assertEquals(0, v.code(), v.err() + v.out());
    }

    /** {messages, bytes} of a convert's summary line. */
    private static long[] converted(Run r) {
        Matcher m = Pattern.compile("converted: (\\d+) messages, (\\d+) bytes").matcher(r.out());
        assertTrue(m.find(), r.out());
        return new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2))};
    }

    /** Every file of a converted store with its bytes' hash (a properties file's date line left out). */
    private static java.util.Map<String, Integer> digest(Path root) throws Exception {
        java.util.Map<String, Integer> out = new java.util.TreeMap<>();
        try (var s = Files.walk(root)) {
            for (Path f : s.filter(Files::isRegularFile).toList()) {
                byte[] bytes = Files.readAllBytes(f);
                if (f.getFileName().toString().equals("crc-from")) {
                    // A properties file: its first line is the date it was written.
                    bytes = new String(bytes, StandardCharsets.ISO_8859_1).replaceAll("(?m)^#.*\n", "")
                        .getBytes(StandardCharsets.ISO_8859_1);
                }
                out.put(root.relativize(f).toString(), java.util.Arrays.hashCode(bytes));
            }
        }
        return out;
    }
}
