package dev.dledger.raft.cli;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Ports free on loopback right now, for nodes that must know each other's ports before they start. They are taken
 * below the kernel's ephemeral range (32768 and up on Linux): a node started late, or restarted, binds its port
 * again, and a port in that range may meanwhile be the local end of some outgoing connection (seen in CI: a node
 * started late in RaftCommitLogCatchUpTest failed with "Address already in use"). No port is handed out twice by one
 * JVM.
 */
public final class FreePorts {

    /** The range of all ports handed out: [{@value #RANGE_LOW}, {@value #RANGE_HIGH}). */
    private static final int RANGE_LOW = 10_000;
    private static final int RANGE_HIGH = 32_000;
    /**
     * The system property {@code freePorts.slice=k/n}: this JVM takes its ports from the k-th (1 to n) of n equal
     * slices of the range, so that n test JVMs running side by side (surefire's forks, k its fork number) never pick
     * the same port. Without it, the whole range.
     */
    static final String SLICE_PROPERTY = "freePorts.slice";
    private static final int[] SLICE = slice(System.getProperty(SLICE_PROPERTY));
    /** The ports this JVM hands out are in [LOWEST, ABOVE_HIGHEST). */
    private static final int LOWEST = SLICE[0];
    private static final int ABOVE_HIGHEST = SLICE[1];
    private static final Set<Integer> HANDED_OUT = ConcurrentHashMap.newKeySet();

    private FreePorts() {
    }

    /**
     * The lowest port of this JVM's slice, for harnesses that draw ports of their own (several consecutive ones for a
     * broker): drawn in [{@link #sliceLow()}, {@link #sliceHigh()}), they never meet another fork's.
     */
    public static int sliceLow() {
        return LOWEST;
    }

    /** The port above the highest of this JVM's slice; see {@link #sliceLow()}. */
    public static int sliceHigh() {
        return ABOVE_HIGHEST;
    }

    /** {@code n} distinct ports that were free a moment ago (another process may still take one meanwhile). */
    public static int[] take(int n) {
        int[] ports = new int[n];
        for (int i = 0; i < n; i++) {
            ports[i] = one();
        }
        return ports;
    }

    private static int one() {
        for (int tries = 0; tries < 100_000; tries++) {
            int p = ThreadLocalRandom.current().nextInt(LOWEST, ABOVE_HIGHEST);
            if (HANDED_OUT.add(p)) {
                if (isFree(p)) {
                    return p;
                }
            }
        }
        throw new IllegalStateException("no free loopback port in [" + LOWEST + ", " + ABOVE_HIGHEST + ")");
    }

    private static boolean isFree(int port) {
        try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort() == port;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * The [low, high) ports of slice {@code spec} ("k/n"), or the whole range for null or blank.
     *
     * @throws IllegalArgumentException naming the property when {@code spec} is not k/n with 1 &lt;= k &lt;= n &lt;= 64
     */
    static int[] slice(String spec) {
        if (spec == null || spec.isBlank()) {
            return new int[] {RANGE_LOW, RANGE_HIGH};
        }
        String[] kn = spec.trim().split("/", -1);
        try {
            int k = Integer.parseInt(kn[0].trim());
            int n = kn.length == 2 ? Integer.parseInt(kn[1].trim()) : -1;
            if (n >= 1 && n <= 64 && k >= 1 && k <= n) {
                int width = (RANGE_HIGH - RANGE_LOW) / n;
                return new int[] {RANGE_LOW + (k - 1) * width, RANGE_LOW + k * width};
            }
        } catch (NumberFormatException ignored) {
            // refused below
        }
        throw new IllegalArgumentException("-D" + SLICE_PROPERTY + "=" + spec + ": expected k/n, slice k (1 to n) of n "
            + "(1 to 64), e.g. 1/2");
    }

    /** The peer list {@code n0-127.0.0.1:p0;n1-127.0.0.1:p1;...}. */
    public static String peers(int[] ports) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < ports.length; i++) {
            b.append(i == 0 ? "" : ";").append('n').append(i).append("-127.0.0.1:").append(ports[i]);
        }
        return b.toString();
    }
}
