package dev.dledger.raft.sim;

/**
 * A broken invariant found by the simulation: the run stops at the event that broke it and reports the seed.
 */
public final class InvariantViolation extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String invariant;

    /**
     * A violation of {@code invariant} (a short stable name, such as "log-matching").
     *
     * @param detail what was observed, with the node, indexes and terms involved
     */
    public InvariantViolation(String invariant, String detail) {
        super(invariant + ": " + detail);
        this.invariant = invariant;
    }

    /** The short name of the broken invariant. */
    public String invariant() {
        return invariant;
    }
}
