package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** A node whose disk fails stops acknowledging: nothing after the failure is reported committed. */
class StorageFailureTest {

    /** Memory until {@code failAfter} entries were appended, then every append fails. */
    private static final class FailingStorage extends MemoryNodeStorage {
        private final long failAfter;

        FailingStorage(long failAfter) {
            this.failAfter = failAfter;
        }

        @Override
        public long[] append(List<Entry> entries) {
            if (lastIndex() + entries.size() > failAfter) {
                throw new StorageException("append failed: No space left on device");
            }
            return super.append(entries);
        }
    }

    @Test
    void nodeWhoseDiskFailsStopsAcknowledgingAndSaysSo() throws Exception {
        try (NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 20)) {
            FailingStorage storage = new FailingStorage(50);
            RaftGroupNode node = new RaftGroupNode(NodeOptions.defaults("g", "n0"), Membership.of("n0"), storage,
                StateMachine.NONE, t);
            t.setPeers("g", Map.of());
            await().atMost(Duration.ofSeconds(10)).until(() -> node.status().role() == Role.LEADER);
            // 40 appends fit; they are acknowledged.
            for (int i = 0; i < 40; i++) {
                assertEquals(AppendResult.Status.OK, node.append(List.of(new byte[] {(byte) i})).get().status());
            }
            // The disk fills up under the next ones: none of them may be acknowledged.
            List<CompletableFuture<AppendResult>> acks = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                acks.add(node.append(List.of(new byte[] {(byte) i})));
            }
            long maxOk = -1;
            for (CompletableFuture<AppendResult> f : acks) {
                AppendResult r = f.get();
                if (r.status() == AppendResult.Status.OK) {
                    maxOk = Math.max(maxOk, r.index());
                } else {
                    assertEquals(AppendResult.Status.STOPPED, r.status());
                }
            }
            assertTrue(maxOk <= 50, "nothing past the stored entries is acknowledged: " + maxOk);
            assertEquals(AppendResult.Status.STOPPED, acks.get(acks.size() - 1).get().status());
            assertTrue(node.status().failed(), "the node reports its failure");
            assertEquals(AppendResult.Status.STOPPED, node.append(List.of(new byte[] {1})).get().status());
            node.close();
        }
    }
}
