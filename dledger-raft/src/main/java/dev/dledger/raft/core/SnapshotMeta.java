package dev.dledger.raft.core;

import java.util.Objects;

/**
 * What the core knows of a snapshot: the last log position it covers and the membership in force there. The bytes
 * of the snapshot are the driver's business.
 *
 * @param index      the last index the snapshot includes, -1 for "no snapshot"
 * @param term       the term of the entry at {@code index}, 0 for "no snapshot"
 * @param membership the configuration in force at {@code index}
 */
public record SnapshotMeta(long index, long term, Membership membership) {

    /** No snapshot. */
    public static final SnapshotMeta NONE = new SnapshotMeta(-1, 0, Membership.EMPTY);

    public SnapshotMeta {
        if (index < -1 || term < 0) {
            throw new IllegalArgumentException("bad snapshot position " + index + "@" + term);
        }
        Objects.requireNonNull(membership, "membership");
    }
}
