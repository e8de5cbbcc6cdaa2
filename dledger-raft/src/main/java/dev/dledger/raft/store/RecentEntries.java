package dev.dledger.raft.store;

import dev.dledger.raft.core.Entry;

/**
 * The newest entries of a log as they were written, a consecutive run of indexes: a leader sends them to its followers
 * and every node applies them moments after writing them, so these reads need not go back to the files. Bounded by
 * a count and by bytes ({@link Entry#sizeBytes()}); the oldest entries leave first. At least the newest entry is kept
 * whatever its size.
 *
 * <p>Not thread-safe: the store's single thread uses it.
 */
final class RecentEntries {

    private final Entry[] ring;
    private final int mask;
    private final long maxBytes;
    /** The index of the oldest entry held; meaningless when {@link #count} is 0. */
    private long first;
    private int count;
    private long bytes;

    /**
     * @param capacity the most entries held, a power of two
     * @param maxBytes the most bytes held (the newest entry is held even when larger)
     */
    RecentEntries(int capacity, long maxBytes) {
        if (capacity < 1 || Integer.bitCount(capacity) != 1) {
            throw new IllegalArgumentException("capacity must be a power of two, was " + capacity);
        }
        this.ring = new Entry[capacity];
        this.mask = capacity - 1;
        this.maxBytes = maxBytes;
    }

    /** Holds {@code e}; an entry that does not follow the newest one held replaces them all. */
    void add(Entry e) {
        if (count > 0 && e.index() != first + count) {
            clear();
        }
        if (count == ring.length) {
            // The new entry takes the oldest one's slot.
            dropOldest();
        }
        if (count == 0) {
            first = e.index();
        }
        ring[(int) (e.index() & mask)] = e;
        count++;
        bytes += e.sizeBytes();
        while (count > 1 && bytes > maxBytes) {
            dropOldest();
        }
    }

    /** The entry at {@code index}, or null when not held. */
    Entry get(long index) {
        if (count == 0 || index < first || index >= first + count) {
            return null;
        }
        return ring[(int) (index & mask)];
    }

    /** Forgets the entries from {@code index} on (a truncated suffix). */
    void truncateFrom(long index) {
        while (count > 0 && first + count - 1 >= index) {
            int slot = (int) ((first + count - 1) & mask);
            bytes -= ring[slot].sizeBytes();
            ring[slot] = null;
            count--;
        }
    }

    /** Forgets the entries below {@code index} (a removed prefix). */
    void dropBelow(long index) {
        while (count > 0 && first < index) {
            dropOldest();
        }
    }

    /** Forgets everything. */
    void clear() {
        while (count > 0) {
            dropOldest();
        }
    }

    private void dropOldest() {
        int slot = (int) (first & mask);
        bytes -= ring[slot].sizeBytes();
        ring[slot] = null;
        first++;
        count--;
    }
}
