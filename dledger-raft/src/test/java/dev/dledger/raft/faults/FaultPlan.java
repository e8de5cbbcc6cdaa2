package dev.dledger.raft.faults;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * The faults of a run, drawn from its seed before the run starts: the same seed, node count and duration give the
 * same plan, which is printed when a run fails so that it can be replayed. Only the targets named {@code leader}
 * are resolved at run time (to the node leading then; to the planned fallback when there is none).
 *
 * <p>A plan is a sequence of steps. A step puts one fault, sometimes two at once, in force for its hold time, then
 * lifts them; a gap of normal operation follows.
 */
final class FaultPlan {

    /** The kinds of fault. */
    enum Kind {
        /** SIGKILL a node, restart it when the step ends. */
        KILL,
        /** SIGSTOP a node (a paused leader when it leads), SIGCONT when the step ends. */
        PAUSE,
        /** Cut the minority (the target and others) from the majority, both ways. */
        PARTITION,
        /** Two sides that cannot talk to each other, and one node (the bridge) that talks to both. */
        BRIDGE,
        /** Cut what the target sends to everyone, or what everyone sends to it: one direction only. */
        ONE_WAY,
        /** Add latency to every link of the target. */
        DELAY,
        /** Remove the target from the voters, add it back when the step ends. */
        REMOVE_MEMBER,
        /** Ask the leader to hand leadership to the target (done at once). */
        TRANSFER
    }

    /** The target that is resolved at run time to the node leading then. */
    static final String LEADER = "leader";

    /**
     * One planned fault.
     *
     * @param kind     what it does
     * @param target   a node id, or {@link #LEADER}
     * @param fallback the node used when the target is {@link #LEADER} and no leader is found
     * @param order    every node in a planned order; the resolved target is moved to the front, then the sides of a
     *                 partition or bridge are taken from the front
     * @param size     the minority's size (PARTITION)
     * @param drop     whether cut links reset connections (true) or stall them (false)
     * @param inbound  ONE_WAY: cut what the others send to the target (true) or what it sends (false)
     * @param delayMs  DELAY: milliseconds added per link and direction
     */
    record Fault(Kind kind, String target, String fallback, List<String> order, int size, boolean drop,
                 boolean inbound, long delayMs) {

        /** The fault in words, with {@code resolved} as its target. */
        String describe(String resolved) {
            String who = target.equals(LEADER) ? resolved + " (leader)" : resolved;
            String how = drop ? "drop" : "blackhole";
            switch (kind) {
                case KILL:
                    return "kill -9 " + who;
                case PAUSE:
                    return "SIGSTOP " + who;
                case PARTITION:
                    return "partition: minority of " + size + " with " + who + " (" + how + ")";
                case BRIDGE:
                    return "bridge partition with " + who + " at one end (" + how + ")";
                case ONE_WAY:
                    return "one-way: " + (inbound ? "nothing reaches " + who : who + " reaches nobody") + " (" + how
                        + ")";
                case DELAY:
                    return "delay " + delayMs + " ms on every link of " + who;
                case REMOVE_MEMBER:
                    return "remove voter " + who;
                default:
                    return "leadership transfer to " + who;
            }
        }
    }

    /**
     * A step: its faults start at {@code atMs} (from the start of the faults) and are lifted {@code holdMs} later.
     *
     * @param number the step's number, from 1
     * @param atMs   when it starts, in milliseconds from the start of the faults
     * @param holdMs how long its faults stay
     * @param gapMs  normal operation after it
     * @param faults one or two faults
     */
    record Step(int number, long atMs, long holdMs, long gapMs, List<Fault> faults) {
    }

    private final long seed;
    private final List<Step> steps;

    private FaultPlan(long seed, List<Step> steps) {
        this.seed = seed;
        this.steps = List.copyOf(steps);
    }

    /**
     * Draws the plan of a run.
     *
     * @param seed       the run's seed
     * @param nodes      the node ids
     * @param durationMs how long faults are injected; steps start only before that
     * @param kinds      the kinds to draw from (all for a normal run)
     * @return the plan
     * @throws IllegalArgumentException if {@code kinds} is empty
     */
    static FaultPlan draw(long seed, List<String> nodes, long durationMs, Set<Kind> kinds) {
        if (kinds.isEmpty()) {
            throw new IllegalArgumentException("no fault kinds to draw from");
        }
        Random random = new Random(seed);
        List<Step> steps = new ArrayList<>();
        long at = 1_000 + random.nextInt(1_000);
        while (at < durationMs) {
            List<Fault> faults = new ArrayList<>();
            Fault first = fault(random, nodes, kinds, null);
            faults.add(first);
            if (random.nextInt(100) < 30 && kinds.size() > 1) {
                faults.add(fault(random, nodes, kinds, first.kind()));
            }
            long hold = 0;
            for (Fault f : faults) {
                hold = Math.max(hold, holdMs(random, f.kind()));
            }
            long gap = 200 + random.nextInt(1_300);
            steps.add(new Step(steps.size() + 1, at, hold, gap, faults));
            at += hold + gap;
        }
        return new FaultPlan(seed, steps);
    }

    private static Fault fault(Random random, List<String> nodes, Set<Kind> kinds, Kind not) {
        Kind[] all = Kind.values();
        Kind kind;
        do {
            // Weighted: process and network faults most, the rest less often.
            int r = random.nextInt(100);
            kind = r < 16 ? Kind.KILL : r < 30 ? Kind.PAUSE : r < 46 ? Kind.PARTITION : r < 56 ? Kind.BRIDGE
                : r < 68 ? Kind.ONE_WAY : r < 78 ? Kind.DELAY : r < 88 ? Kind.REMOVE_MEMBER : all[all.length - 1];
        } while (kind == not || !kinds.contains(kind));
        List<String> order = new ArrayList<>(nodes);
        Collections.shuffle(order, random);
        String fallback = order.get(0);
        String target = random.nextInt(100) < 55 ? LEADER : fallback;
        if (kind == Kind.TRANSFER) {
            target = fallback;
        }
        int minority = 1 + random.nextInt((nodes.size() - 1) / 2);
        return new Fault(kind, target, fallback, List.copyOf(order), minority, random.nextBoolean(),
            random.nextBoolean(), 20 + random.nextInt(180));
    }

    private static long holdMs(Random random, Kind kind) {
        switch (kind) {
            case TRANSFER:
                return 200 + random.nextInt(800);
            case PAUSE:
                // Short pauses (under an election timeout) and long ones (a new leader meanwhile).
                return random.nextBoolean() ? 100 + random.nextInt(400) : 500 + random.nextInt(3_500);
            case KILL:
                return 300 + random.nextInt(3_700);
            default:
                return 300 + random.nextInt(4_700);
        }
    }

    long seed() {
        return seed;
    }

    List<Step> steps() {
        return steps;
    }
}
