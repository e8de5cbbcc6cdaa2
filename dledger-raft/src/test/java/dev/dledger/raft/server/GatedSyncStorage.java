package dev.dledger.raft.server;

import java.util.concurrent.CountDownLatch;

/**
 * A {@link NodeStorage} in memory whose {@link #sync()} waits while its gate is closed, so that a test can keep log
 * writes written but not durable for as long as it wants; counts the syncs that completed.
 */
final class GatedSyncStorage extends MemoryNodeStorage {
    private volatile CountDownLatch gate;
    private volatile long syncs;

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

    /** Whether the log holds an entry with exactly this payload, and how many. */
    long count(byte[] payload) {
        return entries(firstIndex(), lastIndex() + 1, Long.MAX_VALUE).stream()
            .filter(e -> java.util.Arrays.equals(e.data(), payload)).count();
    }

    @Override
    public void sync() {
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
        syncs++;
    }
}
