package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/** A driver that syncs the log in the background: the leader counts its own log only as far as it is durable. */
class DurableLogTest {

    private final MemoryLog log = new MemoryLog();

    /** Persists what {@code rd} asks for without claiming it durable. */
    private void writeOnly(RaftNode n, Ready rd) {
        if (rd.truncateFrom() >= 0) {
            log.truncateFrom(rd.truncateFrom());
        }
        log.append(rd.entries());
        n.advance(rd, false);
    }

    private RaftNode singleVoterLeader() {
        RaftNode n = new RaftNode(RaftConfig.defaults("a").withTimeouts(10, 2), log,
            InitialState.bootstrap(Membership.of("a")), bound -> 0, CoreLog.NONE);
        while (n.role() != Role.LEADER) {
            n.tick();
            while (n.hasReady()) {
                writeOnly(n, n.ready());
            }
        }
        return n;
    }

    @Test
    void aSingleVoterCommitsOnlyWhatItsSyncReported() {
        RaftNode n = singleVoterLeader();
        long noop = n.lastIndex();
        assertEquals(-1, n.commitIndex(), "the NOOP is written but not durable");
        n.logDurable(noop, n.term());
        assertEquals(noop, n.commitIndex());
        while (n.hasReady()) {
            writeOnly(n, n.ready());
        }

        n.propose(List.of("x".getBytes(), "y".getBytes()));
        writeOnly(n, n.ready());
        assertEquals(noop, n.commitIndex());
        assertEquals(noop, n.durableIndex());
        n.logDurable(noop + 1, n.term());
        assertEquals(noop + 1, n.commitIndex(), "the sync covered the first entry only");
        n.logDurable(noop + 2, n.term());
        assertEquals(noop + 2, n.commitIndex());
    }

    @Test
    void aReportForAReplacedEntryIsIgnored() {
        RaftNode n = singleVoterLeader();
        long noop = n.lastIndex();
        n.logDurable(noop, n.term() + 1);
        assertEquals(-1, n.commitIndex(), "the entry at that index has another term");
        n.logDurable(noop + 5, n.term());
        assertEquals(-1, n.commitIndex(), "beyond the log");
        n.logDurable(noop, n.term());
        assertEquals(noop, n.commitIndex());
    }

    @Test
    void aFollowersTruncationLowersTheDurableIndex() {
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), log,
            InitialState.bootstrap(Membership.of("a", "b", "c")), bound -> 0, CoreLog.NONE);
        f.step(new AppendEntriesRequest("a", "b", 1, -1, 0, List.of(new Entry(0, 1, EntryType.NOOP, null),
            new Entry(1, 1, EntryType.NORMAL, "x".getBytes())), -1, 1));
        writeOnly(f, f.ready());
        f.logDurable(1, 1);
        assertEquals(1, f.durableIndex());
        // A leader of term 2 replaces index 1.
        f.step(new AppendEntriesRequest("c", "b", 2, 0, 1, List.of(new Entry(1, 2, EntryType.NOOP, null)), -1, 1));
        Ready rd = f.ready();
        assertEquals(1, rd.truncateFrom());
        writeOnly(f, rd);
        assertEquals(0, f.durableIndex(), "the replaced entry does not count");
        f.logDurable(1, 1);
        assertEquals(0, f.durableIndex(), "a late report of the replaced entry does not count either");
        f.logDurable(1, 2);
        assertEquals(1, f.durableIndex());
    }

    @Test
    void aReportBetweenReadyAndAdvanceIsRefused() {
        RaftNode n = singleVoterLeader();
        n.propose("x".getBytes());
        n.ready();
        assertThrows(IllegalStateException.class, () -> n.logDurable(0, 1));
    }
}
