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
 */
public final class RaftLoops implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RaftLoops.class);

    private final Loop[] loops;
    private final AtomicInteger next = new AtomicInteger();

    /**
     * Starts {@code threads} driver threads.
     *
     * @param threads how many threads serve all groups; 1 or more
     * @param name    prefix of the thread names
     */
    public RaftLoops(int threads, String name) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1");
        }
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
            try {
                l.thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
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
            return false;
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
