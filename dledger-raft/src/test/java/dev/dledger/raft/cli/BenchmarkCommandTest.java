package dev.dledger.raft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code dledger benchmark} on a small scale: closed loop and pipelined, and a bad option named. */
class BenchmarkCommandTest {

    private static final Pattern LINE = Pattern.compile(
        "benchmark: threads=(\\d+) pipeline=(\\d+) size=64 flush=async tps=(\\d+) mb_s=\\S+ p50_ms=\\S+ p99_ms=\\S+ "
            + "errors=(\\d+)");

    @TempDir
    Path dir;

    private String run(int expectedCode, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = DledgerCommand.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        assertEquals(expectedCode, code, out + " " + err);
        return out + err.toString();
    }

    @Test
    void pipelinedRunKeepsManyAppendsInFlightAndReportsThem() {
        String out = run(0, "benchmark", "--threads", "2", "--pipeline", "16", "--size", "64", "--warmup", "0",
            "--seconds", "1", "--store-dir", dir.resolve("p").toString());
        Matcher m = LINE.matcher(out);
        assertTrue(m.find(), out);
        assertEquals("2", m.group(1));
        assertEquals("16", m.group(2));
        assertTrue(Long.parseLong(m.group(3)) > 0, "no append acknowledged: " + out);
        assertEquals("0", m.group(4), out);
    }

    @Test
    void closedLoopRunReportsPipelineOne() {
        String out = run(0, "benchmark", "--threads", "1", "--size", "64", "--warmup", "0", "--seconds", "1",
            "--store-dir", dir.resolve("c").toString());
        Matcher m = LINE.matcher(out);
        assertTrue(m.find(), out);
        assertEquals("1", m.group(2));
        assertTrue(Long.parseLong(m.group(3)) > 0, "no append acknowledged: " + out);
    }

    @Test
    void pipelineBelowOneIsRefusedNamingTheOption() {
        String out = run(2, "benchmark", "--pipeline", "0", "--store-dir", dir.resolve("x").toString());
        assertTrue(out.contains("--pipeline"), out);
    }
}
