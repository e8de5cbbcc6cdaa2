package dev.dledger.raft.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link RandomSource} whose answers the test chooses: scripted values first, then a fixed fallback (capped below
 * the bound). It records every bound it was asked for.
 */
final class ScriptedRandom implements RandomSource {

    private final ArrayDeque<Integer> script = new ArrayDeque<>();
    private final List<Integer> bounds = new ArrayList<>();
    private int fallback;

    ScriptedRandom(int fallback) {
        this.fallback = fallback;
    }

    /** Answers the next calls with {@code values}, in order, before falling back. */
    ScriptedRandom then(int... values) {
        for (int v : values) {
            script.addLast(v);
        }
        return this;
    }

    /** Answers every later call (after the script) with {@code value}. */
    ScriptedRandom always(int value) {
        script.clear();
        fallback = value;
        return this;
    }

    /** The bounds of every call so far. */
    List<Integer> bounds() {
        return List.copyOf(bounds);
    }

    @Override
    public int nextInt(int bound) {
        bounds.add(bound);
        if (!script.isEmpty()) {
            int v = script.removeFirst();
            if (v < 0 || v >= bound) {
                throw new AssertionError("scripted value " + v + " outside [0," + bound + ")");
            }
            return v;
        }
        return Math.min(fallback, bound - 1);
    }
}
