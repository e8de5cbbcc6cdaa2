package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** Every append the driver took is answered exactly once, whatever happens to the entries or to other callers. */
class PendingAppendsTest {

    private static final long FAR = Long.MAX_VALUE / 2;

    private final PendingAppends pending = new PendingAppends(() -> 0L);

    private static Entry entry(long index, long term) {
        return new Entry(index, term, EntryType.NORMAL, new byte[] {1});
    }

    @Test
    void anAppendOfAnEarlierLeadershipAtTheSameIndexIsAnsweredLostWhenANewProposalTakesItsPlace() {
        CompletableFuture<AppendResult> old = new CompletableFuture<>();
        pending.add(10, 12, 1, FAR, old);
        // Leadership lost and won again: the log was cut at 10 and this node proposes there in term 3.
        CompletableFuture<AppendResult> now = new CompletableFuture<>();
        pending.add(10, 10, 3, FAR, now);
        assertTrue(old.isDone(), "the cut append is answered, not forgotten");
        assertEquals(AppendResult.Status.LOST, old.join().status());
        assertFalse(now.isDone());
        pending.applied(List.of(entry(10, 3)), null, null);
        assertTrue(now.isDone());
        assertEquals(AppendResult.Status.OK, now.join().status());
        assertEquals(0, pending.size());
    }

    @Test
    void aRetryOfAnAppendWhoseCallerCancelledStillGetsAnAnswer() {
        CompletableFuture<AppendResult> original = new CompletableFuture<>();
        pending.add(5, 6, 2, FAR, original);
        CompletableFuture<AppendResult> retry = new CompletableFuture<>();
        pending.attach(5, 6, 2, retry, FAR, null);
        original.cancel(false);
        assertTrue(retry.isDone(), "the retry is answered when the original's caller gives up");
        assertEquals(AppendResult.Status.TIMEOUT, retry.join().status());
    }

    @Test
    void aRetryAfterTheOriginalWasCancelledWaitsForTheEntriesItself() {
        CompletableFuture<AppendResult> original = new CompletableFuture<>();
        pending.add(5, 6, 2, FAR, original);
        original.cancel(false);
        CompletableFuture<AppendResult> retry = new CompletableFuture<>();
        pending.attach(5, 6, 2, retry, FAR, null);
        assertFalse(retry.isDone());
        pending.applied(List.of(entry(5, 2), entry(6, 2)), null, null);
        assertTrue(retry.isDone(), "answered once its entries are applied");
        assertEquals(AppendResult.Status.OK, retry.join().status());
        assertEquals(5, retry.join().index());
    }
}
