package dev.dledger.raft.sim;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * Records a run's trace: a 64-bit hash over every line (so two runs of one seed can be compared cheaply) and the last
 * lines in a ring buffer (printed for a failing seed). A line is an event (time, kind, node, message) or an
 * observation (a role or term change). Not thread-safe.
 */
public final class TraceRecorder {

    private final int capacity;
    private final ArrayDeque<Line> tail = new ArrayDeque<>();
    private long hash = 0xcbf29ce484222325L;
    private long lines;

    /** A recorder keeping the last {@code capacity} lines. */
    public TraceRecorder(int capacity) {
        this.capacity = capacity;
    }

    /** Records one line at simulated time {@code time}: hashed and kept in the tail. */
    public void record(long time, String line) {
        hashOnly(time, line);
        keepInTail(time, line);
    }

    /** Adds a line to the hash only (a routine event that the tail would be cluttered with). */
    public void hashOnly(long time, String line) {
        long h = hash ^ time;
        h *= 0x100000001b3L;
        for (int i = 0; i < line.length(); i++) {
            h = (h ^ line.charAt(i)) * 0x100000001b3L;
        }
        hash = h ^ (h >>> 29);
        lines++;
    }

    /** Adds a line to the tail only (it was hashed already). */
    public void keepInTail(long time, String line) {
        if (tail.size() == capacity) {
            tail.removeFirst();
        }
        tail.addLast(new Line(time, line));
    }

    /** The hash of every line recorded so far. */
    public long hash() {
        return hash;
    }

    /** The number of lines recorded. */
    public long lineCount() {
        return lines;
    }

    /** The last lines, oldest first. */
    public List<String> tail() {
        List<String> out = new ArrayList<>();
        for (Line l : tail) {
            out.add(String.format("%8d  %s", l.time(), l.text()));
        }
        return out;
    }

    private record Line(long time, String text) {
    }
}
