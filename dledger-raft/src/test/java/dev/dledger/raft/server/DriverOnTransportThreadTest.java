package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyIo;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** Without shared loops, a node's driver runs on its Netty transport's thread and starts no thread of its own. */
class DriverOnTransportThreadTest {

    private static final String[] IDS = {"n0", "n1", "n2"};

    @Test
    void driversRunOnTheTransportThreadAndStopWhenTheTransportClosedFirst() throws Exception {
        Map<String, NettyTransport> transports = new LinkedHashMap<>();
        Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
        List<RaftGroupNode> nodes = new ArrayList<>();
        try {
            for (String id : IDS) {
                NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
                transports.put(id, t);
                addresses.put(id, t.localAddress());
            }
            for (String id : IDS) {
                nodes.add(new RaftGroupNode(NodeOptions.defaults("g", id), Membership.of(IDS), new MemoryNodeStorage(),
                    StateMachine.NONE, transports.get(id)));
                transports.get(id).setPeers("g", addresses);
            }
            assertTrue(Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().startsWith("raft-g-")),
                "no driver thread of its own");
            await().atMost(Duration.ofSeconds(10)).until(() -> nodes.stream()
                .anyMatch(n -> n.status().role() == Role.LEADER));
            RaftGroupNode leader = nodes.stream().filter(n -> n.status().role() == Role.LEADER).findFirst()
                .orElseThrow();
            // A function attached to a future runs on the thread that completes it, or on the attaching thread when
            // the future is already complete, or on a thread waiting in get() that gets there first. So nothing here
            // waits in get(): the function records its thread and Awaitility polls for it. A read that ran on this
            // thread was complete when attached and tells nothing about the driver; the others must have run on
            // the transport's event loop.
            int pendingWhenAttached = 0;
            String self = Thread.currentThread().getName();
            for (int attempt = 0; attempt < 50 && pendingWhenAttached < 3; attempt++) {
                AtomicReference<String> where = new AtomicReference<>();
                leader.readIndex(false).thenAccept(i -> where.set(Thread.currentThread().getName()));
                await().atMost(Duration.ofSeconds(10)).until(() -> where.get() != null);
                if (!where.get().equals(self)) {
                    pendingWhenAttached++;
                    assertTrue(where.get().startsWith(NettyIo.EPOLL ? "epollEventLoopGroup" : "nioEventLoopGroup"),
                        "futures complete on the driver's thread, here " + where.get());
                }
            }
            assertTrue(pendingWhenAttached > 0, "no read was still pending when its function was attached");
            List<CompletableFuture<AppendResult>> acks = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                acks.add(leader.append(List.of(new byte[] {(byte) i})));
            }
            for (CompletableFuture<AppendResult> f : acks) {
                assertEquals(AppendResult.Status.OK, f.get(10, TimeUnit.SECONDS).status());
            }

            // A follower whose transport is closed first still stops at once and completes what waits on it.
            RaftGroupNode follower = nodes.stream().filter(n -> n != leader).findFirst().orElseThrow();
            transports.remove(follower.id()).close();
            CompletableFuture<Long> read = follower.readIndex(false);
            long start = System.nanoTime();
            follower.close();
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(4), "close waited for a dead thread");
            assertTrue(read.isDone(), "a read posted to a stopped driver is completed");
        } finally {
            nodes.forEach(RaftGroupNode::close);
            transports.values().forEach(NettyTransport::close);
        }
    }
}
