package dev.dledger.raft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LogCommandsTest {

    private static final StoreConfig SMALL = StoreConfig.defaults().withFileSizes(4096, 32 * 64);

    @TempDir
    Path dir;

    private String[] run(int expected, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = DledgerCommand.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        assertEquals(expected, code, "out: " + out + " err: " + err);
        return new String[] {out.toString(), err.toString()};
    }

    private void write(int count) {
        List<dev.dledger.raft.core.Entry> entries = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            entries.add(new dev.dledger.raft.core.Entry(i, 1, dev.dledger.raft.core.EntryType.NORMAL,
                ("body-" + i + "-" + "z".repeat(i % 70)).getBytes()));
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries);
            s.sync();
        }
    }

    @Test
    void verifyReportsEveryEntryOk() {
        write(250);
        String[] r = run(0, "log", "verify", "--dir", dir.toString());
        assertTrue(r[0].contains("verify: 250 entries, indexes 0..249, OK"), r[0]);
    }

    @Test
    void verifyNamesTheFirstProblemAndFails() throws IOException {
        write(250);
        Path first = dir.resolve("data").resolve("00000000000000000000");
        try (RandomAccessFile f = new RandomAccessFile(first.toFile(), "rw")) {
            f.seek(48 + 3);
            f.write('Q');
        }
        String[] r = run(1, "log", "verify", "--dir", dir.toString());
        assertTrue(r[1].contains("body CRC of entry 0"), r[1]);
        assertTrue(r[1].contains("00000000000000000000"), r[1]);
    }

    @Test
    void dumpPrintsOneLinePerEntry() {
        write(30);
        String[] r = run(0, "log", "dump", "--dir", dir.toString(), "--from", "10", "--count", "5");
        List<String> lines = r[0].lines().toList();
        assertEquals(5, lines.size());
        assertTrue(lines.get(0).startsWith("index=10 term=1 pos="), lines.get(0));
        assertTrue(lines.get(4).startsWith("index=14 "), lines.get(4));
    }

    @Test
    void dumpAndVerifyReportEntryTypes() {
        List<dev.dledger.raft.core.Entry> entries = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            dev.dledger.raft.core.EntryType type = i == 0 ? dev.dledger.raft.core.EntryType.NOOP
                : i == 5 ? dev.dledger.raft.core.EntryType.CONFIG : dev.dledger.raft.core.EntryType.NORMAL;
            byte[] body = i == 0 ? null : i == 5 ? dev.dledger.raft.core.Membership.of("a").encode() : ("b" + i).getBytes();
            entries.add(new dev.dledger.raft.core.Entry(i, 1, type, body));
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SMALL)) {
            s.append(entries);
            s.sync();
        }
        List<String> lines = run(0, "log", "dump", "--dir", dir.toString(), "--count", "6")[0].lines().toList();
        assertTrue(lines.get(0).endsWith("type=NOOP"), lines.get(0));
        assertTrue(lines.get(1).endsWith("type=NORMAL"), lines.get(1));
        assertTrue(lines.get(5).endsWith("type=CONFIG"), lines.get(5));
        String out = run(0, "log", "verify", "--dir", dir.toString())[0];
        assertTrue(out.contains("types: NORMAL=28 NOOP=1 CONFIG=1"), out);
    }

    @Test
    void folderThatIsNotAStoreGetsAClearError() {
        String[] r = run(2, "log", "verify", "--dir", dir.resolve("nothing").toString());
        assertTrue(r[1].contains("is not a store"), r[1]);
    }

    @Test
    void multiPathStoreIsVerifiedAndDumpedWithItsFolders() {
        Path a = dir.resolve("a");
        Path b = dir.resolve("b");
        Path node = dir.resolve("node");
        List<dev.dledger.raft.core.Entry> entries = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            entries.add(new dev.dledger.raft.core.Entry(i, 1, dev.dledger.raft.core.EntryType.NORMAL,
                ("multi-" + i + "-" + "y".repeat(i % 50)).getBytes()));
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(node, SMALL.withDataStorePaths(List.of(a, b)))) {
            s.append(entries);
            s.sync();
        }
        String paths = a + "," + b;
        String out = run(0, "log", "verify", "--dir", node.toString(), "--data-paths", paths)[0];
        assertTrue(out.contains("verify: 300 entries, indexes 0..299, OK"), out);
        List<String> lines = run(0, "log", "dump", "--dir", node.toString(), "--data-paths", paths, "--from", "295")[0]
            .lines().toList();
        assertEquals(5, lines.size(), lines.toString());
        assertTrue(lines.get(4).startsWith("index=299 term=1 "), lines.get(4));
        String err = run(2, "log", "verify", "--dir", node.toString())[1];
        assertTrue(err.contains("a multi-path store needs --data-paths"), err);
        err = run(2, "log", "verify", "--dir", node.toString(), "--data-paths", a + ",," + b)[1];
        assertTrue(err.contains("empty folder in the path list"), err);
    }

    @Test
    void readOnlyFolderIsReadByVerify() throws IOException {
        Path node = dir.resolve("node");
        List<dev.dledger.raft.core.Entry> entries = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            entries.add(new dev.dledger.raft.core.Entry(i, 1, dev.dledger.raft.core.EntryType.NORMAL,
                ("ro-" + i + "-" + "x".repeat(i % 60)).getBytes()));
        }
        try (SegmentedLogStore s = SegmentedLogStore.open(node, SMALL)) {
            s.append(entries);
            s.sync();
        }
        Path ro = dir.resolve("ro");
        java.nio.file.Files.move(node.resolve("data"), ro);
        java.nio.file.Files.createDirectories(node.resolve("data"));
        String out = run(0, "log", "verify", "--dir", node.toString(), "--read-only-dirs", ro.toString())[0];
        assertTrue(out.contains("verify: 200 entries, indexes 0..199, OK"), out);
    }
}
