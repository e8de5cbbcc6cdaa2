package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.faults.ProxyMesh;
import dev.dledger.raft.statemachine.KeyValueStateMachine;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyTransport;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A leader whose driver stands still (as under SIGSTOP or a long GC) for longer than an election timeout is replaced
 * meanwhile; when it moves again, a lease read it finds waiting must not be answered on its old lease, which would
 * miss a write the new leader acknowledged. Found by the fault runs (RaftFaultsIT, SIGSTOP of the leader).
 *
 * <p>The leader's driver thread is held inside its state machine's apply (apply runs on the driver thread), so it
 * neither ticks nor takes inputs while its transport keeps queueing them, exactly as in a paused process. Its peers
 * are cut from it meanwhile (through {@link ProxyMesh}), so nothing from the new leader tells it that it was deposed.
 */
class PausedLeaderLeaseTest {

    private static final String[] IDS = {"n0", "n1", "n2"};
    private final Map<String, NettyTransport> transports = new LinkedHashMap<>();
    private final Map<String, RaftGroupNode> nodes = new LinkedHashMap<>();
    private final Map<String, FreezingStateMachine> machines = new LinkedHashMap<>();
    private ProxyMesh mesh;

    /** A key-value register whose apply can be made to wait, holding its node's driver thread. */
    private static final class FreezingStateMachine implements StateMachine {
        private final KeyValueStateMachine kv = new KeyValueStateMachine();
        private volatile byte[] freezeOn;
        private final CountDownLatch frozen = new CountDownLatch(1);
        private final CountDownLatch thaw = new CountDownLatch(1);

        @Override
        public List<byte[]> apply(List<Entry> committed) {
            List<byte[]> results = kv.apply(committed);
            byte[] trigger = freezeOn;
            if (trigger != null && committed.stream().anyMatch(e -> java.util.Arrays.equals(e.data(), trigger))) {
                frozen.countDown();
                try {
                    thaw.await(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return results;
        }

        @Override
        public byte[] query(byte[] query) {
            return kv.query(query);
        }

        @Override
        public void snapshot(long lastIndex, OutputStream out) throws IOException {
            kv.snapshot(lastIndex, out);
        }

        @Override
        public void restore(long lastIndex, InputStream in) throws IOException {
            kv.restore(lastIndex, in);
        }
    }

    @AfterEach
    void stop() {
        machines.values().forEach(m -> m.thaw.countDown());
        nodes.values().forEach(RaftGroupNode::close);
        transports.values().forEach(NettyTransport::close);
        if (mesh != null) {
            mesh.close();
        }
    }

    @Test
    void aLeaderThatStoodStillDoesNotServeLeaseReadsOnItsOldLease() throws Exception {
        Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
        for (String id : IDS) {
            NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
            transports.put(id, t);
            addresses.put(id, t.localAddress());
        }
        mesh = new ProxyMesh(addresses);
        for (String id : IDS) {
            FreezingStateMachine sm = new FreezingStateMachine();
            machines.put(id, sm);
            nodes.put(id, new RaftGroupNode(NodeOptions.defaults("g", id), Membership.of(IDS), new MemoryNodeStorage(),
                sm, transports.get(id)));
            transports.get(id).setPeers("g", mesh.peersFor(id));
        }
        RaftGroupNode old = awaitLeader(null);
        assertEquals(AppendResult.Status.OK, old.append(List.of(KeyValueStateMachine.set("k", "before"))).get()
            .status());

        // The leader's driver stands still right after a quorum acknowledged it: its lease is fresh.
        byte[] freeze = KeyValueStateMachine.set("freeze", "now");
        machines.get(old.id()).freezeOn = freeze;
        old.append(List.of(freeze));
        assertTrue(machines.get(old.id()).frozen.await(10, TimeUnit.SECONDS), "the leader's driver is held");
        List<ProxyMesh.LinkFault> cut = new ArrayList<>();
        for (String id : IDS) {
            if (!id.equals(old.id())) {
                cut.add(new ProxyMesh.LinkFault(id, old.id(), ProxyMesh.LinkMode.DROP, 0));
            }
        }
        mesh.add("nothing reaches the old leader", cut);

        // Meanwhile the others elect a leader, which acknowledges a write.
        RaftGroupNode next = awaitLeader(old);
        AppendResult after = next.append(List.of(KeyValueStateMachine.set("k", "after"))).get();
        assertEquals(AppendResult.Status.OK, after.status());

        // A lease read waits at the old leader; then its driver moves again.
        CompletableFuture<byte[]> read = old.query(KeyValueStateMachine.get("k"), true);
        machines.get(old.id()).thaw.countDown();
        String answer;
        try {
            byte[] value = read.get(30, TimeUnit.SECONDS);
            answer = value == null ? null : new String(value, StandardCharsets.UTF_8);
        } catch (ExecutionException e) {
            answer = "failed: " + e.getCause();
        }
        assertNotEquals("before", answer, "a lease read answered on a lease that ran out while the leader stood "
            + "still misses the write the new leader " + next.id() + " acknowledged at index " + after.index());
    }

    private RaftGroupNode awaitLeader(RaftGroupNode not) {
        RaftGroupNode[] leader = new RaftGroupNode[1];
        await().atMost(Duration.ofSeconds(20)).until(() -> {
            for (RaftGroupNode n : nodes.values()) {
                if (n != not && n.status().role() == Role.LEADER) {
                    leader[0] = n;
                    return true;
                }
            }
            return false;
        });
        return leader[0];
    }
}
