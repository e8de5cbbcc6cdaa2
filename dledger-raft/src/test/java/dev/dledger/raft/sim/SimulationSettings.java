package dev.dledger.raft.sim;

/**
 * The knobs of a simulation run that do not come from the seed.
 *
 * @param faultTicks    length of the fault phase, in nominal ticks (faults, partitions, clients)
 * @param livenessTicks after the fault phase everything is healed; within this many nominal ticks a leader must
 *                      commit a new proposal and every voter must apply it, else the run fails ({@code liveness})
 * @param debugLogs     keep the cores' debug lines (slower; used to replay a failing seed)
 * @param traceLines    how many of the last trace lines a report prints
 * @param logLines      how many of the last log lines per node are kept
 * @param maxEvents     a run that needs more events than this fails as a harness error (a livelock guard)
 * @param forcePreVote  run every profile with pre-vote on (the seed still draws the flag, so other parameters of a
 *                      seed do not change); for excluding the pre-vote-off profiles while a bug there is open
 */
public record SimulationSettings(int faultTicks, int livenessTicks, boolean debugLogs, int traceLines, int logLines,
                                 long maxEvents, boolean forcePreVote) {

    /** The defaults: a fault phase of 2000 ticks, 400 ticks to recover, info logs only. */
    public static SimulationSettings defaults() {
        return new SimulationSettings(2000, 400, false, 60, 120, 2_000_000, false);
    }

    /** A copy with debug logs switched. */
    public SimulationSettings withDebugLogs(boolean debug) {
        return new SimulationSettings(faultTicks, livenessTicks, debug, traceLines, logLines, maxEvents, forcePreVote);
    }

    /** A copy with another fault phase length. */
    public SimulationSettings withFaultTicks(int ticks) {
        return new SimulationSettings(ticks, livenessTicks, debugLogs, traceLines, logLines, maxEvents, forcePreVote);
    }

    /** A copy with pre-vote forced on or left to the seed. */
    public SimulationSettings withForcePreVote(boolean force) {
        return new SimulationSettings(faultTicks, livenessTicks, debugLogs, traceLines, logLines, maxEvents, force);
    }
}
