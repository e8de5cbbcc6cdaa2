package dev.dledger.raft.cli;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.server.NodeOptions;
import dev.dledger.raft.server.NodeStorage;
import dev.dledger.raft.server.RaftGroupNode;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/** A group of nodes in this process, each with its own port on loopback: for {@code demo} and {@code benchmark}. */
final class LocalGroup implements AutoCloseable {

    private final String group;
    private final Map<String, NettyTransport> transports = new LinkedHashMap<>();
    private final Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();
    private final Map<String, RaftGroupNode> nodes = new LinkedHashMap<>();

    private LocalGroup(String group) {
        this.group = group;
    }

    /** Starts nodes {@code ids} of {@code group}, each with the storage {@code storage} opens for its id. */
    static LocalGroup start(String group, String[] ids, FlushMode flush, Function<String, NodeStorage> storage) {
        LocalGroup g = new LocalGroup(group);
        try {
            for (String id : ids) {
                NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1,
                    NettyTransport.DEFAULT_MAX_FRAME_BYTES);
                g.transports.put(id, t);
                g.addresses.put(id, t.localAddress());
            }
            for (String id : ids) {
                g.nodes.put(id, new RaftGroupNode(NodeOptions.defaults(group, id).withFlush(flush), Membership.of(ids),
                    storage.apply(id), StateMachine.NONE, g.transports.get(id)));
                g.transports.get(id).setPeers(group, g.addresses);
            }
            return g;
        } catch (RuntimeException e) {
            g.close();
            throw e;
        }
    }

    String group() {
        return group;
    }

    /** Each node's address, by id. */
    Map<String, InetSocketAddress> addresses() {
        return addresses;
    }

    /** Waits until some node leads. */
    void awaitLeader(long timeoutSeconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        while (nodes.values().stream().noneMatch(n -> n.status().role() == Role.LEADER)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("no leader elected within " + timeoutSeconds + " s");
            }
            TimeUnit.MILLISECONDS.sleep(10);
        }
    }

    /** Stops a node and its port at once, as a killed process would vanish. */
    void kill(String id) {
        RaftGroupNode n = nodes.remove(id);
        if (n != null) {
            n.close();
        }
        NettyTransport t = transports.remove(id);
        if (t != null) {
            t.close();
        }
    }

    @Override
    public void close() {
        nodes.values().forEach(RaftGroupNode::close);
        transports.values().forEach(NettyTransport::close);
        nodes.clear();
        transports.clear();
    }
}
