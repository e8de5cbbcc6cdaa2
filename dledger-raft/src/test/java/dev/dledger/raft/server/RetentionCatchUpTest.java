package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.store.LogRetention;
import dev.dledger.raft.store.RetentionPolicy;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A follower that fell behind what retention left of the leader's log is caught up by InstallSnapshot, and its log
 * goes on at the leader's positions: each later entry sits at the same data position on every node, which RocketMQ's
 * physical offsets and message ids are built from.
 */
class RetentionCatchUpTest {

    private static final String[] IDS = {"n0", "n1", "n2"};
    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(4096, 32 * 64);

    @TempDir
    Path base;

    private final Map<String, NettyTransport> transports = new LinkedHashMap<>();
    private final Map<String, FileNodeStorage> stores = new LinkedHashMap<>();
    private final Map<String, RaftGroupNode> nodes = new LinkedHashMap<>();
    private final Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();

    private void start(String id, boolean retain) {
        // Files look ten days old and the disk looks 75% full: expired files go at any hour, as far as committed.
        LogRetention retention = retain ? new LogRetention(RetentionPolicy.defaults(),
            Clock.offset(Clock.systemUTC(), Duration.ofDays(10)), folder -> 0.75) : null;
        FileNodeStorage storage = new FileNodeStorage(base.resolve("dledger-" + id), CONFIG, FlushMode.ASYNC, 100,
            retention);
        stores.put(id, storage);
        nodes.put(id, new RaftGroupNode(NodeOptions.defaults("g", id), Membership.of(IDS), storage, StateMachine.NONE,
            transports.get(id)));
        transports.get(id).setPeers("g", addresses);
    }

    @AfterEach
    void stop() {
        nodes.values().forEach(RaftGroupNode::close);
        transports.values().forEach(NettyTransport::close);
    }

    private static byte[] body(int i) {
        return ("entry-" + i + "-" + "p".repeat(i % 90)).getBytes(StandardCharsets.UTF_8);
    }

    /** The node that leads now, or null. */
    private RaftGroupNode leader() {
        return nodes.values().stream().filter(n -> n.status().role() == Role.LEADER).findFirst().orElse(null);
    }

    /** Appends through whichever node leads, again when a busy machine moved the leadership meanwhile. */
    private AppendResult append(byte[] body) {
        AppendResult[] r = new AppendResult[1];
        // At once, then every 100 ms while refused: a wait before the first try would add up over 600 appends.
        await().pollDelay(Duration.ZERO).atMost(Duration.ofSeconds(30)).ignoreExceptions().until(() -> {
            RaftGroupNode l = leader();
            if (l == null) {
                return false;
            }
            r[0] = l.append(List.of(body)).get();
            return r[0].status() == AppendResult.Status.OK;
        });
        return r[0];
    }

    private long commitIndex() {
        return nodes.values().stream().mapToLong(n -> n.status().commitIndex()).max().orElse(-1);
    }

    @Test
    void followerBehindRetentionGoesOnAtTheLeadersPositions() throws Exception {
        for (String id : IDS) {
            NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
            transports.put(id, t);
            addresses.put(id, t.localAddress());
        }
        // n0 and n1 keep their logs short by retention; n2 joins after, writes a few entries, and stops.
        start("n0", true);
        start("n1", true);
        await().atMost(Duration.ofSeconds(30)).until(() -> leader() != null);
        start("n2", false);
        for (int i = 0; i < 5; i++) {
            append(body(i));
        }
        await().atMost(Duration.ofSeconds(10)).until(() -> nodes.get("n2").status().appliedIndex() >= commitIndex());
        nodes.remove("n2").close();
        stores.remove("n2");

        for (int i = 5; i < 600; i++) {
            append(body(i));
        }
        await().atMost(Duration.ofSeconds(20)).until(() -> stores.get("n0").store().firstIndex() > 100
            && stores.get("n1").store().firstIndex() > 100);
        for (String id : List.of("n0", "n1")) {
            assertTrue(SnapshotPosition.isPosition(stores.get(id).snapshotData()),
                "a log compacted by retention sends where it goes on");
        }

        start("n2", false);
        long target = commitIndex();
        await().atMost(Duration.ofSeconds(30)).until(() -> nodes.get("n2").status().appliedIndex() >= target);
        String leaderId = leader() == null || leader().id().equals("n2") ? "n0" : leader().id();
        // The logs are compared at rest: retention runs on the drivers and deletes files, which a reader on this
        // thread would race (seen: a file gone under a read, an index compacted away between two reads).
        stopAll();
        try (FileNodeStorage follower = reopen("n2"); FileNodeStorage leader = reopen(leaderId)) {
            SegmentedLogStore followerLog = follower.store();
            SegmentedLogStore leaderLog = leader.store();
            assertTrue(followerLog.snapshot().index() > 5, "n2 was caught up by a snapshot: " + followerLog.snapshot());
            long first = Math.max(followerLog.firstIndex(), leaderLog.firstIndex());
            long last = Math.min(followerLog.lastIndex(), leaderLog.lastIndex());
            // Retention may have kept only the newest file, so there may be few entries after the snapshot; the append
            // at the end adds one in any case.
            assertTrue(last >= first, "entries after the snapshot: " + first + ".." + last);
            for (long i = first; i <= last; i++) {
                assertEquals(leaderLog.position(i), followerLog.position(i), "position of entry " + i);
                assertArrayEquals(leaderLog.entries(i, i + 1, Long.MAX_VALUE).get(0).data(),
                    followerLog.entries(i, i + 1, Long.MAX_VALUE).get(0).data(), "entry " + i);
            }
            assertNull(followerLog.verify().problem());
        }

        // The start survives a restart of the follower, and new entries still land at equal positions.
        for (String id : IDS) {
            start(id, false);
        }
        AppendResult more = append(body(600));
        await().atMost(Duration.ofSeconds(20)).until(() -> nodes.values().stream()
            .allMatch(n -> n.status().appliedIndex() >= more.index()));
        stopAll();
        try (FileNodeStorage n0 = reopen("n0"); FileNodeStorage n2 = reopen("n2")) {
            assertEquals(n0.store().position(more.index()), n2.store().position(more.index()));
        }
    }

    /** Stops every node (which closes its storage). */
    private void stopAll() {
        nodes.values().forEach(RaftGroupNode::close);
        nodes.clear();
        stores.clear();
    }

    /** The storage of node {@code id}, stopped, opened again without retention to be read. */
    private FileNodeStorage reopen(String id) {
        return new FileNodeStorage(base.resolve("dledger-" + id), CONFIG, FlushMode.ASYNC, 100, null);
    }
}
