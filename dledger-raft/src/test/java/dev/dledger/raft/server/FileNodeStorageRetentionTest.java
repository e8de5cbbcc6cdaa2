package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.store.EntryFormat;
import dev.dledger.raft.store.LogRetention;
import dev.dledger.raft.store.RetentionPolicy;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A node runs its storage's retention by itself: old files go, the log restarts from what is left. */
class FileNodeStorageRetentionTest {

    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(4096, 32 * 64);

    @TempDir
    Path base;

    private RaftGroupNode start(NettyTransport transport, Membership bootstrap, LogRetention retention) {
        FileNodeStorage storage = new FileNodeStorage(base.resolve("dledger-n0"), CONFIG, FlushMode.SYNC, 0, retention);
        RaftGroupNode node = new RaftGroupNode(NodeOptions.defaults("g", "n0").withFlush(FlushMode.SYNC), bootstrap,
            storage, StateMachine.NONE, transport);
        transport.setPeers("g", Map.of("n0", transport.localAddress()));
        await().atMost(Duration.ofSeconds(10)).until(() -> node.status().role() == Role.LEADER);
        return node;
    }

    private static byte[] body(int i) {
        return ("retained-" + i + "-" + "r".repeat(i % 100)).getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void nodeDeletesOldFilesItselfAndRestartsFromWhatIsLeft() throws Exception {
        // Files look ten days old to this clock, and the disk use passes the check ratio: expired files go at any hour.
        LogRetention retention = new LogRetention(RetentionPolicy.defaults(),
            Clock.offset(Clock.systemUTC(), Duration.ofDays(10)), folder -> 0.75);
        Path data = base.resolve("dledger-n0").resolve("data");
        NettyTransport transport = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
        List<Long> acked = new ArrayList<>();
        try {
            RaftGroupNode node = start(transport, Membership.of("n0"), retention);
            for (int i = 0; i < 400; i++) {
                AppendResult r = node.append(List.of(body(i))).get();
                assertEquals(AppendResult.Status.OK, r.status());
                acked.add(r.index());
            }
            await().atMost(Duration.ofSeconds(20))
                .until(() -> Files.notExists(data.resolve(EntryFormat.fileName(0))));
            node.close();

            long first;
            try (SegmentedLogStore s = SegmentedLogStore.open(base.resolve("dledger-n0"), CONFIG)) {
                first = s.firstIndex();
                assertTrue(first > 0, "a prefix is gone");
                assertTrue(first <= acked.get(acked.size() - 1) + 1, "nothing past the commit index");
                assertEquals(Membership.of("n0"), s.snapshot().membership(), "the voters are recorded at the cut");
                assertEquals(null, s.verify().problem());
            }

            // Restart without a bootstrap membership: the voters recorded with the deletion make n0 leader again.
            RaftGroupNode again = start(transport, Membership.EMPTY, null);
            AppendResult after = again.append(List.of("after".getBytes(StandardCharsets.UTF_8))).get();
            assertEquals(AppendResult.Status.OK, after.status());
            int i = 0;
            while (acked.get(i) < first) {
                i++;
            }
            assertArrayEquals(body(i), again.get(acked.get(i)).get().data(), "the first entry kept reads back");
            again.close();
        } finally {
            transport.close();
        }
    }

    @Test
    void leaderRefusesAppendsWhileTheDiskIsAboveTheFullRatio() throws Exception {
        // Files are fresh (nothing may go), so only the disk use decides; the full ratio is 0.85 + 0.05.
        java.util.concurrent.atomic.AtomicReference<Double> used = new java.util.concurrent.atomic.AtomicReference<>(0.5);
        LogRetention retention = new LogRetention(RetentionPolicy.defaults(), Clock.systemUTC(), folder -> used.get());
        NettyTransport transport = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
        try {
            RaftGroupNode node = start(transport, Membership.of("n0"), retention);
            AppendResult before = node.append(List.of(body(1))).get();
            assertEquals(AppendResult.Status.OK, before.status());

            used.set(0.91);
            await().atMost(Duration.ofSeconds(10)).until(() -> retention.diskFull() != null);
            assertTrue(retention.diskFull().contains("91% used, above the 90%"), retention.diskFull());
            AppendResult refused = node.append(List.of(body(2))).get();
            assertEquals(AppendResult.Status.DISK_FULL, refused.status());
            // An append built on the driver thread (as the broker's puts are) is refused the same way, unbuilt.
            boolean[] built = {false};
            AppendResult refusedBuilt = node.append(term -> {
                built[0] = true;
                return List.of(body(2));
            }).get();
            assertEquals(AppendResult.Status.DISK_FULL, refusedBuilt.status());
            assertTrue(!built[0], "the builder of a refused append ran");
            assertEquals(before.index(), node.status().commitIndex(), "nothing was appended");
            assertArrayEquals(body(1), node.get(before.index()).get().data(), "what was stored stays readable");

            used.set(0.89);
            await().atMost(Duration.ofSeconds(10)).until(() -> retention.diskFull() == null);
            AppendResult after = node.append(List.of(body(3))).get();
            assertEquals(AppendResult.Status.OK, after.status());
            assertEquals(before.index() + 1, after.index(), "the refused append left no entry behind");
            node.close();
        } finally {
            transport.close();
        }
    }
}
