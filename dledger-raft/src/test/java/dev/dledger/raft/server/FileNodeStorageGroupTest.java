package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A group on the segmented store: what was acknowledged is on every disk, in DLedger's format, after a restart. */
class FileNodeStorageGroupTest {

    private static final String[] IDS = {"n0", "n1", "n2"};
    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(256 * 1024, 32 * 4096);

    @TempDir
    Path base;

    private List<RaftGroupNode> start(Map<String, NettyTransport> transports, Map<String, InetSocketAddress> addresses) {
        List<RaftGroupNode> nodes = new ArrayList<>();
        for (String id : IDS) {
            FileNodeStorage storage = new FileNodeStorage(base.resolve("dledger-" + id), CONFIG, FlushMode.SYNC, 0);
            nodes.add(new RaftGroupNode(NodeOptions.defaults("g", id).withFlush(FlushMode.SYNC), Membership.of(IDS),
                storage, StateMachine.NONE, transports.get(id)));
            transports.get(id).setPeers("g", addresses);
        }
        return nodes;
    }

    private static RaftGroupNode leader(List<RaftGroupNode> nodes) {
        await().atMost(Duration.ofSeconds(10)).until(() -> nodes.stream().anyMatch(n -> n.status().role() == Role.LEADER));
        return nodes.stream().filter(n -> n.status().role() == Role.LEADER).findFirst().orElseThrow();
    }

    @Test
    void acknowledgedEntriesSurviveAFullRestartOnEveryDisk() throws Exception {
        Map<String, NettyTransport> transports = new LinkedHashMap<>();
        Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
        for (String id : IDS) {
            NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
            transports.put(id, t);
            addresses.put(id, t.localAddress());
        }
        List<Long> acked = new ArrayList<>();
        long lastTerm;
        try {
            List<RaftGroupNode> nodes = start(transports, addresses);
            RaftGroupNode leader = leader(nodes);
            for (int i = 0; i < 500; i++) {
                AppendResult r = leader.append(List.of(("persisted-" + i).getBytes(StandardCharsets.UTF_8))).get();
                assertEquals(AppendResult.Status.OK, r.status());
                acked.add(r.index());
            }
            long last = acked.get(acked.size() - 1);
            await().atMost(Duration.ofSeconds(5)).until(() -> nodes.stream().allMatch(n -> n.status().commitIndex() >= last));
            lastTerm = leader.status().term();
            nodes.forEach(RaftGroupNode::close);

            for (String id : IDS) {
                Path dir = base.resolve("dledger-" + id);
                try (SegmentedLogStore s = SegmentedLogStore.open(dir, CONFIG)) {
                    assertTrue(s.lastIndex() >= last, id + " holds every acknowledged entry");
                    assertEquals(null, s.verify().problem(), id);
                    for (int i = 0; i < acked.size(); i++) {
                        Entry e = s.entries(acked.get(i), acked.get(i) + 1, Long.MAX_VALUE).get(0);
                        assertArrayEquals(("persisted-" + i).getBytes(StandardCharsets.UTF_8), e.data());
                    }
                }
                HardState hs = new dev.dledger.raft.store.MetaFiles(dir).readHardState();
                assertTrue(hs.term() >= lastTerm, id + " persisted its term");
            }

            List<RaftGroupNode> again = start(transports, addresses);
            RaftGroupNode next = leader(again);
            assertTrue(next.status().term() > lastTerm, "a new term after the restart");
            AppendResult after = next.append(List.of("after".getBytes(StandardCharsets.UTF_8))).get();
            assertEquals(AppendResult.Status.OK, after.status());
            assertTrue(after.index() > acked.get(acked.size() - 1));
            assertArrayEquals("persisted-0".getBytes(StandardCharsets.UTF_8), next.get(acked.get(0)).get().data());
            again.forEach(RaftGroupNode::close);
        } finally {
            transports.values().forEach(NettyTransport::close);
        }
    }
}
