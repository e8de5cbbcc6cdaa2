package dev.dledger.raft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's main job on a small scale: write, read back, kill the leader, nothing lost. */
class DemoCommandTest {

    @TempDir
    Path dir;

    @Test
    void demoLosesNothingAcrossALeaderKill() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = DledgerCommand.execute(new PrintWriter(out, true), new PrintWriter(err, true), "demo", "--entries",
            "300", "--store-dir", dir.toString());
        assertEquals(0, code, out + " " + err);
        assertTrue(out.toString().contains("read back 300 of 300"), out.toString());
        assertTrue(out.toString().contains("demo: sent 301, read 301, lost 0, failover "), out.toString());
    }
}
