package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** Several groups per process share one port, a fixed set of driver threads and a fixed set of fsync threads. */
class MultiRaftTest {

    private static final String[] IDS = {"n0", "n1", "n2"};
    private static final int GROUPS = 6;

    /** The transport of "process" {@code id} on a free loopback port, and its loops; each kept in the maps. */
    private static void startProcess(String id, RaftLoops processLoops, Map<String, NettyTransport> transports,
                                     Map<String, RaftLoops> loops, Map<String, InetSocketAddress> addresses) {
        NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
        transports.put(id, t);
        addresses.put(id, t.localAddress());
        loops.put(id, processLoops);
    }

    @Test
    void sixGroupsOnThreeProcessesShareTwoDriverThreadsEach() throws Exception {
        Map<String, NettyTransport> transports = new LinkedHashMap<>();
        Map<String, RaftLoops> loops = new LinkedHashMap<>();
        Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
        List<RaftGroupNode> nodes = new ArrayList<>();
        try {
            for (String id : IDS) {
                startProcess(id, new RaftLoops(2, "raft-" + id), transports, loops, addresses);
            }
            long before = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("raft-")).count();
            for (int g = 0; g < GROUPS; g++) {
                for (String id : IDS) {
                    nodes.add(new RaftGroupNode(NodeOptions.defaults("g" + g, id), Membership.of(IDS),
                        new MemoryNodeStorage(), StateMachine.NONE, transports.get(id), loops.get(id)));
                    transports.get(id).setPeers("g" + g, addresses);
                }
            }
            long after = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("raft-")).count();
            assertEquals(before, after, "groups must not start threads of their own");
            assertEquals(3 * 2, after);

            for (int g = 0; g < GROUPS; g++) {
                String group = "g" + g;
                await().atMost(Duration.ofSeconds(10)).until(() -> nodes.stream()
                    .anyMatch(n -> n.group().equals(group) && n.status().role() == Role.LEADER));
            }
            List<CompletableFuture<AppendResult>> acks = new ArrayList<>();
            for (RaftGroupNode n : nodes) {
                if (n.status().role() == Role.LEADER) {
                    for (int i = 0; i < 50; i++) {
                        acks.add(n.append(List.of((n.group() + "-" + i).getBytes(StandardCharsets.UTF_8))));
                    }
                }
            }
            assertEquals(GROUPS * 50, acks.size());
            for (CompletableFuture<AppendResult> f : acks) {
                assertEquals(AppendResult.Status.OK, f.get().status());
            }
        } finally {
            nodes.forEach(RaftGroupNode::close);
            loops.values().forEach(RaftLoops::close);
            transports.values().forEach(NettyTransport::close);
        }
    }

    /**
     * Four groups with {@link FlushMode#SYNC} per process on loops with one shared fsync thread: adding the groups
     * starts no thread (with a syncer thread per node it starts four per process), every sync runs on the process's
     * shared thread, and every acknowledged entry of every group is covered by a completed sync on a majority.
     */
    @Test
    void syncGroupsShareTheFlushThreadsAndEveryAcknowledgedEntryIsSynced() throws Exception {
        int groups = 4;
        Map<String, NettyTransport> transports = new LinkedHashMap<>();
        Map<String, RaftLoops> loops = new LinkedHashMap<>();
        Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
        List<RaftGroupNode> nodes = new ArrayList<>();
        Map<RaftGroupNode, GatedSyncStorage> stores = new LinkedHashMap<>();
        java.util.function.Predicate<Thread> raftThread = t -> t.getName().startsWith("flushtest-")
            || t.getName().startsWith("sync-");
        try {
            for (String id : IDS) {
                startProcess(id, new RaftLoops(1, 1, "flushtest-" + id), transports, loops, addresses);
            }
            long before = Thread.getAllStackTraces().keySet().stream().filter(raftThread).count();
            for (int g = 0; g < groups; g++) {
                for (String id : IDS) {
                    GatedSyncStorage storage = new GatedSyncStorage();
                    RaftGroupNode n = new RaftGroupNode(NodeOptions.defaults("s" + g, id).withFlush(FlushMode.SYNC),
                        Membership.of(IDS), storage, StateMachine.NONE, transports.get(id), loops.get(id));
                    nodes.add(n);
                    stores.put(n, storage);
                    transports.get(id).setPeers("s" + g, addresses);
                }
            }
            long after = Thread.getAllStackTraces().keySet().stream().filter(raftThread).count();
            System.out.printf("driver and fsync threads of 3 processes: %d before %d groups, %d after%n", before,
                groups, after);
            assertEquals(3 * 2, before, "one driver and one fsync thread per process");
            assertEquals(before, after, "groups must not start driver or fsync threads of their own");

            Map<String, Long> acked = new LinkedHashMap<>();
            for (int g = 0; g < groups; g++) {
                String group = "s" + g;
                await().atMost(Duration.ofSeconds(30)).until(() -> nodes.stream()
                    .anyMatch(n -> n.group().equals(group) && n.status().role() == Role.LEADER));
                RaftGroupNode leader = nodes.stream()
                    .filter(n -> n.group().equals(group) && n.status().role() == Role.LEADER).findFirst().orElseThrow();
                List<CompletableFuture<AppendResult>> futures = new ArrayList<>();
                for (int i = 0; i < 20; i++) {
                    futures.add(leader.append(List.of((group + "-" + i).getBytes(StandardCharsets.UTF_8))));
                }
                long last = -1;
                for (CompletableFuture<AppendResult> f : futures) {
                    AppendResult r = f.get();
                    assertEquals(AppendResult.Status.OK, r.status(), group);
                    last = Math.max(last, r.index());
                }
                acked.put(group, last);
            }
            for (Map.Entry<String, Long> a : acked.entrySet()) {
                long syncedOnMajority = nodes.stream().filter(n -> n.group().equals(a.getKey()))
                    .filter(n -> stores.get(n).syncedIndex() >= a.getValue()).count();
                assertTrue(syncedOnMajority >= 2, a.getKey() + ": acknowledged up to " + a.getValue()
                    + " but synced that far on " + syncedOnMajority + " nodes");
            }
            for (RaftGroupNode n : nodes) {
                // Besides the sync a node makes on the caller's thread as it starts (what its log holds counts as
                // durable), every sync ran on its process's shared thread.
                java.util.Set<String> threads = new java.util.HashSet<>(stores.get(n).syncThreads());
                threads.remove(Thread.currentThread().getName());
                assertEquals(java.util.Set.of("flushtest-" + n.id() + "-flush"), threads,
                    n.group() + " " + n.id() + " synced elsewhere than on its process's shared fsync thread");
            }
        } finally {
            nodes.forEach(RaftGroupNode::close);
            loops.values().forEach(RaftLoops::close);
            transports.values().forEach(NettyTransport::close);
        }
    }
}
