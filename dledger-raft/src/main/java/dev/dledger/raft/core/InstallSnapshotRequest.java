package dev.dledger.raft.core;

/**
 * InstallSnapshot (Raft paper section 7). The core sends it when a follower needs entries that were compacted; it
 * carries the snapshot's position only. The drivers move the bytes: the leader's driver attaches them (it may
 * stream them in chunks), and the follower's driver steps this message into its core once all bytes arrived, with
 * the bytes in {@code data}.
 *
 * @param snapshot the snapshot's last index, term and membership
 * @param seq      as in {@link AppendEntriesRequest#seq()}
 * @param data     the snapshot's bytes, attached by the drivers; null as the core emits it
 */
public record InstallSnapshotRequest(String from, String to, long term, SnapshotMeta snapshot, long seq, byte[] data)
    implements Message {

    /** This request with the snapshot bytes attached. */
    public InstallSnapshotRequest withData(byte[] bytes) {
        return new InstallSnapshotRequest(from, to, term, snapshot, seq, bytes);
    }

    @Override
    public String toString() {
        return "InstallSnapshotRequest[" + from + "->" + to + " t" + term + " " + snapshot.index() + "@"
            + snapshot.term() + " seq=" + seq + "]";
    }
}
