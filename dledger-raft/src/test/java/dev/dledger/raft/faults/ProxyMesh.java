package dev.dledger.raft.faults;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One {@link FaultProxy} per directed link between the nodes of a group: node {@code from} reaches peer {@code to}
 * through the proxy of the link {@code from->to}, so each link can be cut, stalled or delayed on its own.
 *
 * <p>Network faults are added and removed by name ({@link #add}, {@link #remove}); after each change every proxy is
 * set to the strongest fault that names its link (drop over blackhole over delay, the longest delay), so faults that
 * overlap in time compose and removing one leaves the others in force. Methods are synchronized: call them from any
 * thread.
 */
public final class ProxyMesh implements AutoCloseable {

    /** What a fault does to one link. */
    public enum LinkMode {
        /** Connections reset, new ones refused: the sender sees broken connections. */
        DROP,
        /** Nothing moves, connections stay open: the sender's buffers fill up. */
        BLACKHOLE,
        /** Bytes pass late. */
        DELAY
    }

    /**
     * One directed link's fault.
     *
     * @param from    the sending node
     * @param to      the receiving node
     * @param mode    what happens to the link
     * @param delayMs milliseconds of latency for {@link LinkMode#DELAY}, else 0
     */
    public record LinkFault(String from, String to, LinkMode mode, long delayMs) {

        public LinkFault {
            Objects.requireNonNull(from, "from");
            Objects.requireNonNull(to, "to");
            Objects.requireNonNull(mode, "mode");
            if (from.equals(to)) {
                throw new IllegalArgumentException("a link needs two nodes, not " + from + " twice");
            }
        }
    }

    private final Map<String, InetSocketAddress> nodes;
    private final Map<String, FaultProxy> proxies = new LinkedHashMap<>();
    private final Map<String, List<LinkFault>> active = new LinkedHashMap<>();

    /**
     * Starts a proxy for every ordered pair of nodes.
     *
     * @param nodes each node's real address by id
     */
    public ProxyMesh(Map<String, InetSocketAddress> nodes) {
        this.nodes = new LinkedHashMap<>(nodes);
        for (String from : nodes.keySet()) {
            for (Map.Entry<String, InetSocketAddress> to : nodes.entrySet()) {
                if (!from.equals(to.getKey())) {
                    proxies.put(key(from, to.getKey()), FaultProxy.start(from + "->" + to.getKey(), to.getValue()));
                }
            }
        }
    }

    private static String key(String from, String to) {
        return from + "->" + to;
    }

    /** The node ids, in the order given. */
    public List<String> ids() {
        return new ArrayList<>(nodes.keySet());
    }

    /** The proxy of the link {@code from->to}. */
    public FaultProxy link(String from, String to) {
        FaultProxy p = proxies.get(key(from, to));
        if (p == null) {
            throw new IllegalArgumentException("no link " + from + "->" + to + " among " + nodes.keySet());
        }
        return p;
    }

    /** The addresses node {@code self} is given: its own real one, and for each peer the proxy toward it. */
    public Map<String, InetSocketAddress> peersFor(String self) {
        Map<String, InetSocketAddress> m = new LinkedHashMap<>();
        for (Map.Entry<String, InetSocketAddress> n : nodes.entrySet()) {
            m.put(n.getKey(), n.getKey().equals(self) ? n.getValue() : link(self, n.getKey()).address());
        }
        return m;
    }

    /** {@link #peersFor} as the {@code id-host:port;...} peer list of the command line. */
    public String peerListFor(String self) {
        StringBuilder b = new StringBuilder();
        for (Map.Entry<String, InetSocketAddress> p : peersFor(self).entrySet()) {
            b.append(b.length() == 0 ? "" : ";").append(p.getKey()).append('-')
                .append(p.getValue().getAddress().getHostAddress()).append(':').append(p.getValue().getPort());
        }
        return b.toString();
    }

    /**
     * Puts a named fault in force (replacing one of the same name).
     *
     * @throws IllegalArgumentException if a link names an unknown node
     */
    public synchronized void add(String name, Collection<LinkFault> links) {
        for (LinkFault l : links) {
            link(l.from(), l.to());
        }
        active.put(name, List.copyOf(links));
        apply();
    }

    /** Lifts a named fault; the others stay. Unknown names are ignored. */
    public synchronized void remove(String name) {
        if (active.remove(name) != null) {
            apply();
        }
    }

    /** Lifts every fault. */
    public synchronized void healAll() {
        active.clear();
        apply();
    }

    /** The names of the faults in force. */
    public synchronized List<String> activeFaults() {
        return new ArrayList<>(active.keySet());
    }

    private void apply() {
        Map<String, LinkFault> strongest = new LinkedHashMap<>();
        for (List<LinkFault> fault : active.values()) {
            for (LinkFault l : fault) {
                strongest.merge(key(l.from(), l.to()), l, ProxyMesh::stronger);
            }
        }
        for (Map.Entry<String, FaultProxy> e : proxies.entrySet()) {
            LinkFault l = strongest.get(e.getKey());
            FaultProxy.State next;
            if (l == null) {
                next = FaultProxy.State.HEALED;
            } else if (l.mode() == LinkMode.DROP) {
                next = new FaultProxy.State(true, false, false, 0);
            } else if (l.mode() == LinkMode.BLACKHOLE) {
                next = new FaultProxy.State(false, true, true, 0);
            } else {
                next = new FaultProxy.State(false, false, false, l.delayMs());
            }
            if (!next.equals(e.getValue().state())) {
                e.getValue().set(next);
            }
        }
    }

    private static LinkFault stronger(LinkFault a, LinkFault b) {
        if (a.mode() != b.mode()) {
            return a.mode().ordinal() < b.mode().ordinal() ? a : b;
        }
        return a.delayMs() >= b.delayMs() ? a : b;
    }

    /** Closes every proxy. */
    @Override
    public synchronized void close() {
        proxies.values().forEach(FaultProxy::close);
    }
}
