package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.core.SnapshotMeta;
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

    /** Delegates to memory until {@code failAfter} entries were appended, then fails every append. */
    private static final class FailingStorage implements NodeStorage {
        private final MemoryNodeStorage inner = new MemoryNodeStorage();
        private final long failAfter;

        FailingStorage(long failAfter) {
            this.failAfter = failAfter;
        }

        @Override
        public LogView log() {
            return inner.log();
        }

        @Override
        public HardState hardState() {
            return inner.hardState();
        }

        @Override
        public void saveHardState(HardState hs) {
            inner.saveHardState(hs);
        }

        @Override
        public void truncateSuffix(long fromIndex) {
            inner.truncateSuffix(fromIndex);
        }

        @Override
        public long[] append(List<Entry> entries) {
            if (inner.lastIndex() + entries.size() > failAfter) {
                throw new StorageException("append failed: No space left on device");
            }
            return inner.append(entries);
        }

        @Override
        public void sync() {
        }

        @Override
        public List<Entry> configEntries() {
            return inner.configEntries();
        }

        @Override
        public byte[] snapshotData() {
            return inner.snapshotData();
        }

        @Override
        public void saveSnapshot(SnapshotMeta meta, byte[] data) {
            inner.saveSnapshot(meta, data);
        }

        @Override
        public void installSnapshot(SnapshotMeta meta, byte[] data) {
            inner.installSnapshot(meta, data);
        }

        @Override
        public long committedCheckpoint() {
            return inner.committedCheckpoint();
        }

        @Override
        public void checkpointCommit(long commitIndex) {
            inner.checkpointCommit(commitIndex);
        }

        @Override
        public void close() {
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
