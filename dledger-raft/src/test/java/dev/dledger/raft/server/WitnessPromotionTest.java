package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.ProposeResult;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.KeyValueStateMachine;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A witness turned into a data member online (issue 19), on real files: two data members and a witness that dropped
 * whole data files of bodies; the promotion replaces its log with a snapshot taken for it, catches it up and makes it a
 * data member, which then holds every body from there on, keeps its state, leads when the others go, and restarts.
 */
class WitnessPromotionTest {

    private static final String[] IDS = {"n0", "n1", "w"};
    /** Small data files, so that the witness drops whole files of bodies. */
    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(64 * 1024, 32 * 4096);
    private static final Duration WAIT = Duration.ofSeconds(30);

    @TempDir
    Path base;

    private final Map<String, NettyTransport> transports = new LinkedHashMap<>();
    private final Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
    private final Map<String, RaftGroupNode> nodes = new LinkedHashMap<>();
    private final Map<String, KeyValueStateMachine> machines = new LinkedHashMap<>();
    /** Applied entries between two snapshots of every node. */
    private long snapshotThreshold = 1000;

    @AfterEach
    void stop() {
        nodes.values().forEach(RaftGroupNode::close);
        transports.values().forEach(NettyTransport::close);
    }

    private void start(String id) {
        KeyValueStateMachine machine = new KeyValueStateMachine();
        FileNodeStorage storage = new FileNodeStorage(base.resolve("dledger-" + id), CONFIG, FlushMode.ASYNC, 0);
        RaftGroupNode n = new RaftGroupNode(NodeOptions.defaults("g", id).withSnapshotThreshold(snapshotThreshold),
            new Membership(List.of(IDS)).withWitness("w", true), storage, machine, transports.get(id));
        transports.get(id).setPeers("g", addresses);
        nodes.put(id, n);
        machines.put(id, machine);
    }

    private RaftGroupNode dataLeader() {
        await().atMost(WAIT).until(() -> nodes.values().stream().anyMatch(n -> n.status().role() == Role.LEADER
            && !n.id().equals("w")));
        return nodes.values().stream().filter(n -> n.status().role() == Role.LEADER).findFirst().orElseThrow();
    }

    private static byte[] value(int i) {
        return ("value-" + i + "-" + "x".repeat(40)).getBytes(StandardCharsets.UTF_8);
    }

    private List<Long> write(RaftGroupNode leader, int from, int to) throws Exception {
        List<Long> acked = new ArrayList<>();
        for (int i = from; i < to; i++) {
            AppendResult r = leader.append(List.of(KeyValueStateMachine.set("k" + i, new String(value(i),
                StandardCharsets.UTF_8)))).get();
            assertEquals(AppendResult.Status.OK, r.status(), "append " + i);
            acked.add(r.index());
        }
        return acked;
    }

    /**
     * Whether {@code n} refuses the body of {@code index} as dropped. The refusal fails the caller only: the node goes
     * on (a read of a dropped body once stopped the witness's driver and left the caller waiting).
     */
    private static boolean bodyDropped(RaftGroupNode n, long index) throws Exception {
        try {
            n.get(index).get(WAIT.toSeconds(), TimeUnit.SECONDS);
            return false;
        } catch (ExecutionException e) {
            boolean dropped = e.getCause() instanceof IllegalStateException
                && e.getCause().getMessage().contains("body dropped");
            assertFalse(n.status().failed(), n.id() + " failed after refusing a read: " + e.getCause());
            return dropped;
        }
    }

    private void startAll() {
        for (String id : IDS) {
            NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
            transports.put(id, t);
            addresses.put(id, t.localAddress());
        }
        for (String id : IDS) {
            start(id);
        }
    }

    /** Waits until the witness dropped bodies; returns the last index it dropped the body of. */
    private long awaitDrops() throws Exception {
        Path wDir = base.resolve("dledger-w");
        await("the witness drops bodies").atMost(WAIT).until(() -> Files.exists(wDir.resolve("dropped")));
        long dropped;
        try (var in = Files.newInputStream(wDir.resolve("dropped"))) {
            java.util.Properties p = new java.util.Properties();
            p.load(in);
            dropped = Long.parseLong(p.getProperty("through"));
        }
        RaftGroupNode w = nodes.get("w");
        assertTrue(bodyDropped(w, dropped) || w.get(dropped).get(WAIT.toSeconds(), TimeUnit.SECONDS) == null,
            "no body of " + dropped + " on the witness");
        return dropped;
    }

    private void awaitDataMember(RaftGroupNode leader, String id) {
        await(id + " is a data member").atMost(WAIT).until(() -> {
            Membership m = leader.membership().get();
            return m.voters().contains(id) && !m.isWitness(id);
        });
    }

