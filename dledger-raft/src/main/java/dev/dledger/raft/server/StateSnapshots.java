package dev.dledger.raft.server;

import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.RaftNode;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.statemachine.StateMachine;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;

/**
 * The snapshots of one {@link RaftGroupNode}'s applied state: taken every {@link NodeOptions#snapshotThreshold()}
 * applied entries, restored at start and when the leader sends one, and the bytes handed to a follower. A snapshot
 * holds the state machine's image and the client request table ({@link NodeSnapshot}), so that retries of the
 * entries it covers are still recognized after a restart or an install (issue 16, B2).
 *
 * <p>Contract: driver thread only. The bytes of a snapshot received from a leader are kept only when the core accepted
 * exactly that request ({@link #offered}), and {@link #install} refuses to install other bytes than those of the
 * snapshot the core chose (issue 16, B1). A failure to make or restore a snapshot throws {@link StorageException}: the
 * node stops.
 */
final class StateSnapshots {

    /** A snapshot's bytes, bound to the transfer (leader, term) and the exact snapshot the core accepted. */
    private record ReceivedSnapshot(String leader, long term, SnapshotMeta snapshot, byte[] data) {
    }

    private final NodeStorage storage;
    private final StateMachine stateMachine;
    private final RequestDedup dedup;
    private final Clock clock;
    private final long threshold;
    private long lastIndex = -1;
    /** The bytes of the snapshot the core accepted and will hand out in a Ready, or null. */
    private ReceivedSnapshot received;

    StateSnapshots(NodeStorage storage, StateMachine stateMachine, RequestDedup dedup, Clock clock, long threshold) {
        this.storage = storage;
        this.stateMachine = stateMachine;
        this.dedup = dedup;
        this.clock = clock;
        this.threshold = threshold;
    }

    /**
     * At start: restores the state machine and the request table from the snapshot in storage, if any; a
     * position-only record (a log compacted by retention) holds neither (issue 16, B2 and B6).
     */
    void restoreAtStart() {
        SnapshotMeta snap = storage.log().snapshot();
        if (snap.index() >= 0) {
            restore(snap.index(), storage.snapshotData());
        }
        lastIndex = snap.index();
    }

    /** The index of the last snapshot taken or installed, -1 when none. */
    long lastIndex() {
        return lastIndex;
    }

    /** Whether this node takes snapshots at all (a state machine that can, and a threshold). */
    boolean enabled() {
        return stateMachine.canSnapshot() && threshold > 0;
    }

    /** Whether a snapshot is due once {@code index} is applied. */
    boolean dueAt(long index) {
        return enabled() && index - lastIndex >= threshold;
    }

    /**
     * An InstallSnapshot request with its bytes was stepped: the core's pending snapshot was {@code before} and is
     * {@code accepted} now. Only the bytes of the request the core accepted, bound to its snapshot, take the slot: a
     * stale one (a deposed leader's) or one the core answered without installing never does.
     */
    void offered(InstallSnapshotRequest s, SnapshotMeta before, SnapshotMeta accepted) {
        if (accepted != before && accepted == s.snapshot()) {
            received = new ReceivedSnapshot(s.from(), s.term(), accepted, s.data());
        }
    }

    /**
     * Installs the snapshot a Ready hands out: its bytes go to storage, the state machine and the request table.
     *
     * @throws IllegalStateException when the bytes held are not those of {@code snapshot}
     */
    void install(SnapshotMeta snapshot) {
        ReceivedSnapshot r = received;
        if (r == null || r.snapshot() != snapshot) {
            throw new IllegalStateException("snapshot " + snapshot.index() + "@" + snapshot.term()
                + " to install, but the bytes held are " + (r == null ? "none" : "those of "
                + r.snapshot().index() + "@" + r.snapshot().term() + " from " + r.leader() + " in term " + r.term()));
        }
        received = null;
        byte[] bytes = r.data();
        storage.installSnapshot(snapshot, bytes);
        // A snapshot that only says where the log goes on holds the state machine's image, or nothing (it then
        // starts empty).
        restore(snapshot.index(), bytes);
        lastIndex = snapshot.index();
    }

