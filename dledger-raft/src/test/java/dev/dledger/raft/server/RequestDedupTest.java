package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.server.RequestDedup.Lookup;
import dev.dledger.raft.server.RequestDedup.Verdict;
import java.util.List;
import org.junit.jupiter.api.Test;

class RequestDedupTest {

    private static final long C = 0x5eedL;

    private static Entry entry(long index, long term, long seq) {
        return new Entry(index, term, EntryType.NORMAL, new byte[] {1}, new RequestId(C, seq));
    }

    private static Lookup lookup(RequestDedup d, long seq, int count) {
        return d.lookup(new RequestId(C, seq), count, 0);
    }

    @Test
    void anUnknownRequestIsNew() {
        RequestDedup d = new RequestDedup();
        assertEquals(Verdict.NEW, lookup(d, 0, 1).verdict());
    }

    @Test
    void aLoggedRequestIsInFlightThenAppliedWithItsOriginalIndex() {
        RequestDedup d = new RequestDedup();
        List<Entry> batch = List.of(entry(10, 3, 5), entry(11, 3, 6), entry(12, 3, 7));
        d.logged(batch);
        assertEquals(new Lookup(Verdict.IN_FLIGHT, 10, 3), lookup(d, 5, 3));
        d.applied(batch.get(0), 0);
        assertEquals(new Lookup(Verdict.IN_FLIGHT, 10, 3), lookup(d, 5, 3), "the batch is applied in part");
        d.applied(batch.get(1), 0);
        d.applied(batch.get(2), 0);
        assertEquals(new Lookup(Verdict.APPLIED, 10, 3), lookup(d, 5, 3));
        assertEquals(0, d.loggedCount());
    }

    @Test
    void aProposalDroppedUnwrittenIsForgottenWhenAnEntryWithoutIdTakesItsIndex() {
        // A leader records its proposal at once; it steps down before writing it, and the new leader's no-op takes
        // the index (the core reports no truncation: nothing was written). A retry must not wait for entry 10 as if
        // it were the proposal (found by the fault runs: a driver failed completing such a retry).
        RequestDedup d = new RequestDedup();
        d.logged(new RequestId(C, 5), 10, 3);
        assertEquals(Verdict.IN_FLIGHT, lookup(d, 5, 1).verdict());
        d.logged(List.of(new Entry(10, 4, EntryType.NOOP, new byte[0])));
        assertEquals(Verdict.NEW, lookup(d, 5, 1).verdict());
        assertEquals(0, d.loggedCount());
    }

    @Test
    void aTruncatedEntryIsNewAgainUnlessTheHeadOfItsBatchSurvived() {
        RequestDedup d = new RequestDedup();
        d.logged(List.of(entry(10, 3, 5), entry(11, 3, 6)));
        d.logged(List.of(entry(12, 3, 7)));
        d.truncated(12);
        assertEquals(Verdict.NEW, lookup(d, 7, 1).verdict());
        d.truncated(11);
        assertEquals(Verdict.UNKNOWN, lookup(d, 5, 2).verdict(), "entry 10 of the batch is still in the log");
        d.truncated(10);
        assertEquals(Verdict.NEW, lookup(d, 5, 2).verdict());
    }

    @Test
    void aSnapshotInstallForgetsTheLog() {
        RequestDedup d = new RequestDedup();
        d.logged(List.of(entry(10, 3, 5)));
        d.logReset();
        assertEquals(Verdict.NEW, lookup(d, 5, 1).verdict());
    }

    @Test
    void seqsAppliedOutOfOrderAreEachRecognized() {
        // One client used from many threads: seq 2 may commit before seq 1.
        RequestDedup d = new RequestDedup();
        d.applied(entry(20, 1, 2), 0);
        assertEquals(Verdict.NEW, lookup(d, 1, 1).verdict(), "a lower seq not applied yet is not a duplicate");
        d.applied(entry(21, 1, 1), 0);
        assertEquals(new Lookup(Verdict.APPLIED, 21, 1), lookup(d, 1, 1));
        assertEquals(new Lookup(Verdict.APPLIED, 20, 1), lookup(d, 2, 1));
    }

    @Test
    void aSeqBelowTheClientsWindowCannotBeTold() {
        RequestDedup d = new RequestDedup(3, 100, Long.MAX_VALUE);
        for (int s = 0; s < 5; s++) {
            d.applied(entry(s, 1, s), 0);
        }
        assertEquals(3, d.tracked());
        assertEquals(Verdict.UNKNOWN, lookup(d, 0, 1).verdict(), "forgotten: maybe applied");
        assertEquals(Verdict.UNKNOWN, lookup(d, 1, 1).verdict());
        assertEquals(new Lookup(Verdict.APPLIED, 2, 1), lookup(d, 2, 1));
        assertEquals(Verdict.NEW, lookup(d, 5, 1).verdict());
    }

