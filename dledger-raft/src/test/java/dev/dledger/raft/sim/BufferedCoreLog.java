package dev.dledger.raft.sim;

import dev.dledger.raft.core.CoreLog;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link CoreLog} that keeps the last lines of one node in memory, each prefixed with the simulated time and the
 * node id, so that a failing seed can print them. Nothing is printed by the sink itself. Not thread-safe.
 */
public final class BufferedCoreLog implements CoreLog {

    private final String node;
    private final SimulatedClock clock;
    private final boolean debug;
    private final int capacity;
    private final ArrayDeque<String> lines = new ArrayDeque<>();

    /**
     * A sink for {@code node}.
     *
     * @param debug    whether debug lines are kept (the core then builds them, which costs time)
     * @param capacity how many of the most recent lines are kept
     */
    public BufferedCoreLog(String node, SimulatedClock clock, boolean debug, int capacity) {
        this.node = node;
        this.clock = clock;
        this.debug = debug;
        this.capacity = capacity;
    }

    @Override
    public boolean debugEnabled() {
        return debug;
    }

    @Override
    public void info(String line) {
        add("INFO ", line);
    }

    @Override
    public void debug(String line) {
        if (debug) {
            add("DEBUG", line);
        }
    }

    /** Adds a line written by the driver (crash, restart, fault) to the same buffer. */
    public void driver(String line) {
        add("SIM  ", line);
    }

    private void add(String level, String line) {
        if (lines.size() == capacity) {
            lines.removeFirst();
        }
        lines.addLast("t=" + clock.now() + " " + node + " " + level + " " + line);
    }

    /** The buffered lines, oldest first. */
    public List<String> lines() {
        return new ArrayList<>(lines);
    }
}
