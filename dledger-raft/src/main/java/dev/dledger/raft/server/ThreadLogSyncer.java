package dev.dledger.raft.server;

import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fsync thread of one node with {@link FlushMode#SYNC}: the driver writes log entries, numbers each write and
 * asks for it to be synced; this thread runs one {@link NodeStorage#sync()} for every write that arrived while the
 * previous sync ran (group commit), then publishes the number of the last write it covered and wakes the driver.
 *
 * <p>Thread safety: {@link #request(long)}, {@link #synced()} and {@link #failure()} may be called from any thread;
 * {@link NodeStorage#sync()} runs on this syncer's thread concurrently with the driver's writes, which
 * {@code NodeStorage} allows. A sync makes durable at least everything written before it started, so the number
 * read before the sync is a safe claim.
 *
 * <p>Errors: a failing sync is kept in {@link #failure()} and ends the thread; the driver stops the node.
 */
final class ThreadLogSyncer implements LogSyncer {

    private static final Logger LOG = LoggerFactory.getLogger(ThreadLogSyncer.class);

    private final NodeStorage storage;
    private final Runnable wake;
    private final Thread thread;
    private final Object lock = new Object();
    /** The number of the last write handed over; guarded by {@link #lock}. */
    private long requested;
    private volatile long synced;
    private volatile RuntimeException failure;
    private volatile boolean running = true;

    /**
     * Starts the thread.
     *
     * @param name    the thread's name
     * @param storage the storage to sync
     * @param wake    called after each sync (and after a failure), from the syncer's thread; must not block
     */
    ThreadLogSyncer(String name, NodeStorage storage, Runnable wake) {
        this.storage = storage;
        this.wake = wake;
        this.thread = new Thread(this::run, name);
        thread.setDaemon(true);
        thread.start();
    }

    /** Asks for every write up to number {@code write} (the driver's count, increasing) to be made durable. */
    @Override
    public void request(long write) {
        synchronized (lock) {
            if (write > requested) {
                requested = write;
                lock.notifyAll();
            }
        }
    }

    /** The number of the last write known durable; 0 before the first sync. */
    @Override
    public long synced() {
        return synced;
    }

    /** The failure that stopped the syncer, or null. */
    @Override
    public RuntimeException failure() {
        return failure;
    }

    private void run() {
        while (true) {
            long target;
            synchronized (lock) {
                while (running && requested <= synced) {
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
                if (!running) {
                    return;
                }
                // Read before the sync starts: the sync covers at least every write finished before this point.
                target = requested;
            }
            try {
                storage.sync();
            } catch (RuntimeException e) {
                failure = e;
                wake.run();
                return;
            }
            synced = target;
            wake.run();
        }
    }

    /**
     * Stops the thread after the sync under way, waiting up to 5 seconds for it. The thread is not interrupted: an
     * interrupt during an fsync would close the store's files.
     */
    @Override
    public void close() {
        synchronized (lock) {
            running = false;
            lock.notifyAll();
        }
        try {
            thread.join(TimeUnit.SECONDS.toMillis(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive()) {
            LOG.warn("log syncer {} still in a sync after 5 s", thread.getName());
        }
    }
}