    @Test
    void theLeastRecentlySeenClientIsDroppedBeyondTheTrackedBound() {
        RequestDedup d = new RequestDedup(10, 4, Long.MAX_VALUE);
        for (long client = 1; client <= 3; client++) {
            for (int s = 0; s < 2; s++) {
                d.applied(new Entry(client * 10 + s, 1, EntryType.NORMAL, null, new RequestId(client, s)), 0);
            }
        }
        assertEquals(4, d.tracked());
        // Client 1's seqs were dropped: a late retry of them cannot be told, and is never taken as new (B2).
        assertEquals(Verdict.UNKNOWN, d.lookup(new RequestId(1, 0), 1, 0).verdict(), "client 1 was dropped");
        assertEquals(Verdict.UNKNOWN, d.lookup(new RequestId(1, 1), 1, 0).verdict());
        assertEquals(Verdict.NEW, d.lookup(new RequestId(1, 2), 1, 0).verdict(), "its later seqs are new");
        assertEquals(Verdict.APPLIED, d.lookup(new RequestId(2, 1), 1, 0).verdict());
        assertEquals(Verdict.APPLIED, d.lookup(new RequestId(3, 1), 1, 0).verdict());
    }

    @Test
    void anIdleClientExpires() {
        RequestDedup d = new RequestDedup(10, 100, 1_000);
        d.applied(new Entry(1, 1, EntryType.NORMAL, null, new RequestId(1, 0)), 0);
        d.applied(new Entry(2, 1, EntryType.NORMAL, null, new RequestId(2, 0)), 900);
        assertEquals(Verdict.APPLIED, d.lookup(new RequestId(1, 0), 1, 900).verdict());
        // Seen at 900, so client 1 lives until 1900; client 2 too. At 2000 both are gone once something is applied.
        d.applied(new Entry(3, 1, EntryType.NORMAL, null, new RequestId(3, 0)), 2_000);
        assertEquals(Verdict.UNKNOWN, d.lookup(new RequestId(1, 0), 1, 2_000).verdict());
        assertEquals(Verdict.UNKNOWN, d.lookup(new RequestId(2, 0), 1, 2_000).verdict());
        assertEquals(Verdict.NEW, d.lookup(new RequestId(2, 1), 1, 2_000).verdict());
        assertEquals(1, d.tracked());
    }

    @Test
    void theAppliedTableSurvivesASnapshotAndARestoreWithoutOneRefusesWhatItCannotTell() {
        RequestDedup d = new RequestDedup(3, 100, Long.MAX_VALUE);
        for (long s = 0; s < 5; s++) {
            d.applied(entry(10 + s, 2, s), 0);
        }
        RequestDedup restored = new RequestDedup(3, 100, Long.MAX_VALUE);
        restored.restore(d.encode(), 0);
        assertEquals(new Lookup(Verdict.APPLIED, 14, 2), lookup(restored, 4, 1));
        assertEquals(Verdict.UNKNOWN, lookup(restored, 1, 1).verdict(), "below the window, as before");
        assertEquals(Verdict.NEW, lookup(restored, 5, 1).verdict());
        assertThrows(IllegalArgumentException.class, () -> restored.restore(new byte[] {1, 2, 3}, 0));

        // No table (an old snapshot, a position-only one): an unknown client's first seq above 0 may be a late retry.
        RequestDedup blind = new RequestDedup();
        blind.restore(null, 0);
        assertEquals(Verdict.UNKNOWN, lookup(blind, 4, 1).verdict());
        assertEquals(Verdict.UNKNOWN, lookup(blind, 3, 1).verdict(), "and every lower seq of that client");
        assertEquals(Verdict.NEW, lookup(blind, 5, 1).verdict(), "its later seqs are new");
        assertEquals(Verdict.NEW, blind.lookup(new RequestId(99, 0), 1, 0).verdict(), "a new client starts at 0");
    }

    @Test
    void beyondItsTombstonesTheTableTurnsIncomplete() {
        RequestDedup d = new RequestDedup(10, 1, Long.MAX_VALUE, 1);
        for (long client = 1; client <= 3; client++) {
            d.applied(new Entry(client, 1, EntryType.NORMAL, null, new RequestId(client, 3)), 0);
        }
        // Client 1's tombstone gave way to client 2's: client 1 is forgotten without a trace.
        assertEquals(Verdict.UNKNOWN, d.lookup(new RequestId(1, 3), 1, 0).verdict());
        assertEquals(Verdict.NEW, d.lookup(new RequestId(1, 4), 1, 0).verdict());
    }

    @Test
    void entriesWithoutIdsAreIgnoredAndBadBoundsRefused() {
        RequestDedup d = new RequestDedup();
        d.applied(new Entry(1, 1, EntryType.NORMAL, new byte[] {1}), 0);
        d.logged(List.of(new Entry(2, 1, EntryType.NORMAL, new byte[] {1})));
        assertEquals(0, d.tracked());
        assertEquals(0, d.loggedCount());
        assertThrows(IllegalArgumentException.class, () -> new RequestDedup(0, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> lookup(d, 0, 0));
    }
}