    @Test
    void aWitnessThatDroppedBodiesIsPromotedOnlineAndHoldsTheWholeLogFromItsSnapshotOn() throws Exception {
        startAll();
        RaftGroupNode leader = dataLeader();
        List<Long> acked = write(leader, 0, 3000);
        RaftGroupNode w = nodes.get("w");
        Path wDir = base.resolve("dledger-w");
        long dropped = awaitDrops();

        ProposeResult asked = leader.promoteWitness("w").get();
        assertEquals(ProposeResult.Status.CATCHING_UP, asked.status(), "removed first, then refilled: " + asked);
        // Writes go on meanwhile, acknowledged by the two data members.
        acked.addAll(write(leader, 3000, 3200));
        awaitDataMember(leader, "w");
        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, leader.promoteWitness("w").get().status(),
            "a data member is not promoted again");
        acked.addAll(write(leader, 3200, 3300));
        long last = acked.get(acked.size() - 1);
        await("w applied everything").atMost(WAIT).until(() -> w.status().appliedIndex() >= last);

        // Its log is a snapshot taken for it, then every entry with its body; its state is the group's.
        assertFalse(Files.exists(wDir.resolve("dropped")), "the record of dropped bodies is gone");
        long wFirst = -1;
        for (int i = 0; i < acked.size(); i++) {
            long index = acked.get(i);
            Entry e = w.get(index).get(WAIT.toSeconds(), TimeUnit.SECONDS);
            if (e == null) {
                assertTrue(wFirst < 0, "entries missing only below the snapshot: " + index);
                continue;
            }
            wFirst = wFirst < 0 ? index : wFirst;
            assertArrayEquals(KeyValueStateMachine.set("k" + i, new String(value(i), StandardCharsets.UTF_8)),
                e.data(), "entry " + index);
        }
        assertTrue(wFirst > dropped, "its log starts after the bodies it dropped (through " + dropped + "), at " + wFirst);
        assertEquals(machines.get(leader.id()).size(), machines.get("w").size(), "the same keys as the leader");
        assertArrayEquals(value(5), machines.get("w").query(KeyValueStateMachine.get("k5")), "a key from the snapshot");
        assertArrayEquals(value(3250), machines.get("w").query(KeyValueStateMachine.get("k3250")),
            "a key written after it");

        // The data members may now be any two of three: the old leader goes, w and the other one go on.
        String gone = leader.id();
        nodes.remove(gone).close();
        RaftGroupNode next = dataLeader();
        List<Long> later = write(next, 3300, 3400);
        long end = later.get(later.size() - 1);
        await().atMost(WAIT).until(() -> w.status().appliedIndex() >= end);
        assertArrayEquals(value(3399), machines.get("w").query(KeyValueStateMachine.get("k3399")));

        // w restarts as a data member: its files are a whole log, nothing dropped.
        nodes.remove("w").close();
        try (SegmentedLogStore s = SegmentedLogStore.open(wDir, CONFIG)) {
            assertNull(s.verify().problem(), "w's log verifies");
            assertEquals(-1, s.droppedBodiesThrough(), "nothing dropped");
            assertTrue(s.lastIndex() >= end, "w holds what was acknowledged");
        }
        start("w");
        await("w back and caught up").atMost(WAIT).until(() -> nodes.get("w").status().appliedIndex() >= end);
        assertEquals(machines.get(next.id()).size(), machines.get("w").size());
    }

    @Test
    void aReadOfABodyTheWitnessDroppedFailsTheReadOnly() throws Exception {
        // No snapshot: the witness's log keeps every entry, the ones whose bodies it dropped too.
        snapshotThreshold = 1_000_000;
        startAll();
        RaftGroupNode leader = dataLeader();
        write(leader, 0, 3000);
        long dropped = awaitDrops();
        RaftGroupNode w = nodes.get("w");
        assertTrue(bodyDropped(w, dropped), "entry " + dropped + " is in the witness's log without its body");
        // The witness goes on: it acknowledges and applies what comes next.
        List<Long> later = write(leader, 3000, 3100);
        long end = later.get(later.size() - 1);
        await("w applies after the refused read").atMost(WAIT).until(() -> w.status().appliedIndex() >= end);
        assertFalse(w.status().failed());
    }

    @Test
    void aRemovedWitnessIsPromotedByALeaderThatKnowsItWasOne() throws Exception {
        startAll();
        RaftGroupNode leader = dataLeader();
        write(leader, 0, 3000);
        awaitDrops();
        // Removed as any voter (or by a promotion whose leader then lost its leadership): it is no member now.
        assertEquals(ProposeResult.Status.ACCEPTED, leader.removeVoter("w").get().status());
        await().atMost(WAIT).until(() -> !leader.status().voters().contains("w")
            && leader.status().commitIndex() >= leader.status().lastIndex());
        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, leader.promoteWitness("n9").get().status(),
            "never a witness");
        assertEquals(ProposeResult.Status.CATCHING_UP, leader.promoteWitness("w").get().status());
        write(leader, 3000, 3100);
        awaitDataMember(leader, "w");
        long last = leader.status().lastIndex();
        await("w applied everything").atMost(WAIT).until(() -> nodes.get("w").status().appliedIndex() >= last);
        assertEquals(machines.get(leader.id()).size(), machines.get("w").size(), "the same keys as the leader");
        assertFalse(Files.exists(base.resolve("dledger-w").resolve("dropped")));
    }
}
