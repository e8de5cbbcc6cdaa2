package dev.dledger.raft.server;

import java.util.concurrent.CountDownLatch;

/**
 * A {@link NodeStorage} in memory whose {@link #sync()} waits while its gate is closed, so that a test can keep log
 * writes written but not durable for as long as it wants; counts the syncs that started and completed, and records
 * the threads they ran on and the last log index each one covers.
 */
final class GatedSyncStorage extends MemoryNodeStorage {
    private volatile CountDownLatch gate;
    private volatile long syncs;
    private final java.util.concurrent.atomic.AtomicLong started = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.Set<String> syncThreads = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private volatile long syncedIndex = -1;

    /** Closes the gate (syncs from now on wait) or opens it (waiting syncs go on). */
    void blockSyncs(boolean block) {
        if (block) {
            gate = new CountDownLatch(1);
        } else {
            CountDownLatch g = gate;
            gate = null;
            if (g != null) {
                g.countDown();
            }
        }
    }

    /** Syncs completed so far. */
    long syncs() {
        return syncs;
    }

    /** Syncs started so far (a sync waiting at the closed gate counts). */
    long syncsStarted() {
        return started.get();
    }

    /** The names of the threads the syncs ran on. */
    java.util.Set<String> syncThreads() {
        return java.util.Set.copyOf(syncThreads);
    }

    /** The last log index a completed sync covers (the log's last index when it started); -1 before the first. */
    long syncedIndex() {
        return syncedIndex;
    }

    /** Whether the log holds an entry with exactly this payload, and how many. */
    long count(byte[] payload) {
        return entries(firstIndex(), lastIndex() + 1, Long.MAX_VALUE).stream()
            .filter(e -> java.util.Arrays.equals(e.data(), payload)).count();
    }

    @Override
    public void sync() {
        syncThreads.add(Thread.currentThread().getName());
        long covers = lastIndex();
        started.incrementAndGet();
        CountDownLatch g = gate;
        if (g != null) {
            try {
                g.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new StorageException("interrupted in sync", e);
            }
        }
        super.sync();
        syncedIndex = Math.max(syncedIndex, covers);
        syncs++;
    }
}
