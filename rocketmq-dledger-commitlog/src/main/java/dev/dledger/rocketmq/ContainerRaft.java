package dev.dledger.rocketmq;

import dev.dledger.raft.server.FlushThreads;
import dev.dledger.raft.server.RaftLoops;
import dev.dledger.raft.transport.NettyTransport;
import dev.dledger.raft.transport.TransportOptions;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Raft resources the brokers of one container share (multi-raft): one transport on one Raft port, on which each
 * broker's group registers under its {@code dLegerGroup}, one set of driver threads ({@link RaftLoops}) that runs
 * every group's node, and one set of fsync threads ({@link FlushThreads}, the loops' {@link RaftLoops#flush()}) that
 * flushes every group's log. A group added at run time joins them; a group removed leaves them (its node unregisters from the
 * transport) and the others go on.
 *
 * <p>The transport starts with the first broker ({@link #admit}): its own {@code dLegerPeers} entry is the container's
 * Raft address, and its transport settings ({@code raftSecret}, TLS, {@code raftAdminToken}) are the container's.
 * Every later broker must name the same address for itself and have the same settings; otherwise it is refused, one
 * line naming its file and the key.
 *
 * <p>Thread-safe: {@link #admit} and {@link #close} may be called from any thread.
 */
public final class ContainerRaft implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ContainerRaft.class);

    private final int loopThreads;
    private final int flushThreads;
    private final java.util.concurrent.locks.ReentrantLock lock = new java.util.concurrent.locks.ReentrantLock();
    private NettyTransport transport;
    private RaftLoops loops;
    private InetSocketAddress address;
    private TransportOptions options;
    private String firstFile;
    /** The groups admitted and not released, each with the file of its broker. */
    private final java.util.Map<String, String> groups = new java.util.HashMap<>();
    private boolean closed;
    /** Brokers of the container starting now (the boot, an addBroker); guarded by {@link #lock}. */
    private int starting;
    /** Node starts held back until no broker is starting, by group; guarded by {@link #lock}. */
    private final java.util.Map<String, Runnable> heldStarts = new java.util.LinkedHashMap<>();

    /**
     * @param loopThreads  the driver threads shared by every group of the container; 1 or more
     * @param flushThreads the fsync threads shared by every group of the container; 1 or more
     * @throws IllegalArgumentException one line naming the key ({@code raftLoopThreads}, {@code raftFlushThreads})
     */
    public ContainerRaft(int loopThreads, int flushThreads) {
        if (loopThreads < 1) {
            throw new IllegalArgumentException("raftLoopThreads=" + loopThreads + " must be at least 1");
        }
        if (flushThreads < 1) {
            throw new IllegalArgumentException("raftFlushThreads=" + flushThreads + " must be at least 1");
        }
        this.loopThreads = loopThreads;
        this.flushThreads = flushThreads;
    }

    /**
     * Checks that the broker of {@code file} fits the container's Raft port, starting the port with the first broker.
     *
     * A group is admitted once: a second broker of the same {@code dLegerGroup} is refused until the first is
     * {@link #release released} (its node would take the group's place on the shared transport).
     *
     * @throws IllegalArgumentException one line naming the file and the key that does not fit
     * @throws IllegalStateException    after {@link #close}
     */
    public void admit(RaftStoreSettings settings, String file) {
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("the container's raft port is closed");
            }
            String hosted = groups.get(settings.group());
            if (hosted != null) {
                throw new IllegalArgumentException(file + ": dLegerGroup=" + settings.group() + " runs in this "
                    + "container already (from " + hosted + "); a container hosts one broker of a group");
            }
            InetSocketAddress self = settings.selfAddress();
            TransportOptions o = settings.transportOptions();
            if (transport == null) {
                transport = new NettyTransport(RaftCommitLog.listenAddress(self), o);
                loops = new RaftLoops(loopThreads, flushThreads, "raft-container");
                address = self;
                options = o;
                firstFile = file;
                LOG.info("container raft port {}:{} (from {}), {} driver and {} fsync threads shared by every group",
                    self.getHostString(), self.getPort(), file, loopThreads, flushThreads);
                groups.put(settings.group(), file);
                return;
            }
            if (!sameAddress(address, self)) {
                throw new IllegalArgumentException(file + ": dLegerPeers gives " + settings.selfId() + " the raft "
                    + "address " + self.getHostString() + ":" + self.getPort() + ", but this container's raft port is "
                    + address.getHostString() + ":" + address.getPort() + " (from " + firstFile + "); every broker of "
                    + "a container names the container's raft address for itself");
            }
            if (!o.equals(options)) {
                throw new IllegalArgumentException(file + ": raftSecret, raftAdminToken or the raftTls keys differ from "
                    + firstFile + "; the brokers of a container share one raft port and must agree on them");
            }
            groups.put(settings.group(), file);
        } finally {
            lock.unlock();
        }
    }

    /**
     * A broker of the container starts (the boot counts as one): Raft nodes whose start is asked for meanwhile
     * ({@link #startNode}) wait until every such start {@link #brokerStartEnded ended}.
     */
    public void brokerStartBegan() {
        lock.lock();
        try {
            starting++;
        } finally {
            lock.unlock();
        }
    }

    /** A start of {@link #brokerStartBegan} ended (started or failed): the last one runs the held node starts. */
    public void brokerStartEnded() {
        List<Runnable> run = new ArrayList<>();
        lock.lock();
        try {
            starting = Math.max(0, starting - 1);
            if (starting == 0) {
                run.addAll(heldStarts.values());
                heldStarts.clear();
            }
        } finally {
            lock.unlock();
        }
        if (!run.isEmpty()) {
            LOG.info("container started its brokers: starting {} raft nodes held back meanwhile", run.size());
        }
        for (Runnable r : run) {
            try {
                r.run();
            } catch (RuntimeException e) {
                LOG.error("a raft node held back during the container's start failed to start: {}", e.toString(), e);
            }
        }
    }

    /**
     * Runs {@code start} (the start of {@code group}'s Raft node) now when no broker of the container is starting,
     * else once none is: a process busy booting brokers starves its Raft threads (a leader there misses its
     * heartbeats and steps down), so a node that starts then, catches up and is handed its group's leadership as the
     * preferred leader loses it again at once, and its group refuses sends meanwhile. Held back, it starts on a quiet
     * process; the others of its group go on without it meanwhile, as while the process was down.
     */
    public void startNode(String group, Runnable start) {
        lock.lock();
        try {
            if (starting > 0 && !closed) {
                heldStarts.put(group, start);
                return;
            }
        } finally {
            lock.unlock();
        }
        start.run();
    }

    /** Frees {@code group} for another broker: its broker was shut down, or failed to start. */
    public void release(String group) {
        lock.lock();
        try {
            groups.remove(group);
            heldStarts.remove(group);
        } finally {
            lock.unlock();
        }
    }

    private static boolean sameAddress(InetSocketAddress a, InetSocketAddress b) {
        return a.getPort() == b.getPort() && (a.getHostString().equals(b.getHostString())
            || (a.getAddress() != null && a.getAddress().equals(b.getAddress())));
    }

    /** The shared transport, or null before the first broker was admitted. */
    public NettyTransport transport() {
        lock.lock();
        try {
            return transport;
        } finally {
            lock.unlock();
        }
    }

    /** The shared fsync threads, or null before the first broker was admitted. */
    public FlushThreads flushThreads() {
        RaftLoops l = loops();
        return l == null ? null : l.flush();
    }

    /** The shared driver threads, or null before the first broker was admitted. */
    public RaftLoops loops() {
        lock.lock();
        try {
            return loops;
        } finally {
            lock.unlock();
        }
    }

    /** Closes the transport and stops the driver threads; call after every broker of the container shut down. */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            if (transport != null) {
                transport.close();
            }
            if (loops != null) {
                loops.close();
            }
        } finally {
            lock.unlock();
        }
    }
}
