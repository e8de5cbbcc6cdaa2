package dev.dledger.raft.sim;

import java.util.Map;
import java.util.TreeMap;

/**
 * Counts how often a run exercised each feature (elections, transfers, snapshots installed, reads served, crashes,
 * torn writes, ...), and, summed over runs with {@link #addRun}, in how many runs each feature occurred. Keys are
 * kept sorted so that summaries print in a stable order. Not thread-safe.
 */
public final class Coverage {

    private final TreeMap<String, Long> counts = new TreeMap<>();
    private int runs;

    /** An empty tally. */
    public Coverage() {
    }

    /** Counts one occurrence of {@code feature}. */
    public void hit(String feature) {
        counts.merge(feature, 1L, Long::sum);
    }

    /** Makes {@code feature} appear in summaries even when it never occurred. */
    public void declare(String feature) {
        counts.putIfAbsent(feature, 0L);
    }

    /** How often {@code feature} occurred. */
    public long count(String feature) {
        return counts.getOrDefault(feature, 0L);
    }

    /** Adds one run's tally: each feature that occurred in it counts once. */
    public void addRun(Coverage run) {
        runs++;
        for (Map.Entry<String, Long> e : run.counts.entrySet()) {
            counts.merge(e.getKey(), e.getValue() > 0 ? 1L : 0L, Long::sum);
        }
    }

    /** One line "feature=count ..." in key order; for a sum over runs, "feature=runs/total". */
    public String summary() {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, Long> e : counts.entrySet()) {
            if (sb.length() > 0) {
                sb.append(' ');
            }
            sb.append(e.getKey()).append('=').append(e.getValue());
            if (runs > 0) {
                sb.append('/').append(runs);
            }
        }
        return sb.toString();
    }
}
