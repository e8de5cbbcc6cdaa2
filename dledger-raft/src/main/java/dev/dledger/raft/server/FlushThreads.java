package dev.dledger.raft.server;

import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A fixed set of fsync threads shared by the groups of one process (multi-raft, issue 18): the background syncs of
 * the nodes with {@link FlushMode#SYNC} ({@link #syncers()}) and the periodic flushes of the storages with
 * {@link FlushMode#ASYNC} ({@link #every}) all run on them, so that a group added to a running process starts no
 * flush thread of its own. Without it each node has one ({@link #threadPerNode()}, or its storage's flusher).
 *
 * <p>Guarantees are those of a thread per node: with {@link FlushMode#SYNC} a node's writes are synced by one
 * {@link NodeStorage#sync()} for every write asked for while the previous sync of that node ran (group commit), and a
 * write is reported durable only after a sync that started after it was made finished. One node has at most one sync
 * queued or running at a time; the syncs of different nodes run side by side on as many threads as there are, in the
 * order asked for (a node asking again after its sync goes to the back of the queue, so no group starves the others).
 *
 * <p>Thread-safe. {@link #close} after every node and storage using it closed; syncs asked for after that are never
 * run (the node's acknowledgements then wait for ever, as after a failed sync of its own thread).
 */
public final class FlushThreads implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(FlushThreads.class);

    private final ScheduledThreadPoolExecutor executor;
    private final String name;

    /**
     * Starts {@code threads} daemon threads named {@code name-0}, {@code name-1}, ... (just {@code name} when one).
     *
     * @param threads how many fsyncs may run at once, for all nodes together; 1 or more
     * @throws IllegalArgumentException when {@code threads} is below 1
     */
    public FlushThreads(int threads, String name) {
        if (threads < 1) {
            throw new IllegalArgumentException("flush threads must be at least 1, not " + threads);
        }
        this.name = name;
        AtomicInteger made = new AtomicInteger();
        this.executor = new ScheduledThreadPoolExecutor(threads, r -> {
            int i = made.getAndIncrement();
            Thread t = new Thread(r, threads == 1 ? name : name + "-" + i);
            t.setDaemon(true);
            return t;
        });
        executor.setRemoveOnCancelPolicy(true);
        executor.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        executor.setContinueExistingPeriodicTasksAfterShutdownPolicy(false);
        // Started now, not at the first task: the threads a process has do not grow with the groups it adds.
        executor.prestartAllCoreThreads();
    }

    /** How many threads run the fsyncs. */
    public int threads() {
        return executor.getCorePoolSize();
    }

    /** Makes the background syncers of nodes with {@link FlushMode#SYNC}, all running on these threads. */
    public LogSyncer.Factory syncers() {
        return (syncerName, storage, wake) -> new SharedSyncer(syncerName, storage, wake, () -> { });
    }

    /**
     * Makes syncers that each run on a thread of their own, named as the syncer, which ends when the syncer closes:
     * a node without shared flush threads ({@link DriverPorts#production()}). The same syncer as on shared threads,
     * on a pool of one.
     */
    static LogSyncer.Factory threadPerNode() {
        return (syncerName, storage, wake) -> {
            FlushThreads own = new FlushThreads(1, syncerName);
            return own.new SharedSyncer(syncerName, storage, wake, own::close);
        };
    }

    /**
     * Runs {@code flush} every {@code intervalMs} milliseconds (after each run ends) on these threads, until the
     * returned handle is closed. A run that throws is logged and ends the schedule (its storage failed).
     *
     * @param what names the flush in the log, e.g. the storage's folder
     */
    public Periodic every(long intervalMs, String what, Runnable flush) {
        if (intervalMs < 1) {
            throw new IllegalArgumentException("flush interval must be at least 1 ms, not " + intervalMs);
        }
        return new Periodic(intervalMs, what, flush);
    }

    /**
     * Stops the threads after the syncs under way (they are not interrupted: an interrupt during an fsync closes the
     * store's files), waiting up to 5 seconds.
     */
    @Override
    public void close() {
        executor.shutdown();
        try {
            if (!executor.awaitTermination(5, TimeUnit.SECONDS)) {
                LOG.warn("flush threads {} still in a sync after 5 s", name);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private boolean submit(Runnable task) {
        try {
            executor.execute(task);
            return true;
        } catch (RejectedExecutionException e) {
            return false;
        }
    }

    /**
     * A periodic flush of one storage on the shared threads; {@link #close()} cancels it and waits for a run under way,
     * so that the storage may close its files right after.
     */
    public final class Periodic implements AutoCloseable {
        private final ReentrantLock running = new ReentrantLock();
        private final ScheduledFuture<?> future;
        private final String what;
        private final Runnable flush;
        private volatile boolean closed;

        private Periodic(long intervalMs, String what, Runnable flush) {
            this.what = what;
            this.flush = flush;
            this.future = executor.scheduleWithFixedDelay(this::run, intervalMs, intervalMs, TimeUnit.MILLISECONDS);
        }

        private void run() {
            running.lock();
            try {
                if (!closed) {
                    flush.run();
                }
            } catch (RuntimeException e) {
                LOG.error("periodic flush of {} failed, no more flushes of it: {}", what, e.getMessage());
                throw e;
            } finally {
                running.unlock();
            }
        }

        /** Cancels the schedule and waits for a flush under way; idempotent. */
        @Override
        public void close() {
            closed = true;
            future.cancel(false);
            running.lock();
            running.unlock();
        }
    }

    /**
     * The background syncer of one node on the shared threads: at most one task of it is queued or running at a time
     * ({@link #scheduled}); a task syncs once, covering every write asked for before the sync started, publishes it,
     * and queues a new task when more writes were asked for meanwhile.
     */
    private final class SharedSyncer implements LogSyncer {
        private final String syncerName;
        private final NodeStorage storage;
        private final Runnable wake;
        /** The number of the last write asked for. */
        private final AtomicLong requested = new AtomicLong();
        private volatile long synced;
        private volatile RuntimeException failure;
        private volatile boolean closed;
        /** A task of this syncer is queued or running; guarded by {@link #lock}. */
        private boolean scheduled;
        private final ReentrantLock lock = new ReentrantLock();
        private final Condition idle = lock.newCondition();
        /** Runs after {@link #close()}: stops the pool of a syncer with a thread of its own. */
        private final Runnable afterClose;

        SharedSyncer(String syncerName, NodeStorage storage, Runnable wake, Runnable afterClose) {
            this.syncerName = syncerName;
            this.storage = storage;
            this.wake = wake;
            this.afterClose = afterClose;
        }

        @Override
        public void request(long write) {
            requested.accumulateAndGet(write, Math::max);
            schedule();
        }

        /** Queues a task unless one is queued or running, the syncer stopped, or nothing is left to sync. */
        private void schedule() {
            lock.lock();
            try {
                if (scheduled || closed || failure != null || requested.get() <= synced) {
                    return;
                }
                scheduled = submit(this::syncOnce);
                if (!scheduled) {
                    LOG.warn("log syncer {}: the flush threads {} are closed; its writes stay unsynced", syncerName,
                        name);
                }
            } finally {
                lock.unlock();
            }
        }

        private void syncOnce() {
            try {
                if (!closed) {
                    // Read before the sync starts: the sync covers at least every write finished before this point.
                    long target = requested.get();
                    try {
                        storage.sync();
                        synced = target;
                    } catch (RuntimeException e) {
                        failure = e;
                    }
                    wake.run();
                }
            } finally {
                lock.lock();
                try {
                    scheduled = false;
                    idle.signalAll();
                } finally {
                    lock.unlock();
                }
            }
            // Writes asked for while this sync ran: a new task, behind the other nodes' syncs already queued.
            schedule();
        }

        @Override
        public long synced() {
            return synced;
        }

        @Override
        public RuntimeException failure() {
            return failure;
        }

        /** Stops after the sync under way, waiting up to 5 seconds for it; a task still queued does not sync. */
        @Override
        public void close() {
            try {
                awaitIdle();
            } finally {
                afterClose.run();
            }
        }

        private void awaitIdle() {
            lock.lock();
            try {
                closed = true;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
                while (scheduled) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        LOG.warn("log syncer {} still in a sync after 5 s", syncerName);
                        return;
                    }
                    idle.awaitNanos(left);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                lock.unlock();
            }
        }
    }
}
