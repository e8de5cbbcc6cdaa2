package dev.dledger.raft.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.dledger.raft.core.Entry;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;
import org.junit.jupiter.api.io.TempDir;

/** kill -9 of a child JVM in the middle of appends, many times: every entry it reported durable survives. */
class StoreKillTest {

    static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(64 * 1024, 32 * 1024);

    @TempDir
    Path dir;

    @Test
    void everyDurableEntrySurvivesRepeatedKillMinusNine() throws Exception {
        long seed = Long.getLong("kill.seed", System.nanoTime());
        int kills = Integer.getInteger("kill.count", 8);
        assertEquals(kills, killRepeatedly(seed, kills, Long.MAX_VALUE), "seed " + seed + ": children killed");
    }

    /** Negative control: a child that ends on its own was not killed, and the harness must say so. */
    @Test
    void aChildThatEndsOnItsOwnIsNotCountedAsKilled() {
        AssertionFailedError e = assertThrows(AssertionFailedError.class, () -> killRepeatedly(1, 1, 30));
        assertTrue(e.getMessage().contains("ended on its own"), e.getMessage());
    }

    /**
     * Starts a child appender {@code kills} times and kills it with SIGKILL each time, once it made some entries
     * durable; after each kill the store must hold every durable entry.
     *
     * @param childExitsAfter passed to the child: it ends on its own once this index is durable
     * @return the children killed (every one)
     */
    private int killRepeatedly(long seed, int kills, long childExitsAfter) throws Exception {
        Random random = new Random(seed);
        long maxDurable = -1;
        long checked = 0;
        int killed = 0;
        for (int k = 0; k < kills; k++) {
            ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), StoreAppenderMain.class.getName(), dir.toString(),
                Long.toString(random.nextLong()), Long.toString(childExitsAfter));
            pb.redirectErrorStream(true);
            Process p = pb.start();
            AtomicLong durable = new AtomicLong(-1);
            AtomicLong reopenedAt = new AtomicLong(Long.MIN_VALUE);
            Thread reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(),
                    StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        if (line.startsWith("durable ")) {
                            durable.set(Long.parseLong(line.substring(8)));
                        } else if (line.startsWith("opened ")) {
                            reopenedAt.set(Long.parseLong(line.substring(7)));
                        }
                    }
                } catch (java.io.IOException ignored) {
                    // the child was killed
                }
            });
            reader.start();
            long target = maxDurable + 20 + random.nextInt(400);
            Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> durable.get() >= target || !p.isAlive());
            // Only a child still running when the kill comes counts: one that ended on its own (a crash, an exit)
            // proves nothing about surviving a kill.
            if (!p.isAlive()) {
                reader.join(5000);
                fail("seed " + seed + ", kill " + k + ": the child ended on its own with exit code " + p.exitValue()
                    + " before the kill, at durable index " + durable.get());
            }
            p.destroyForcibly();
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
            assertEquals(137, p.exitValue(), "seed " + seed + ": the child died of SIGKILL");
            killed++;
            reader.join(5000);
            assertTrue(reopenedAt.get() >= maxDurable, "seed " + seed + ": the child reopened at "
                + reopenedAt.get() + " but " + maxDurable + " was durable");
            maxDurable = Math.max(maxDurable, durable.get());

            try (SegmentedLogStore s = SegmentedLogStore.open(dir, CONFIG)) {
                assertTrue(s.lastIndex() >= maxDurable, "seed " + seed + ", kill " + k + ": lost durable entries, "
                    + "last " + s.lastIndex() + " < " + maxDurable);
                SegmentedLogStore.VerifyReport report = s.verify();
                assertNull(report.problem(), "seed " + seed + ": " + report.problem());
                List<Entry> all = s.entries(0, s.lastIndex() + 1, Long.MAX_VALUE);
                for (Entry e : all) {
                    assertArrayEquals(StoreAppenderMain.body(e.index()), e.data(), "entry " + e.index());
                }
                assertEquals(s.lastIndex() + 1, all.size());
                checked += all.size();
            }
        }
        System.out.println("kill test: seed " + seed + ", " + killed + " kills, last durable index " + maxDurable
            + ", " + checked + " entries checked");
        return killed;
    }
}
