package dev.dledger.raft.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.junit.jupiter.api.Test;

/**
 * Hidden nondeterminism (a wall clock, an unseeded random, iteration over identity-hashed collections) fails here:
 * one seed run twice must give the same trace hash, event count and outcome.
 */
class SimulationDeterminismTest {

    private static final long[] SEEDS = {1, 7, 42, 1234, 987654321};

    @Test
    void sameSeedGivesTheSameTrace() {
        SimulationSettings settings = SimulationSettings.defaults().withFaultTicks(300);
        for (long seed : SEEDS) {
            SimulationResult a = new RaftSimulation(seed, settings).run();
            SimulationResult b = new RaftSimulation(seed, settings).run();
            assertEquals(a.traceHash(), b.traceHash(), "trace hash of seed " + seed);
            assertEquals(a.events(), b.events(), "events of seed " + seed);
            assertEquals(a.endTime(), b.endTime(), "end time of seed " + seed);
            assertEquals(a.invariant(), b.invariant(), "outcome of seed " + seed);
        }
    }

    @Test
    void debugLoggingDoesNotChangeTheTrace() {
        SimulationSettings settings = SimulationSettings.defaults().withFaultTicks(300);
        SimulationResult quiet = new RaftSimulation(3, settings).run();
        SimulationResult verbose = new RaftSimulation(3, settings.withDebugLogs(true)).run();
        assertEquals(quiet.traceHash(), verbose.traceHash());
    }

    @Test
    void differentSeedsGiveDifferentTraces() {
        SimulationSettings settings = SimulationSettings.defaults().withFaultTicks(100);
        assertNotEquals(new RaftSimulation(1, settings).run().traceHash(),
            new RaftSimulation(2, settings).run().traceHash());
    }
}
