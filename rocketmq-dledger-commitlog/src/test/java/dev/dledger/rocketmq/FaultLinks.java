package dev.dledger.rocketmq;

import dev.dledger.raft.faults.FaultProxy;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * The Raft links of a broker group through fault-injecting proxies: one {@link FaultProxy} per directed pair, so that
 * broker i reaches peer j only through the proxy {@code i->j} and cutting it stops what i sends to j and nothing else
 * (j answers i on its own connection, through {@code j->i}). Clients and the nameserver talk to the brokers directly.
 *
 * <p>Thread-safe (every proxy is).
 */
final class FaultLinks implements AutoCloseable {

    /** How a cut link fails: its connections are reset, or they stay open and no byte moves until healed. */
    enum CutMode {
        RESET, STALL
    }

    private final int size;
    private final FaultProxy[][] proxies;

    /** Starts a proxy for every ordered pair of the group's brokers, each forwarding to the peer's real Raft port. */
    FaultLinks(BrokerGroup group, int size) {
        this.size = size;
        this.proxies = new FaultProxy[size][size];
        for (int from = 0; from < size; from++) {
            for (int to = 0; to < size; to++) {
                if (from != to) {
                    proxies[from][to] = FaultProxy.start("n" + from + "->n" + to, group.raftAddress(to));
                }
            }
        }
    }

    /** Where broker {@code from} reaches peer {@code to}: the proxy of that link (for {@link BrokerGroup#start}). */
    InetSocketAddress route(int from, int to, InetSocketAddress real) {
        FaultProxy p = proxies[from][to];
        if (!p.target().equals(real)) {
            throw new IllegalStateException("the proxy " + p + " does not lead to " + real);
        }
        return p.address();
    }

    /** Stops what {@code from} sends to {@code to} (one way). */
    void cut(int from, int to, CutMode mode) {
        FaultProxy p = proxies[from][to];
        if (mode == CutMode.RESET) {
            p.drop();
        } else {
            p.stall(FaultProxy.Direction.TO_TARGET);
        }
    }

    /** Cuts both ways between {@code a} and {@code b}. */
    void cutBothWays(int a, int b, CutMode mode) {
        cut(a, b, mode);
        cut(b, a, mode);
    }

    /** Cuts {@code node} off from every other node, both ways (it is a minority of one). */
    void isolate(int node, CutMode mode) {
        for (int other = 0; other < size; other++) {
            if (other != node) {
                cutBothWays(node, other, mode);
            }
        }
    }

    /** Delays every link by {@code delayMs} (latency on every byte, both directions of every connection). */
    void delayAll(long delayMs) {
        for (FaultProxy p : all()) {
            p.delay(delayMs);
        }
    }

    /** Passes everything again on every link. */
    void healAll() {
        for (FaultProxy p : all()) {
            p.heal();
        }
    }

    /** Every link that is not healed, for a report. */
    List<String> faulty() {
        List<String> out = new ArrayList<>();
        for (FaultProxy p : all()) {
            if (!p.healed()) {
                out.add(p.toString());
            }
        }
        return out;
    }

    private List<FaultProxy> all() {
        List<FaultProxy> out = new ArrayList<>();
        for (FaultProxy[] row : proxies) {
            for (FaultProxy p : row) {
                if (p != null) {
                    out.add(p);
                }
            }
        }
        return out;
    }

    @Override
    public void close() {
        for (FaultProxy p : all()) {
            p.close();
        }
    }
}
