/**
 * Deterministic simulation of Raft groups of production drivers ({@code dev.dledger.raft.server.RaftGroupNode}) whose
 * ports alone are simulated, published in the test-jar so that
 * other modules can drive their own components the same way.
 *
 * <p>The pieces, each usable alone:
 * <ul>
 *   <li>{@link dev.dledger.raft.sim.SimulatedClock} and {@link dev.dledger.raft.sim.SimulatedScheduler}: simulated
 *   time and a discrete-event queue ordered by (time, sequence number).</li>
 *   <li>{@link dev.dledger.raft.sim.SimulatedNetwork}: delay, loss, duplication, reordering, one-way and symmetric
 *   partitions.</li>
 *   <li>{@link dev.dledger.raft.sim.SimulatedLogStore}, {@link dev.dledger.raft.sim.SimulatedMetaStore},
 *   {@link dev.dledger.raft.sim.SimulatedSnapshotStore}: in-memory stores with a durable part; a crash loses what
 *   was not synced, a torn write keeps a prefix.</li>
 *   <li>{@link dev.dledger.raft.sim.SimulatedHost}: one machine running the production driver unchanged over
 *   simulated disk, clock, threads (event loop, blocking-work thread, background syncer) and network; it pauses,
 *   crashes and injects {@link dev.dledger.raft.sim.DiskFault}s.</li>
 *   <li>{@link dev.dledger.raft.sim.InvariantChecker}: the safety properties, checked after every event.</li>
 *   <li>{@link dev.dledger.raft.sim.RaftSimulation}: one seeded run (fault phase, then healing and a liveness
 *   check); {@code RaftSimulationTest} runs many.</li>
 * </ul>
 *
 * <p>Rules that keep runs replayable: one {@link java.util.Random} per run drives everything; no wall clock, no
 * sleeping, no iteration over hash-ordered collections where the order can reach the trace. A failing run prints its
 * seed; {@code -Dsim.seed=S -Dsim.runs=1} replays it exactly.
 */
package dev.dledger.raft.sim;
