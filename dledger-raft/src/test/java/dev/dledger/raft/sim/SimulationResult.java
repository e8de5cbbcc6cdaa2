package dev.dledger.raft.sim;

/**
 * The outcome of one simulation run.
 *
 * @param seed      the seed that replays it exactly
 * @param invariant the name of the broken invariant, or null when the run passed
 * @param detail    what broke, or null
 * @param traceHash the hash of the whole trace (equal for two runs of one seed)
 * @param events    the number of events run
 * @param endTime   the simulated time at the end, in clock units
 * @param coverage  what the run exercised
 * @param report    for a failed run: profile, node states, trace tail and buffered logs; else null
 */
public record SimulationResult(long seed, String invariant, String detail, long traceHash, long events, long endTime,
                               Coverage coverage, String report) {

    /** Whether every invariant held and the group recovered. */
    public boolean passed() {
        return invariant == null;
    }
}
