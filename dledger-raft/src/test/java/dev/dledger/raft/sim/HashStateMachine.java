package dev.dledger.raft.sim;

import dev.dledger.raft.core.Entry;

import java.nio.ByteBuffer;

/**
 * The simulation's state machine: a running 64-bit hash over every applied entry (index, term, type, payload). Two
 * nodes that applied the same committed prefix hold the same hash, so comparing hashes checks that state machines
 * agree, and a snapshot is just the 24 bytes (applied index, hash, count). Not thread-safe.
 */
public final class HashStateMachine {

    private long appliedIndex = -1;
    private long hash = 0x6a09e667f3bcc908L;
    private long count;

    /** An empty state machine: nothing applied. */
    public HashStateMachine() {
    }

    /**
     * Applies {@code e}, which must be the entry right after {@link #appliedIndex()}.
     *
     * @throws IllegalStateException if {@code e} does not follow the applied index
     */
    public void apply(Entry e) {
        if (e.index() != appliedIndex + 1) {
            throw new IllegalStateException("apply of " + e + " after applied index " + appliedIndex);
        }
        hash = next(hash, e);
        appliedIndex = e.index();
        count++;
    }

    /** The hash after applying {@code e} to a state whose hash is {@code h}. */
    public static long next(long h, Entry e) {
        long x = h;
        x = mix(x ^ e.index());
        x = mix(x ^ e.term());
        x = mix(x ^ e.type().magic());
        for (byte b : e.data()) {
            x = (x ^ (b & 0xff)) * 0x100000001b3L;
        }
        return mix(x ^ e.data().length);
    }

    private static long mix(long z) {
        long x = (z ^ (z >>> 33)) * 0xff51afd7ed558ccdL;
        x = (x ^ (x >>> 33)) * 0xc4ceb9fe1a85ec53L;
        return x ^ (x >>> 33);
    }

    /** The last applied index, -1 before the first. */
    public long appliedIndex() {
        return appliedIndex;
    }

    /** The running hash over everything applied. */
    public long hash() {
        return hash;
    }

    /** The number of entries applied since the start of the log (counting those in an installed snapshot). */
    public long count() {
        return count;
    }

    /** The snapshot bytes of the current state. */
    public byte[] snapshot() {
        return ByteBuffer.allocate(24).putLong(appliedIndex).putLong(hash).putLong(count).array();
    }

    /**
     * Replaces the state with a snapshot made by {@link #snapshot()}.
     *
     * @throws IllegalArgumentException if the bytes are not a snapshot
     */
    public void restore(byte[] bytes) {
        if (bytes == null || bytes.length != 24) {
            throw new IllegalArgumentException("not a state machine snapshot: "
                + (bytes == null ? "null" : bytes.length + " bytes"));
        }
        ByteBuffer b = ByteBuffer.wrap(bytes);
        appliedIndex = b.getLong();
        hash = b.getLong();
        count = b.getLong();
    }

    /** The applied index recorded in snapshot bytes. */
    public static long snapshotIndex(byte[] bytes) {
        return ByteBuffer.wrap(bytes).getLong(0);
    }

    /** The hash recorded in snapshot bytes. */
    public static long snapshotHash(byte[] bytes) {
        return ByteBuffer.wrap(bytes).getLong(8);
    }
}
