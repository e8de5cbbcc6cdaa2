package dev.dledger.raft.core;

/**
 * The only source of randomness of the core (election jitter). Production seeds it from the wall clock; the
 * simulation seeds it from the run's seed, so a run is replayable.
 */
@FunctionalInterface
public interface RandomSource {

    /** A uniformly distributed value in {@code [0, bound)}; {@code bound > 0}. */
    int nextInt(int bound);
}
