package dev.dledger.raft.sim;

import dev.dledger.raft.core.AppendEntriesRequest;
import dev.dledger.raft.transport.SnapshotChunk;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A simulated network between the nodes of one group. Each message gets a random delay (so messages overtake one
 * another: reordering), may be dropped, and may be duplicated (each copy with its own delay). Links can be cut one
 * way ({@link #cut}) or both ways ({@link #cutBoth}, {@link #isolate}); a message on a cut link is dropped both when
 * it is sent and when it would arrive. All randomness comes from the {@link Random} given at construction. Not
 * thread-safe.
 */
public final class SimulatedNetwork {

    /** Where delivered messages go: the receiving node's driver. */
    @FunctionalInterface
    public interface Receiver {
        /** Called at the delivery time of {@code m}, on the simulation thread. */
        void receive(String to, Object payload);
    }

    private final SimulatedScheduler scheduler;
    private final Random random;
    private final Receiver receiver;
    private final TreeSet<String> cutLinks = new TreeSet<>();
    /** AppendEntries requests on their way to each node. */
    private final TreeMap<String, Integer> appendsInFlight = new TreeMap<>();

    private double dropProbability;
    private double duplicateProbability;
    private long minDelay = 5;
    private long maxDelay = 60;
    private double slowProbability;
    private long slowMaxDelay = 400;

    /** Links whose messages are held back: "from>to" to {until, delay}. */
    private final Map<String, long[]> heldLinks = new HashMap<>();
    private long sent;
    private long dropped;
    private long duplicated;

    /** A network with no loss, no duplication and no cut link. */
    public SimulatedNetwork(SimulatedScheduler scheduler, Random random, Receiver receiver) {
        this.scheduler = scheduler;
        this.random = random;
        this.receiver = receiver;
    }

    /**
     * Sets the fault rates.
     *
     * @param drop      probability that a message is lost, in [0, 1]
     * @param duplicate probability that a message is delivered twice, in [0, 1]
     * @param slow      probability that a message takes a slow path (up to {@code slowMax} units)
     */
    public void setFaults(double drop, double duplicate, double slow) {
        this.dropProbability = drop;
        this.duplicateProbability = duplicate;
        this.slowProbability = slow;
    }

    /** Sets the delay range of a message in clock units: uniform in [min, max], or up to {@code slowMax} if slow. */
    public void setDelays(long min, long max, long slowMax) {
        if (min < 0 || max < min || slowMax < max) {
            throw new IllegalArgumentException("bad delays " + min + ".." + max + ", slow " + slowMax);
        }
        this.minDelay = min;
        this.maxDelay = max;
        this.slowMaxDelay = slowMax;
    }

    /** Cuts the link from {@code from} to {@code to} (one-way partition). */
    public void cut(String from, String to) {
        cutLinks.add(from + ">" + to);
    }

    /** Cuts both directions between {@code a} and {@code b}. */
    public void cutBoth(String a, String b) {
        cut(a, b);
        cut(b, a);
    }

    /** Cuts every link between {@code node} and each of {@code others} both ways. */
    public void isolate(String node, Iterable<String> others) {
        for (String o : others) {
            if (!o.equals(node)) {
                cutBoth(node, o);
            }
        }
    }

    /** Restores the link from {@code from} to {@code to}. */
    public void heal(String from, String to) {
        cutLinks.remove(from + ">" + to);
    }

    /** Restores every link, and lets what a held link sends from now on through at the usual delays. */
    public void healAll() {
        cutLinks.clear();
        heldLinks.clear();
    }

    /**
     * Holds back what {@code from} sends to {@code to} until {@code until}: each such message arrives {@code delay}
     * units after it was sent, or later if its own delay is longer (a queue that lets them through late, behind what
     * the receiver heard from others meanwhile). Draws nothing from the random source.
     */
    public void hold(String from, String to, long until, long delay) {
        heldLinks.put(from + ">" + to, new long[] {until, delay});
    }

    /** Whether the link from {@code from} to {@code to} is up. */
    public boolean connected(String from, String to) {
        return cutLinks.isEmpty() || !cutLinks.contains(from + ">" + to);
    }

    /** The cut links, as "from>to", sorted. */
    public String describeCuts() {
        return cutLinks.toString();
    }

    /**
     * Sends {@code payload} (a Raft message or a snapshot chunk) from {@code from} to {@code to}: unless dropped or cut,
     * it is delivered to the {@link Receiver} after a random delay, and maybe a second time (late, out of order).
     */
    public void send(String from, String to, Object payload) {
        sent++;
        if (!connected(from, to) || (dropProbability > 0 && random.nextDouble() < dropProbability)) {
            dropped++;
            return;
        }
        scheduleDelivery(from, to, payload);
        if (duplicateProbability > 0 && random.nextDouble() < duplicateProbability) {
            duplicated++;
            scheduleDelivery(from, to, payload);
        }
    }

    private void scheduleDelivery(String from, String to, Object payload) {
        long delay;
        if (slowProbability > 0 && random.nextDouble() < slowProbability) {
            delay = maxDelay + (long) (random.nextDouble() * (slowMaxDelay - maxDelay));
        } else {
            delay = minDelay + (long) (random.nextDouble() * (maxDelay - minDelay + 1));
        }
        long[] held = heldLinks.isEmpty() ? null : heldLinks.get(from + ">" + to);
        if (held != null && scheduler.clock().now() < held[0]) {
            delay = Math.max(delay, held[1]);
        }
        boolean append = payload instanceof AppendEntriesRequest;
        if (append) {
            appendsInFlight.merge(to, 1, Integer::sum);
        }
        scheduler.schedule(delay, "DELIVER", to, describe(payload), () -> {
            if (append) {
                appendsInFlight.merge(to, -1, Integer::sum);
            }
            if (connected(from, to)) {
                receiver.receive(to, payload);
            } else {
                dropped++;
            }
        });
    }

    /** A deterministic one-line description (no identity hash of a byte array). */
    private static String describe(Object payload) {
        if (payload instanceof SnapshotChunk c) {
            return "SnapshotChunk[" + c.from() + "->" + c.to() + " " + c.request().snapshot().index() + "@"
                + c.request().snapshot().term() + " t" + c.request().term() + (c.ack() ? " ack next=" : " offset=")
                + c.offset() + " " + c.data().length + "/" + c.total() + "B]";
        }
        return String.valueOf(payload);
    }

    /** The AppendEntries requests on their way to {@code to} now. */
    public int appendsInFlight(String to) {
        return appendsInFlight.getOrDefault(to, 0);
    }

    /** Messages handed to {@link #send}. */
    public long sentCount() {
        return sent;
    }

    /** Messages lost to drops and cut links. */
    public long droppedCount() {
        return dropped;
    }

    /** Messages delivered twice. */
    public long duplicatedCount() {
        return duplicated;
    }
}
