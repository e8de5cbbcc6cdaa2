package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.RaftConfig;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link RaftGroupNode#close()} closes the storage only once the driver let go of it, even when the driver is busy in
 * a write and its input queue is full; and every future handed out is answered.
 */
class CloseUnderLoadTest {

    /** Memory storage whose appends wait at a gate, and which notes a close that came while an append was running. */
    private static final class GatedAppendStorage extends MemoryNodeStorage {
        volatile CountDownLatch gate;
        final AtomicInteger appending = new AtomicInteger();
        final AtomicBoolean closedUnderAWrite = new AtomicBoolean();
        final CountDownLatch inAppend = new CountDownLatch(1);

        @Override
        public long[] append(List<Entry> ents) {
            appending.incrementAndGet();
            try {
                CountDownLatch g = gate;
                if (g != null) {
                    inAppend.countDown();
                    g.await();
                }
                return super.append(ents);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new StorageException("interrupted", e);
            } finally {
                appending.decrementAndGet();
            }
        }

        @Override
        public void close() {
            if (appending.get() > 0) {
                closedUnderAWrite.set(true);
            }
            super.close();
        }
    }

    private NettyTransport transport;
    private final GatedAppendStorage store = new GatedAppendStorage();

    @AfterEach
    void stop() {
        CountDownLatch g = store.gate;
        if (g != null) {
            g.countDown();
        }
        if (transport != null) {
            transport.close();
        }
    }

    @Test
    void theStorageIsClosedOnlyAfterTheDriverStoppedEvenWithAFullQueue() throws Exception {
        transport = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
        NodeOptions defaults = NodeOptions.defaults("g", "n0");
        NodeOptions options = new NodeOptions("g", RaftConfig.defaults("n0"), defaults.tickMs(), FlushMode.ASYNC,
            defaults.appendTimeoutMs(), defaults.maxPendingAppends(), 8, 0, defaults.snapshotChunkBytes(),
            defaults.randomSeed());
        RaftGroupNode node = new RaftGroupNode(options, Membership.of("n0"), store, StateMachine.NONE, transport);
        await().atMost(Duration.ofSeconds(10)).until(() -> node.status().role() == Role.LEADER);
        assertEquals(AppendResult.Status.OK, node.append(List.of(bytes("warm"))).get().status());

        // The driver stands in a write; appends queue behind it until the queue is full.
        store.gate = new CountDownLatch(1);
        List<CompletableFuture<AppendResult>> futures = new ArrayList<>();
        futures.add(node.append(List.of(bytes("held"))));
        assertTrue(store.inAppend.await(10, java.util.concurrent.TimeUnit.SECONDS), "the driver reached the write");
        boolean refused = false;
        for (int i = 0; i < 100 && !refused; i++) {
            CompletableFuture<AppendResult> f = node.append(List.of(bytes("queued-" + i)));
            futures.add(f);
            refused = f.isDone() && f.join().status() == AppendResult.Status.OVERLOADED;
        }
        assertTrue(refused, "the input queue filled up");

        Thread closer = new Thread(node::close, "closer");
        closer.start();
        // The closer returns at once (closing the storage under the write) or waits for the driver.
        await().atMost(Duration.ofSeconds(10)).until(() -> !closer.isAlive()
            || closer.getState() == Thread.State.TIMED_WAITING || closer.getState() == Thread.State.WAITING);
        store.gate.countDown();
        closer.join(Duration.ofSeconds(30).toMillis());
        assertFalse(closer.isAlive(), "close returned");
        assertFalse(store.closedUnderAWrite.get(), "the storage was closed while the driver wrote to it");
        for (CompletableFuture<AppendResult> f : futures) {
            assertTrue(f.isDone(), "every append is answered");
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
