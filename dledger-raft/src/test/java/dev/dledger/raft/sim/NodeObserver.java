package dev.dledger.raft.sim;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.ReadState;
import dev.dledger.raft.core.Ready;
import dev.dledger.raft.core.SnapshotMeta;

/**
 * What a {@link SimulatedNode} reports while it drives its core: the hooks where the invariant checker, the simulated
 * clients and the coverage counters look. Every method runs on the simulation thread, at the step of the Ready
 * handling named below; a method may throw {@link InvariantViolation} to stop the run. The defaults do nothing.
 */
public interface NodeObserver {

    /** A Ready was taken from the core, before anything of it is persisted. */
    default void onReady(SimulatedNode node, Ready rd) {
    }

    /** A snapshot received from a leader was installed (log reset, state machine restored from {@code data}). */
    default void onSnapshotInstalled(SimulatedNode node, SnapshotMeta meta, byte[] data) {
    }

    /** Everything the Ready asked to persist is durable; the messages are not sent yet. */
    default void onPersisted(SimulatedNode node, Ready rd) {
    }

    /** {@code m} is about to leave the node (snapshot bytes already attached); everything it may depend on is durable. */
    default void onSend(SimulatedNode node, Message m) {
    }

    /** Sending a snapshot to {@code peer} failed (injected); the core will be told so later. */
    default void onSnapshotSendFailed(SimulatedNode node, String peer) {
    }

    /** {@code e} was applied to the node's state machine. */
    default void onApplied(SimulatedNode node, Entry e) {
    }

    /** The core confirmed a read; it is served once the node applied its index. */
    default void onReadState(SimulatedNode node, ReadState rs) {
    }

    /** A confirmed read was served from the state machine, whose applied index is now at least {@code rs.index()}. */
    default void onReadServed(SimulatedNode node, ReadState rs) {
    }

    /** The node took a local snapshot and compacted its log up to it. */
    default void onSnapshotTaken(SimulatedNode node, SnapshotMeta meta) {
    }

    /** The node went down (crash or injected fault); its volatile state is gone. */
    default void onCrash(SimulatedNode node, String why) {
    }

    /** The node started again from its durable state. */
    default void onRestart(SimulatedNode node) {
    }
}
