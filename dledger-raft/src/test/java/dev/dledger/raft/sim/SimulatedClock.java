package dev.dledger.raft.sim;

/**
 * Simulated time: a counter of abstract time units that only the {@link SimulatedScheduler} moves forward. No code in
 * the simulation reads the wall clock. In the simulation a nominal tick lasts {@link #UNITS_PER_TICK} units.
 */
public final class SimulatedClock {

    /** Time units in one nominal tick of a node (each node's actual tick period is skewed around it). */
    public static final long UNITS_PER_TICK = 100;

    private long now;

    /** A clock at time 0. */
    public SimulatedClock() {
    }

    /** The current simulated time, in units. */
    public long now() {
        return now;
    }

    /**
     * Moves the clock to {@code time}.
     *
     * @throws IllegalArgumentException if {@code time} is in the past
     */
    public void advanceTo(long time) {
        if (time < now) {
            throw new IllegalArgumentException("time runs backwards: " + time + " < " + now);
        }
        now = time;
    }
}
