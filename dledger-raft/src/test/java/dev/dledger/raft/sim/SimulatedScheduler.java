package dev.dledger.raft.sim;

import java.util.PriorityQueue;

/**
 * A discrete-event scheduler over a {@link SimulatedClock}. Events run one at a time in the order (time, sequence
 * number): two events at the same time run in the order they were scheduled, so a run is a deterministic function of
 * its seed. Not thread-safe: the whole simulation runs on one thread.
 */
public final class SimulatedScheduler {

    /** The work of one event. */
    @FunctionalInterface
    public interface Action {
        /** Runs the event; called at its time, on the simulation thread. */
        void run();
    }

    /**
     * A scheduled event.
     *
     * @param time    when it runs, in clock units
     * @param seq     the scheduling order, breaking ties of time
     * @param kind    a short name for traces (TICK, DELIVER, CRASH, ...)
     * @param node    the node it concerns, or "-"
     * @param subject an object whose {@code toString} describes the event in traces (a message, say), or null;
     *                rendered only when the event runs
     * @param action  the work
     */
    public record Event(long time, long seq, String kind, String node, Object subject, Action action)
        implements Comparable<Event> {

        @Override
        public int compareTo(Event o) {
            int c = Long.compare(time, o.time);
            return c != 0 ? c : Long.compare(seq, o.seq);
        }

        /** A one-line description: kind, node and subject. */
        public String describe() {
            return subject == null ? kind + " " + node : kind + " " + node + " " + subject;
        }
    }

    private final SimulatedClock clock;
    private final PriorityQueue<Event> queue = new PriorityQueue<>();
    private long nextSeq;

    /** A scheduler driving {@code clock}. */
    public SimulatedScheduler(SimulatedClock clock) {
        this.clock = clock;
    }

    /** The clock this scheduler moves. */
    public SimulatedClock clock() {
        return clock;
    }

    /** Schedules {@code action} to run {@code delay} units from now ({@code delay >= 0}). */
    public Event schedule(long delay, String kind, String node, Object subject, Action action) {
        if (delay < 0) {
            throw new IllegalArgumentException("negative delay " + delay);
        }
        Event e = new Event(clock.now() + delay, nextSeq++, kind, node, subject, action);
        queue.add(e);
        return e;
    }

    /** Whether any event is scheduled. */
    public boolean hasNext() {
        return !queue.isEmpty();
    }

    /** The time of the next event, or {@link Long#MAX_VALUE} when none is scheduled. */
    public long nextTime() {
        Event e = queue.peek();
        return e == null ? Long.MAX_VALUE : e.time();
    }

    /**
     * Removes the next event and moves the clock to its time; the caller runs it.
     *
     * @throws IllegalStateException if no event is scheduled
     */
    public Event poll() {
        Event e = queue.poll();
        if (e == null) {
            throw new IllegalStateException("no event scheduled");
        }
        clock.advanceTo(e.time());
        return e;
    }

    /** The number of scheduled events. */
    public int size() {
        return queue.size();
    }
}
