package dev.dledger.raft.faults;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;

/**
 * Checks a fault run's {@link History} against the replicas' logs read after the run (every node healed, caught up
 * and stopped):
 * <ul>
 *   <li><b>lost</b>: an acknowledged write that is not, on every replica, exactly at the index acknowledged (missing,
 *   or at another index);</li>
 *   <li><b>duplicated</b>: a value that some replica holds more than once (client retries carry request ids, so
 *   even a write of unknown outcome may be there once at most);</li>
 *   <li><b>divergent</b>: an index at which two replicas hold different entries (term, type or body), and an entry
 *   whose value no client wrote;</li>
 *   <li><b>stale reads</b>: a read whose answer was never committed, was written to another key, was written only
 *   after the read ended, or is older in the log than the last write to that key acknowledged before the read began
 *   (an unset key while such a write exists included). With unique values and one total log order, this is the
 *   linearizability of a register.</li>
 * </ul>
 * The replicas' logs are compared as they are: a replica shorter than another is not divergent by itself, but every
 * acknowledged write it lacks is lost.
 */
public final class HistoryChecker {

    /** At most this many problems are described in a verdict; the counts are always complete. */
    public static final int MAX_DESCRIBED = 30;

    /**
     * The key and value an entry's body sets.
     *
     * @param key   the key
     * @param value the unique value
     */
    public record KeyValue(String key, String value) {
    }

    /**
     * What the check found.
     *
     * @param lost       acknowledged writes not exactly at their index on every replica
     * @param duplicated values held more than once by some replica
     * @param divergent  indexes where replicas differ, plus entries no client wrote
     * @param staleReads reads that are not linearizable
     * @param compared   entries compared (the longest replica log)
     * @param problems   the first {@link #MAX_DESCRIBED} problems, one line each
     */
    public record Verdict(long lost, long duplicated, long divergent, long staleReads, long compared,
                          List<String> problems) {

        /** Whether nothing was lost, duplicated, divergent or read stale. */
        public boolean clean() {
            return lost == 0 && duplicated == 0 && divergent == 0 && staleReads == 0;
        }
    }

    private final Function<byte[], KeyValue> decoder;
    private final List<String> problems = new ArrayList<>();

    /**
     * @param decoder the key and value of a NORMAL entry's body; null for a body that no client of the run wrote
     */
    public HistoryChecker(Function<byte[], KeyValue> decoder) {
        this.decoder = Objects.requireNonNull(decoder, "decoder");
    }

    private void problem(String p) {
        if (problems.size() < MAX_DESCRIBED) {
            problems.add(p);
        }
    }

    /**
     * Runs every check.
     *
     * @param history  the clients' history
     * @param replicas each replica's log by node id, in index order (its whole log, from its first index)
     * @return the counts and the first problems
     */
    public Verdict check(History history, Map<String, List<Entry>> replicas) {
        problems.clear();
        if (replicas.isEmpty()) {
            throw new IllegalArgumentException("no replica logs to check");
        }
        List<History.Write> writes = history.writes();
        Map<String, History.Write> byValue = new HashMap<>();
        for (History.Write w : writes) {
            if (byValue.put(w.value(), w) != null) {
                throw new IllegalArgumentException("the history wrote value " + w.value() + " twice: values must be "
                    + "unique");
            }
        }

        // Divergence: index by index, every replica that holds the index must hold the same entry.
        long divergent = 0;
        List<Entry> longest = null;
        for (List<Entry> log : replicas.values()) {
            if (longest == null || last(log) > last(longest)) {
                longest = log;
            }
        }
        Map<String, Map<Long, Entry>> byIndex = new LinkedHashMap<>();
        for (Map.Entry<String, List<Entry>> r : replicas.entrySet()) {
            Map<Long, Entry> m = new HashMap<>();
            for (Entry e : r.getValue()) {
                m.put(e.index(), e);
            }
            byIndex.put(r.getKey(), m);
        }
        for (Entry ref : longest) {
            for (Map.Entry<String, Map<Long, Entry>> r : byIndex.entrySet()) {
                Entry e = r.getValue().get(ref.index());
                if (e != null && !same(e, ref)) {
                    divergent++;
                    problem("divergent: index " + ref.index() + " is " + describe(ref) + " on one replica and "
                        + describe(e) + " on " + r.getKey());
                    break;
                }
            }
        }

        // Every replica: where each value is; duplicates; entries no client wrote.
        long duplicated = 0;
        Map<String, Map<String, List<Long>>> positions = new LinkedHashMap<>();
        for (Map.Entry<String, List<Entry>> r : replicas.entrySet()) {
            Map<String, List<Long>> at = new HashMap<>();
            for (Entry e : r.getValue()) {
                if (e.type() != EntryType.NORMAL) {
                    continue;
                }
                KeyValue kv = decoder.apply(e.data());
                if (kv == null || !byValue.containsKey(kv.value())
                    || !byValue.get(kv.value()).key().equals(kv.key())) {
                    divergent++;
                    problem("divergent: " + r.getKey() + " holds at index " + e.index() + " an entry no client wrote: "
                        + kv);
                    continue;
                }
                at.computeIfAbsent(kv.value(), v -> new ArrayList<>(1)).add(e.index());
            }
            positions.put(r.getKey(), at);
        }
        Set<String> duplicatedValues = new HashSet<>();
        for (Map.Entry<String, Map<String, List<Long>>> r : positions.entrySet()) {
            for (Map.Entry<String, List<Long>> v : r.getValue().entrySet()) {
                if (v.getValue().size() > 1 && duplicatedValues.add(v.getKey())) {
                    duplicated++;
                    History.Write w = byValue.get(v.getKey());
                    problem("duplicated: value " + v.getKey() + " (" + w.outcome() + ") is at indexes "
                        + v.getValue() + " on " + r.getKey());
                }
            }
        }

        // Lost: every acknowledged write exactly once, at its index, on every replica.
        long lost = 0;
        for (History.Write w : writes) {
            if (w.outcome() != History.Outcome.OK) {
                continue;
            }
            for (Map.Entry<String, Map<String, List<Long>>> r : positions.entrySet()) {
                List<Long> at = r.getValue().get(w.value());
                if (at == null || at.size() != 1 || at.get(0) != w.index()) {
                    lost++;
                    problem("lost: value " + w.value() + " acknowledged at index " + w.index() + " is at "
                        + (at == null ? "no index" : "indexes " + at) + " on " + r.getKey());
                    break;
                }
            }
        }

        long stale = checkReads(history.reads(), byValue, positionsOf(longest));
        return new Verdict(lost, duplicated, divergent, stale, longest.size(), List.copyOf(problems));
    }

