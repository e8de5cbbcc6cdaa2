package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyTransport;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A node that restarts with a long committed log and no snapshot applies all of it again; that must not stop its
 * driver from ticking and taking inputs until the whole log is applied (a follower that answers nothing for that
 * long keeps a group that needs it for a quorum from committing). Found by the fault runs: restarted nodes of a
 * 640,000-entry log stood still for 7 to 28 s, and the group took no write for 82 s.
 *
 * <p>The state machine here applies one batch per permit the test hands out, so the node is in the middle of its
 * backlog for as long as the test wants; an append sent meanwhile must still be answered (NOT_LEADER: the node has
 * no leader).
 */
class ApplyBacklogTest {

    private NettyTransport transport;
    private RaftGroupNode node;
    private final Semaphore permits = new Semaphore(0);

    /** Applies a batch only when the test allows it. */
    private final class GatedStateMachine implements StateMachine {
        final CountDownLatch entered = new CountDownLatch(1);
        final AtomicLong batches = new AtomicLong();
        final AtomicLong applied = new AtomicLong(-1);

        @Override
        public List<byte[]> apply(List<Entry> committed) {
            entered.countDown();
            try {
                if (!permits.tryAcquire(60, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("no permit to apply within 60 s");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            batches.incrementAndGet();
            applied.set(committed.get(committed.size() - 1).index());
            return Collections.nCopies(committed.size(), null);
        }

        @Override
        public void snapshot(long lastIndex, OutputStream out) {
        }

        @Override
        public void restore(long lastIndex, InputStream in) {
        }
    }

    @AfterEach
    void stop() {
        permits.release(1_000);
        if (node != null) {
            node.close();
        }
        if (transport != null) {
            transport.close();
        }
    }

    @Test
    void aNodeApplyingALongBacklogStillAnswersInputs() throws Exception {
        // Some 12 MiB committed: several batches of the core's apply limit (maxApplyBytes).
        MemoryNodeStorage storage = new MemoryNodeStorage();
        List<Entry> entries = new ArrayList<>();
        for (long i = 0; i < 3_000; i++) {
            entries.add(new Entry(i, 1, EntryType.NORMAL, new byte[4096]));
        }
        storage.append(entries);
        storage.saveHardState(new HardState(1, null));
        storage.checkpointCommit(2_999);
        transport = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
        GatedStateMachine sm = new GatedStateMachine();
        node = new RaftGroupNode(NodeOptions.defaults("g", "n0"), Membership.of("n0", "n1", "n2"), storage, sm,
            transport);
        transport.setPeers("g", Map.of("n1", new InetSocketAddress("127.0.0.1", 1),
            "n2", new InetSocketAddress("127.0.0.1", 2)));

        // The driver waits inside the first batch; an append arrives; the first batch ends.
        assertTrue(sm.entered.await(30, TimeUnit.SECONDS), "the node applies its backlog");
        CompletableFuture<AppendResult> append = node.append(List.of(new byte[] {1}));
        permits.release();
        AppendResult r = append.get(30, TimeUnit.SECONDS);
        assertEquals(AppendResult.Status.NOT_LEADER, r.status(), "answered between two batches of the backlog");
        assertTrue(sm.applied.get() < 2_999, "answered before the backlog was applied: applied up to "
            + sm.applied.get());

        permits.release(1_000);
        await().atMost(Duration.ofSeconds(30)).until(() -> sm.applied.get() == 2_999);
        assertTrue(sm.batches.get() >= 3, "applied in batches: " + sm.batches.get());
    }
}
