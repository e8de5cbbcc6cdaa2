package dev.dledger.raft.server;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A fixed set of driver threads shared by every group of a process (multi-raft). Each group is pinned to one thread
 * for its life, so its core is only ever touched by that thread; a thread serves its groups in turn, sleeping until
 * the next tick or the next input.
 *
 * <p>Optionally also a fixed set of fsync threads the groups share ({@link #flush()}): the background syncs of
 * {@link FlushMode#SYNC} of every node made on these loops (see {@link #ports()}), and the periodic flushes of the
 * storages opened with them, run there instead of on a thread per node (issue 18).
 */
public final class RaftLoops implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RaftLoops.class);

    private final Loop[] loops;
    private final AtomicInteger next = new AtomicInteger();
    /** The shared fsync threads, or null: each node syncs on a thread of its own. */
    private final FlushThreads flush;

    /**
     * Starts {@code threads} driver threads; each node keeps its own fsync thread.
     *
     * @param threads how many threads serve all groups; 1 or more
     * @param name    prefix of the thread names
     */
    public RaftLoops(int threads, String name) {
        this(threads, 0, name);
    }

    /**
     * Starts {@code threads} driver threads and {@code flushThreads} fsync threads shared by every group.
     *
     * @param threads      how many threads drive all groups; 1 or more
     * @param flushThreads how many threads run the fsyncs of all groups ({@link #flush()}); 0 for a thread per node
     * @param name         prefix of the thread names (the fsync threads are {@code name-flush-i})
     * @throws IllegalArgumentException when {@code threads} is below 1 or {@code flushThreads} below 0
     */
    public RaftLoops(int threads, int flushThreads, String name) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1");
        }
        if (flushThreads < 0) {
            throw new IllegalArgumentException("flush threads must be >= 0 (0: a thread per node), not "
                + flushThreads);
        }
        flush = flushThreads == 0 ? null : new FlushThreads(flushThreads, name + "-flush");
        loops = new Loop[threads];
        for (int i = 0; i < threads; i++) {
            loops[i] = new Loop();
            Thread t = new Thread(loops[i], name + "-" + i);
            t.setDaemon(true);
            loops[i].thread = t;
            t.start();
        }
    }

    /** A dedicated single thread, for a process with one group. */
    static RaftLoops dedicated(String name) {
        return new RaftLoops(1, name);
    }

    /** The fsync threads shared by the groups, or null when each node has its own. */
    public FlushThreads flush() {
        return flush;
    }

    /**
     * The production ports of a node on these loops: with shared fsync threads ({@link #flush()}) its background
     * syncer of {@link FlushMode#SYNC} runs on them, else on a thread of its own.
     */
    public DriverPorts ports() {
        DriverPorts p = DriverPorts.production();
        return flush == null ? p : p.withSyncers(flush.syncers());
    }

    Loop assign() {
        return loops[Math.floorMod(next.getAndIncrement(), loops.length)];
    }

    @Override
    public void close() {
        for (Loop l : loops) {
            l.running = false;
            LockSupport.unpark(l.thread);
        }
        for (Loop l : loops) {
            if (l.thread == Thread.currentThread()) {
                // Closed from one of its own passes: the loop ends when that pass returns.
                continue;
            }
            try {
                l.thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (flush != null) {
            flush.close();
        }
    }

    /** One driver thread and the groups pinned to it. */
    static final class Loop implements Runnable, DriverLoop {
        private final List<RaftGroupNode> nodes = new CopyOnWriteArrayList<>();
        private volatile boolean running = true;
        private volatile Thread thread;

        @Override
        public void add(RaftGroupNode node) {
            nodes.add(node);
            wake();
        }

        @Override
        public void remove(RaftGroupNode node) {
            nodes.remove(node);
        }

        @Override
        public void wake() {
            LockSupport.unpark(thread);
        }

        @Override
        public boolean onLoopThread() {
            return Thread.currentThread() == thread;
        }

        @Override
        public boolean dead() {
            // Ended (the loops were closed): no pass runs any more.
            return !thread.isAlive();
        }

        @Override
        public void run() {
            while (running) {
                long sleep = TimeUnit.MILLISECONDS.toNanos(100);
                boolean worked = false;
                for (RaftGroupNode n : nodes) {
                    long now = n.now();
                    try {
                        worked |= n.pass(now);
                        sleep = Math.min(sleep, n.nanosToNextTick(now));
                    } catch (RuntimeException | Error e) {
                        LOG.error("driver of {} failed", n.id(), e);
                        nodes.remove(n);
                    }
                }
                if (!worked && sleep > 0) {
                    LockSupport.parkNanos(this, sleep);
                }
            }
        }
    }
}
