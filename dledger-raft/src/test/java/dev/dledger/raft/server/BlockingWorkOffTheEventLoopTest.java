package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Drivers of several groups share a transport's event loop; the fsync of one group's term and vote must not stall the
 * others (issue 16, B7). Group "a" campaigns on a storage whose term/vote write blocks until the test lets it go;
 * meanwhile group "b", on the same event loop, must go on committing.
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

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
