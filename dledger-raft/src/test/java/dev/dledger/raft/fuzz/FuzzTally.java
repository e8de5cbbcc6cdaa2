package dev.dledger.raft.fuzz;

import java.lang.management.ManagementFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The count of one fuzz target's executions and findings, and the contract checks the targets share.
 *
 * <p>A target runs each input through {@link #run}; whatever escapes it is a finding (Jazzer saves the input and stops
 * the run with that failure). A target catches exactly the exceptions its contract allows and passes them to
 * {@link #clearError} or {@link #clearErrorNaming}; every other exception, every {@link Error} (an
 * {@link OutOfMemoryError} under the fuzz JVM's small heap, a {@link StackOverflowError}) and every failed
 * {@link #check} escapes. A hang is caught by the fuzzer's per-input timeout.
 *
 * <p>{@link #report()}, called once the target is done, prints the line the build log shows for it:
 * {@code fuzz: target NAME, N executions in T s, F findings}.
 */
public final class FuzzTally {

    private final String target;
    private final AtomicLong executions = new AtomicLong();
    private final AtomicLong findings = new AtomicLong();
    private volatile long firstNanos;

    /** A tally for the target called {@code target} in the build log. */
    public FuzzTally(String target) {
        this.target = target;
    }

    /** Runs one input; counts it, and counts what escapes as a finding before it goes on to the fuzzer. */
    public void run(Runnable execution) {
        if (executions.getAndIncrement() == 0) {
            firstNanos = System.nanoTime();
        }
        try {
            execution.run();
        } catch (RuntimeException | Error e) {
            findings.incrementAndGet();
            throw e;
        }
    }

    /** Executions so far. */
    public long executions() {
        return executions.get();
    }

    /** Prints the target's line: its executions, the seconds they took and its findings. */
    public void report() {
        long seconds = executions.get() == 0 ? 0 : TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - firstNanos);
        String mode = System.getenv("JAZZER_FUZZ") == null ? " (committed inputs only, not fuzzing)" : "";
        System.out.println("fuzz: target " + target + ", " + executions.get() + " executions in " + seconds + " s, "
            + findings.get() + (findings.get() == 1 ? " finding" : " findings") + mode);
    }

    /**
     * An allowed error is a clear one: it says what went wrong in one non-blank line.
     *
     * @throws AssertionError (a finding) if the message is missing, blank or spans lines
     */
    public static void clearError(RuntimeException e) {
        String m = e.getMessage();
        check(m != null && !m.isBlank(), "an error without a message", e);
        check(m.indexOf('\n') < 0 && m.indexOf('\r') < 0, "an error message of several lines", e);
    }

    /**
     * A clear error ({@link #clearError}) that also names {@code what} (a file, a folder, a key).
     *
     * @throws AssertionError (a finding) if it does not
     */
    public static void clearErrorNaming(RuntimeException e, String what) {
        clearError(e);
        check(e.getMessage().contains(what), "an error that does not name " + what, e);
    }

    /**
     * A property every input must keep.
     *
     * @throws AssertionError (a finding) naming the property, with {@code cause} if any
     */
    public static void check(boolean holds, String property, Throwable cause) {
        if (!holds) {
            throw new AssertionError(property + (cause == null ? "" : ": " + cause), cause);
        }
    }

    /**
     * Runs {@code decode} and checks that it allocated at most {@code limitBytes}. An execution that loaded a class is
     * not checked: loading and instrumenting a class allocates far more than any decoder.
     *
     * @throws AssertionError (a finding) if the decoder allocated more
     */
    public static void allocatesAtMost(long limitBytes, String what, Runnable decode) {
        long classes = ManagementFactory.getClassLoadingMXBean().getTotalLoadedClassCount();
        long before = allocatedBytes();
        decode.run();
        long allocated = allocatedBytes() - before;
        if (ManagementFactory.getClassLoadingMXBean().getTotalLoadedClassCount() == classes) {
            check(allocated <= limitBytes, what + " allocated " + allocated + " bytes, more than " + limitBytes, null);
        }
    }

    /** Bytes the calling thread has allocated so far (HotSpot's per-thread counter). */
    private static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }
}