    /**
     * Takes a snapshot at the applied index when one is due.
     *
     * @return the snapshot taken, or null when none was due
     */
    SnapshotMeta takeIfDue(RaftNode node) {
        if (!dueAt(node.appliedIndex())) {
            return null;
        }
        return take(node);
    }

    /**
     * Whether this node knows the configuration at {@code index}. A node that was added to a group starts with no
     * configuration ({@link Membership#EMPTY}) and knows none before the first configuration entry it received: the
     * group's first configuration is no entry of the log. A snapshot there would carry an empty membership to every
     * node that installs it (one that restarts from it before it appended a later configuration entry counts no
     * voter; a witness reads it as its promotion). Such a node snapshots once it applied past that entry.
     */
    private static boolean configurationKnown(RaftNode node, long index) {
        return !node.membershipAt(index).voters().isEmpty();
    }

    /**
     * Takes a snapshot at the applied index when the core wants one at or above {@code wanted} (a witness being
     * promoted, {@link RaftNode#snapshotWanted()}) and the applied index reached it, whatever the threshold.
     *
     * @return the snapshot taken, or null
     */
    SnapshotMeta takeIfWanted(RaftNode node, long wanted) {
        if (wanted < 0 || !stateMachine.canSnapshot() || node.appliedIndex() < wanted || lastIndex >= wanted) {
            return null;
        }
        return take(node);
    }

    /** Whether the state machine can be snapshotted (else a witness cannot be promoted here, issue 19). */
    boolean canSnapshot() {
        return stateMachine.canSnapshot();
    }

    private SnapshotMeta take(RaftNode node) {
        long index = node.appliedIndex();
        if (!configurationKnown(node, index)) {
            return null;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            stateMachine.snapshot(index, out);
        } catch (IOException e) {
            throw new StorageException("snapshot at " + index + " failed: " + e.getMessage(), e);
        }
        long term = storage.log().term(index);
        // The request table goes with the state: a node that restarts from this snapshot, or installs it, still
        // recognizes retries of the entries it covers (issue 16, B2).
        SnapshotMeta meta = new SnapshotMeta(index, term, node.membershipAt(index));
        storage.saveSnapshot(meta, NodeSnapshot.encode(dedup.encode(), out.toByteArray()));
        lastIndex = index;
        return meta;
    }

    /**
     * The bytes to send a follower for the core's request of snapshot {@code wanted}: the stored snapshot, or for a log
     * compacted by retention the position with the state machine's current image (on the apply thread, so it is the
     * state after exactly what was applied). Null when the stored snapshot is no longer {@code wanted}: the core asked
     * for it before this node installed another in the same pass (a deposed leader that caught up by a snapshot from
     * its successor), and the bytes held now are another state than the request names.
     */
    byte[] dataToSend(SnapshotMeta wanted) {
        SnapshotMeta held = storage.log().snapshot();
        if (held.index() != wanted.index() || held.term() != wanted.term()) {
            return null;
        }
        byte[] data = storage.snapshotData();
        if (SnapshotPosition.isPosition(data)) {
            data = SnapshotPosition.encode(SnapshotPosition.decode(data), stateMachine.retainedImage());
        }
        return data;
    }

    /** Restores the state machine and the request table from a node snapshot's bytes (see {@link NodeSnapshot}). */
    private void restore(long index, byte[] data) {
        NodeSnapshot snap;
        try {
            snap = NodeSnapshot.decode(data);
            dedup.restore(snap.table(), clock.nanoTime());
        } catch (IllegalArgumentException e) {
            throw new StorageException("restoring snapshot " + index + " failed: " + e.getMessage(), e);
        }
        try {
            stateMachine.restore(index, new ByteArrayInputStream(snap.stateMachine()));
        } catch (IOException e) {
            throw new StorageException("restoring snapshot " + index + " failed: " + e.getMessage(), e);
        }
    }
}