    /** The index of each value in one log (its first occurrence). */
    private Map<String, Long> positionsOf(List<Entry> log) {
        Map<String, Long> m = new HashMap<>();
        for (Entry e : log) {
            if (e.type() == EntryType.NORMAL) {
                KeyValue kv = decoder.apply(e.data());
                if (kv != null) {
                    m.putIfAbsent(kv.value(), e.index());
                }
            }
        }
        return m;
    }

    /** Per key, the acknowledged writes by end time, with the highest index acknowledged up to each. */
    private record AckTimeline(long[] endNanos, long[] maxIndex, String[] maxValue) {

        /** The highest index of a write to this key acknowledged strictly before {@code nanos}, or -1. */
        int lastBefore(long nanos) {
            int lo = 0;
            int hi = endNanos.length - 1;
            int found = -1;
            while (lo <= hi) {
                int mid = (lo + hi) >>> 1;
                if (endNanos[mid] - nanos < 0) {
                    found = mid;
                    lo = mid + 1;
                } else {
                    hi = mid - 1;
                }
            }
            return found;
        }
    }

    private long checkReads(List<History.Read> reads, Map<String, History.Write> byValue,
                            Map<String, Long> committedIndex) {
        Map<String, List<History.Write>> ackedByKey = new HashMap<>();
        for (History.Write w : byValue.values()) {
            if (w.outcome() == History.Outcome.OK) {
                ackedByKey.computeIfAbsent(w.key(), k -> new ArrayList<>()).add(w);
            }
        }
        Map<String, AckTimeline> timelines = new HashMap<>();
        for (Map.Entry<String, List<History.Write>> e : ackedByKey.entrySet()) {
            List<History.Write> ws = e.getValue();
            ws.sort(Comparator.comparingLong(History.Write::endNanos));
            long[] ends = new long[ws.size()];
            long[] max = new long[ws.size()];
            String[] maxValue = new String[ws.size()];
            long best = -1;
            String bestValue = null;
            for (int i = 0; i < ws.size(); i++) {
                ends[i] = ws.get(i).endNanos();
                if (ws.get(i).index() > best) {
                    best = ws.get(i).index();
                    bestValue = ws.get(i).value();
                }
                max[i] = best;
                maxValue[i] = bestValue;
            }
            timelines.put(e.getKey(), new AckTimeline(ends, max, maxValue));
        }
        long stale = 0;
        for (History.Read r : reads) {
            AckTimeline t = timelines.get(r.key());
            int before = t == null ? -1 : t.lastBefore(r.startNanos());
            long mustSee = before < 0 ? -1 : t.maxIndex()[before];
            String why = null;
            if (r.value() == null) {
                if (mustSee >= 0) {
                    why = "key unset, but " + t.maxValue()[before] + " at index " + mustSee + " was acknowledged before";
                }
            } else {
                History.Write w = byValue.get(r.value());
                Long at = committedIndex.get(r.value());
                if (w == null) {
                    why = "no client wrote " + r.value();
                } else if (!w.key().equals(r.key())) {
                    why = r.value() + " was written to key " + w.key();
                } else if (at == null) {
                    why = r.value() + " was never committed";
                } else if (w.startNanos() - r.endNanos() > 0) {
                    why = r.value() + " was written only after the read ended";
                } else if (at < mustSee) {
                    why = r.value() + " is at index " + at + ", older than " + t.maxValue()[before] + " at index "
                        + mustSee + ", acknowledged before the read began";
                }
            }
            if (why != null) {
                stale++;
                problem("stale read: client " + r.client() + " read key " + r.key() + " (" + r.detail() + ") = "
                    + r.value() + ": " + why);
            }
        }
        return stale;
    }

    private static long last(List<Entry> log) {
        return log.isEmpty() ? -1 : log.get(log.size() - 1).index();
    }

    private static boolean same(Entry a, Entry b) {
        return a.index() == b.index() && a.term() == b.term() && a.type() == b.type()
            && Arrays.equals(a.data(), b.data()) && Objects.equals(a.requestId(), b.requestId());
    }

    private String describe(Entry e) {
        KeyValue kv = e.type() == EntryType.NORMAL ? decoder.apply(e.data()) : null;
        return "(term " + e.term() + ", " + e.type() + (kv == null ? ", " + e.data().length + " bytes" : ", " + kv)
            + ")";
    }
}
