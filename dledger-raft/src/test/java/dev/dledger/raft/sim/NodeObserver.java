package dev.dledger.raft.sim;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.transport.SnapshotChunk;
import java.util.List;

/**
 * What a {@link SimulatedHost}'s ports see the production driver do, reported as it happens, on the simulation
 * thread. A hook may throw {@link InvariantViolation}; the driver may catch it (it stops the node), so the checker also
 * keeps the first violation for the simulation to report after the event.
 */
public interface NodeObserver {

    /** The driver is about to persist a new term and vote. */
    default void onHardState(SimulatedHost host, HardState hardState) {
    }

    /** The driver is about to remove the log's entries from {@code fromIndex} on. */
    default void onTruncate(SimulatedHost host, long fromIndex) {
    }

    /** The driver is about to append {@code entries} (the log still ends before them). */
    default void onAppend(SimulatedHost host, List<Entry> entries) {
    }

    /** The driver is about to install a snapshot received from a leader. */
    default void onInstall(SimulatedHost host, SnapshotMeta meta) {
    }

    /** The driver restored the state machine as of {@code index} from {@code stateBytes} (start or install). */
    default void onRestored(SimulatedHost host, long index, byte[] stateBytes) {
    }

    /** The driver took a snapshot and compacted its log up to it. */
    default void onSnapshotTaken(SimulatedHost host, SnapshotMeta meta) {
    }

    /** The driver records {@code commitIndex} as its commit checkpoint. */
    default void onCheckpoint(SimulatedHost host, long commitIndex) {
    }

    /** {@code m} is about to leave the node. */
    default void onSend(SimulatedHost host, Message m) {
    }

    /** A snapshot chunk or chunk acknowledgement is about to leave the node. */
    default void onChunk(SimulatedHost host, SnapshotChunk chunk) {
    }

    /** {@code e} was applied to the node's state machine. */
    /** A witness is about to drop the bodies of its entries up to {@code index} (issue 19). */
    default void onDropBodies(SimulatedHost host, long index) {
    }

    default void onApplied(SimulatedHost host, Entry e) {
    }

    /** The process is about to go down; its driver's status and its disk are still as they were. */
    default void onCrashing(SimulatedHost host) {
    }

    /** The process went down (crash, injected fault, shutdown); the disk kept what it synced. */
    default void onCrash(SimulatedHost host, String why) {
    }

    /** A new process starts on the host's disk. */
    default void onRestart(SimulatedHost host) {
    }
}
