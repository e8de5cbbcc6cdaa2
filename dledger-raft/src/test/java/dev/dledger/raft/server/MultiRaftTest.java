package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

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

/** Several groups per process share one port and a fixed set of driver threads. */
class MultiRaftTest {

    private static final String[] IDS = {"n0", "n1", "n2"};
    private static final int GROUPS = 6;

    @Test
    void sixGroupsOnThreeProcessesShareTwoDriverThreadsEach() throws Exception {
        Map<String, NettyTransport> transports = new LinkedHashMap<>();
        Map<String, RaftLoops> loops = new LinkedHashMap<>();
        Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
        List<RaftGroupNode> nodes = new ArrayList<>();
        try {
            for (String id : IDS) {
                NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
                transports.put(id, t);
                addresses.put(id, t.localAddress());
                loops.put(id, new RaftLoops(2, "raft-" + id));
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
}
