package dev.dledger.raft.server;

import dev.dledger.raft.transport.IoThread;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs the passes of nodes as tasks on a transport thread ({@link IoThread}): a message read there is queued and
 * taken by the next pass without waking another thread, and the pass's sends are written by the same thread. A pass
 * that did work is followed by another (as a new task, so reads and writes go on in between); otherwise the next one
 * comes with the next input or the next tick.
 */
final class IoThreadLoop implements DriverLoop {

    private static final Logger LOG = LoggerFactory.getLogger(IoThreadLoop.class);
    private static final long IDLE_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    private final IoThread thread;
    /** The time of the nodes on this thread (they share the process's clock). */
    private final Clock clock;
    private final List<RaftGroupNode> nodes = new CopyOnWriteArrayList<>();
    /** A pass task is queued and has not started. */
    private final AtomicBoolean queued = new AtomicBoolean();
    private final Runnable run = this::run;
    private volatile boolean dead;
    /** When the timer task scheduled last is due ({@link #clock}); on the thread only. */
    private long timerAt;
    private boolean timerSet;

    IoThreadLoop(IoThread thread, Clock clock) {
        this.thread = thread;
        this.clock = clock;
    }

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
        if (!queued.get() && queued.compareAndSet(false, true) && !thread.execute(run)) {
            dead = true;
        }
    }

    @Override
    public boolean onLoopThread() {
        return thread.inThread();
    }

    @Override
    public boolean dead() {
        return dead;
    }

    private void run() {
        queued.set(false);
        long now = clock.nanoTime();
        long sleep = IDLE_NANOS;
        boolean worked = false;
        for (RaftGroupNode n : nodes) {
            if (n.offLoop()) {
                // Its pass runs on its blocking-work thread, which wakes this loop when done.
                continue;
            }
            try {
                worked |= n.pass(now);
                if (n.wantsBlockingPass()) {
                    n.passOffLoop(this::wake);
                    continue;
                }
                sleep = Math.min(sleep, n.nanosToNextTick(now));
            } catch (RuntimeException | Error e) {
                LOG.error("driver of {} failed", n.id(), e);
                nodes.remove(n);
            }
        }
        if (worked) {
            wake();
            return;
        }
        if (nodes.isEmpty()) {
            // Every node stopped: no timer, the loop ends here (a node added later wakes it).
            return;
        }
        sleep = Math.max(0, sleep);
        // One timer for the next tick; an earlier one already set does (it wakes a pass that sets the next).
        long at = now + sleep;
        if (timerSet && timerAt - at <= 0) {
            return;
        }
        timerSet = true;
        timerAt = at;
        if (!thread.schedule(() -> {
            if (timerSet && timerAt == at) {
                timerSet = false;
            }
            wake();
        }, sleep)) {
            dead = true;
        }
    }
}
