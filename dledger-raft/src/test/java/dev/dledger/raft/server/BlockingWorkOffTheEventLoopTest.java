package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.IoThread;
import dev.dledger.raft.transport.NettyTransport;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Drivers of several groups share a transport's event loop; the fsync of one group's term and vote must not stall the
 * others (issue 16, B7). Group "a" campaigns on a storage whose term/vote write blocks until the test lets it go;
 * meanwhile group "b", on the same event loop, must go on committing. Snapshots are taken off the event loop too, and
 * only they: applying a backlog stays on it.
 */
class BlockingWorkOffTheEventLoopTest {

    /** A memory storage whose term/vote writes wait at a gate, as a stalled disk's fsync would. */
    static final class GatedHardStateStorage extends MemoryNodeStorage {
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch gate = new CountDownLatch(1);

        @Override
        public void saveHardState(HardState hs) {
            entered.countDown();
            try {
                gate.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            super.saveHardState(hs);
        }
    }

    /** Counts where applies and snapshots ran: on the transport's event loop or elsewhere. */
    static final class ThreadRecordingStateMachine implements StateMachine {
        final AtomicInteger appliesOnLoop = new AtomicInteger();
        final AtomicInteger appliesOffLoop = new AtomicInteger();
        final AtomicInteger snapshotsOnLoop = new AtomicInteger();
        final AtomicInteger snapshotsOffLoop = new AtomicInteger();
        private final IoThread loop;

        ThreadRecordingStateMachine(IoThread loop) {
            this.loop = loop;
        }

        @Override
        public List<byte[]> apply(List<Entry> committed) {
            (loop.inThread() ? appliesOnLoop : appliesOffLoop).incrementAndGet();
            return Collections.nCopies(committed.size(), new byte[0]);
        }

        @Override
        public void snapshot(long lastIndex, OutputStream out) throws java.io.IOException {
            (loop.inThread() ? snapshotsOnLoop : snapshotsOffLoop).incrementAndGet();
            out.write(1);
        }

        @Override
        public void restore(long lastIndex, InputStream in) throws java.io.IOException {
            in.readAllBytes();
        }

        @Override
        public boolean canSnapshot() {
            return true;
        }
    }

    private NettyTransport transport;
    private RaftGroupNode a;
    private RaftGroupNode b;
    private GatedHardStateStorage gated;

    @AfterEach
    void stop() {
        if (gated != null) {
            gated.gate.countDown();
        }
        if (a != null) {
            a.close();
        }
        if (b != null) {
            b.close();
        }
        if (transport != null) {
            transport.close();
        }
    }

    @Test
    void aGroupWhoseTermWriteStallsDoesNotStallAnotherGroupOnTheSameEventLoop() throws Exception {
        // One event loop: both drivers run on it.
        transport = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
        b = new RaftGroupNode(NodeOptions.defaults("b", "n0"), Membership.of("n0"), new MemoryNodeStorage(),
            StateMachine.NONE, transport);
        await().atMost(Duration.ofSeconds(10)).until(() -> b.status().role() == Role.LEADER);
        assertEquals(AppendResult.Status.OK, b.append(List.of(bytes("warm"))).get(10, TimeUnit.SECONDS).status());

        gated = new GatedHardStateStorage();
        a = new RaftGroupNode(NodeOptions.defaults("a", "n0"), Membership.of("n0"), gated, StateMachine.NONE,
            transport);
        assertTrue(gated.entered.await(10, TimeUnit.SECONDS), "group a campaigns and writes its term");

        // While a's term write hangs, b commits.
        CompletableFuture<AppendResult> during = b.append(List.of(bytes("during")));
        await().atMost(Duration.ofSeconds(5)).until(during::isDone);
        assertEquals(AppendResult.Status.OK, during.get().status());
        assertEquals(Role.LEADER, b.status().role());

        // Once the write goes through, a leads too.
        gated.gate.countDown();
        await().atMost(Duration.ofSeconds(10)).until(() -> a.status().role() == Role.LEADER);
        assertEquals(AppendResult.Status.OK, a.append(List.of(bytes("a"))).get(10, TimeUnit.SECONDS).status());
    }

    @Test
    void aNodeApplyingABacklogAppliesOnTheEventLoopAndSnapshotsOffIt() throws Exception {
        transport = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
        MemoryNodeStorage storage = new MemoryNodeStorage();
        b = new RaftGroupNode(NodeOptions.defaults("b", "n0"), Membership.of("n0"), storage, StateMachine.NONE,
            transport);
        await().atMost(Duration.ofSeconds(10)).until(() -> b.status().role() == Role.LEADER);
        for (int i = 0; i < 20; i++) {
            List<byte[]> batch = new ArrayList<>();
            for (int j = 0; j < 10; j++) {
                batch.add(bytes("entry " + i + "-" + j));
            }
            assertEquals(AppendResult.Status.OK, b.append(batch).get(10, TimeUnit.SECONDS).status());
        }
        long committed = b.status().commitIndex();
        b.close();
        b = null;

        // The same log again, applied from the start one small batch per pass (maxApplyBytes 64: an entry or two),
        // with a snapshot every 50 entries: the whole backlog is due for snapshots from the start by its commit index.
        ThreadRecordingStateMachine sm = new ThreadRecordingStateMachine(transport.driverThread());
        NodeOptions options = NodeOptions.defaults("b", "n0");
        a = new RaftGroupNode(options.withRaft(options.raft().withMaxApplyBytes(64)).withSnapshotThreshold(50),
            Membership.of("n0"), storage, sm, transport);
        await().atMost(Duration.ofSeconds(20)).until(() -> a.status().appliedIndex() >= committed);
        await().atMost(Duration.ofSeconds(10)).until(() -> sm.snapshotsOffLoop.get() >= 3);
        assertEquals(0, sm.snapshotsOnLoop.get(), "snapshots taken on the event loop");
        // Off the loop: the passes that took a snapshot or wrote the term and vote, each applying at most one batch.
        int offLoopPasses = sm.snapshotsOffLoop.get() + 5;
        assertTrue(sm.appliesOffLoop.get() <= offLoopPasses, "batches applied off the event loop: "
            + sm.appliesOffLoop.get() + ", on it " + sm.appliesOnLoop.get() + ", snapshots " + sm.snapshotsOffLoop.get());
        assertTrue(sm.appliesOnLoop.get() > 100, "batches applied on the event loop: " + sm.appliesOnLoop.get());
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
