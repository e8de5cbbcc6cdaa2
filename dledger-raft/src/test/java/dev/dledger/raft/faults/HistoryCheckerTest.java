package dev.dledger.raft.faults;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.statemachine.KeyValueStateMachine;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The checker on small hand-made histories: each kind of anomaly is counted, and a clean history is clean. */
class HistoryCheckerTest {

    private final History history = new History();
    private final HistoryChecker checker = new HistoryChecker(RaftFaultsIT::decodeSet);

    private static Entry set(long index, long term, String key, String value) {
        return new Entry(index, term, EntryType.NORMAL, KeyValueStateMachine.set(key, value));
    }

    private static Entry noop(long index, long term) {
        return new Entry(index, term, EntryType.NOOP, new byte[0]);
    }

    private void acked(String key, String value, long index, long start, long end) {
        history.write(new History.Write(0, key, value, start, end, History.Outcome.OK, index));
    }

    private void unknown(String key, String value, long start, long end) {
        history.write(new History.Write(0, key, value, start, end, History.Outcome.UNKNOWN, -1));
    }

    private void read(String key, String value, long start, long end) {
        history.read(new History.Read(1, key, value, start, end, "test"));
    }

    /** The same log on three replicas. */
    private static Map<String, List<Entry>> everywhere(List<Entry> log) {
        Map<String, List<Entry>> m = new LinkedHashMap<>();
        for (String id : new String[] {"n0", "n1", "n2"}) {
            m.put(id, new ArrayList<>(log));
        }
        return m;
    }

    private List<Entry> cleanLog() {
        acked("k", "a", 1, 10, 20);
        unknown("k", "b", 30, 40);
        acked("k", "c", 3, 50, 60);
        return List.of(noop(0, 1), set(1, 1, "k", "a"), set(2, 1, "k", "b"), set(3, 2, "k", "c"));
    }

    @Test
    void aCleanHistoryIsClean() {
        List<Entry> log = cleanLog();
        unknown("k", "never", 70, 80);
        read("k", null, 0, 5);
        read("k", "a", 25, 26);
        read("k", "b", 45, 55);
        read("k", "c", 45, 55);
        read("k", "c", 61, 62);
        HistoryChecker.Verdict v = checker.check(history, everywhere(log));
        assertTrue(v.clean(), v.toString());
        assertEquals(4, v.compared());
    }

    @Test
    void anAcknowledgedWriteMissingOnOneReplicaIsLost() {
        Map<String, List<Entry>> replicas = everywhere(cleanLog());
        replicas.get("n2").remove(3);
        HistoryChecker.Verdict v = checker.check(history, replicas);
        assertEquals(1, v.lost(), v.toString());
        assertEquals(0, v.divergent(), "a shorter log is a prefix, not a divergence");
    }

    @Test
    void anAcknowledgedWriteAtAnotherIndexIsLost() {
        Map<String, List<Entry>> replicas = everywhere(List.of(noop(0, 1), set(1, 1, "k", "a")));
        acked("k", "a", 2, 10, 20);
        assertEquals(1, checker.check(history, replicas).lost());
    }

    @Test
    void aValueTwiceIsDuplicatedEvenIfItsOutcomeWasUnknown() {
        unknown("k", "u", 10, 20);
        List<Entry> log = List.of(set(0, 1, "k", "u"), set(1, 1, "k", "u"));
        HistoryChecker.Verdict v = checker.check(history, everywhere(log));
        assertEquals(1, v.duplicated(), v.toString());
        assertEquals(0, v.lost());
    }

    @Test
    void replicasThatDifferAtAnIndexDiverge() {
        Map<String, List<Entry>> replicas = everywhere(cleanLog());
        replicas.get("n1").set(2, set(2, 2, "k", "b"));
        HistoryChecker.Verdict v = checker.check(history, replicas);
        assertEquals(1, v.divergent(), v.toString());
    }

    @Test
    void anEntryNoClientWroteDiverges() {
        List<Entry> log = new ArrayList<>(cleanLog());
        log.add(set(4, 2, "k", "ghost"));
        assertEquals(3, checker.check(history, everywhere(log)).divergent(), "one per replica");
    }

    @Test
    void aReadMissingAWriteAcknowledgedBeforeItBeganIsStale() {
        List<Entry> log = cleanLog();
        read("k", "a", 61, 62);
        read("k", null, 21, 22);
        HistoryChecker.Verdict v = checker.check(history, everywhere(log));
        assertEquals(2, v.staleReads(), v.toString());
    }

    @Test
    void aReadOfSomethingNeverCommittedOrWrittenLaterOrElsewhereIsStale() {
        List<Entry> log = cleanLog();
        unknown("k", "never", 70, 80);
        unknown("other", "o", 1, 2);
        read("k", "never", 71, 72);
        read("k", "made-up", 71, 72);
        read("k", "o", 71, 72);
        read("k", "c", 1, 2);
        HistoryChecker.Verdict v = checker.check(history, everywhere(log));
        assertEquals(4, v.staleReads(), v.toString());
    }

    @Test
    void aReadConcurrentWithAWriteMaySeeEitherValue() {
        List<Entry> log = cleanLog();
        read("k", "a", 55, 65);
        read("k", "c", 55, 65);
        assertTrue(checker.check(history, everywhere(log)).clean());
    }

    @Test
    void valuesMustBeUnique() {
        acked("k", "a", 1, 10, 20);
        unknown("k", "a", 30, 40);
        assertThrows(IllegalArgumentException.class, () -> checker.check(history, everywhere(List.of())));
    }
}
