package dev.dledger.migration;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A progress bar on one line of stderr: the share done, the rate in MB/s and the time left, redrawn at most five
 * times a second. Not thread-safe: one phase, one thread.
 */
final class Progress {

    private static final long REDRAW_NANOS = 200_000_000L;
    private static final int WIDTH = 30;

    private final PrintStream out;
    private final String phase;
    private final long totalBytes;
    private final long startNanos = System.nanoTime();
    private long lastDraw;
    private long done;

    Progress(PrintStream out, String phase, long totalBytes) {
        this.out = out;
        this.phase = phase;
        this.totalBytes = Math.max(1, totalBytes);
    }

    /** Records that {@code bytes} more are done. */
    void advance(long bytes) {
        done += bytes;
        long now = System.nanoTime();
        if (now - lastDraw >= REDRAW_NANOS) {
            lastDraw = now;
            draw(now, false);
        }
    }

    /** Draws the final state and ends the line; returns the rate in MB/s. */
    double finish() {
        long now = System.nanoTime();
        draw(now, true);
        return rate(now);
    }

    /** Ends the line of a bar that was drawn, so that an error printed next starts a line of its own. */
    void abandon() {
        if (lastDraw != 0) {
            out.println();
            out.flush();
        }
    }

    long done() {
        return done;
    }

    private double rate(long now) {
        double secs = Math.max(1e-9, (now - startNanos) / 1e9);
        return done / 1e6 / secs;
    }

    private void draw(long now, boolean last) {
        double share = Math.min(1.0, (double) done / totalBytes);
        int filled = (int) (share * WIDTH);
        double rate = rate(now);
        long leftSecs = rate <= 0 ? 0 : (long) ((totalBytes - Math.min(done, totalBytes)) / 1e6 / rate);
        String bar = "#".repeat(filled) + ".".repeat(WIDTH - filled);
        out.print(String.format(Locale.ROOT, "\r%-9s [%s] %3d%% %8.1f MB/s  %s left", phase, bar,
            (int) (share * 100), rate, last ? "00:00" : String.format(Locale.ROOT, "%02d:%02d", leftSecs / 60,
                leftSecs % 60)));
        if (last) {
            out.println();
        }
        out.flush();
    }
}
