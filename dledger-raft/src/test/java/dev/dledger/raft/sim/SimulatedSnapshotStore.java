package dev.dledger.raft.sim;

import dev.dledger.raft.core.SnapshotMeta;

import java.util.Arrays;

/**
 * The simulated store of a node's latest snapshot: its position and the bytes of the state machine at that position.
 * A save is atomic and durable at once (production writes a temp file, fsyncs it and renames it), so a crash never
 * loses or tears a saved snapshot. Not thread-safe.
 */
public final class SimulatedSnapshotStore {

    private SnapshotMeta meta = SnapshotMeta.NONE;
    private byte[] data;

    /** An empty store: {@link SnapshotMeta#NONE} and no bytes. */
    public SimulatedSnapshotStore() {
    }

    /** Replaces the stored snapshot. The bytes are copied. */
    public void save(SnapshotMeta snapshotMeta, byte[] bytes) {
        this.meta = snapshotMeta;
        this.data = Arrays.copyOf(bytes, bytes.length);
    }

    /** The position of the stored snapshot, or {@link SnapshotMeta#NONE}. */
    public SnapshotMeta meta() {
        return meta;
    }

    /** A copy of the stored bytes, or null when there is no snapshot. */
    public byte[] data() {
        return data == null ? null : Arrays.copyOf(data, data.length);
    }
}
