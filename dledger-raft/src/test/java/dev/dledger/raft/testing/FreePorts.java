package dev.dledger.raft.testing;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Ports free right now on every local address, for servers that must know each other's ports before they start (Raft
 * nodes, nameservers, brokers: the tests of every module draw theirs here). They are taken below the kernel's ephemeral
 * range (32768 and up on Linux): a node started late, or restarted, binds its port again, and a port in that range may
 * meanwhile be the local end of some outgoing connection (seen in CI: a node started late in RaftCommitLogCatchUpTest
 * failed with "Address already in use"). No port is handed out twice by one JVM.
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

    /** {@code n} distinct ports that were free a moment ago (another process may still take one meanwhile). */
    public static int[] take(int n) {
        int[] ports = new int[n];
        for (int i = 0; i < n; i++) {
            ports[i] = port();
        }
        return ports;
    }

    /** A port that was free a moment ago on every local address, not handed out before. */
    public static int port() {
        return block(1);
    }

    /**
     * The first of {@code count} consecutive ports that were free a moment ago on every local address (a server bound
     * to the wildcard address, or to any of 127.0.0.1, 127.0.0.2, ..., can take them), none handed out before.
     */
    public static int block(int count) {
        if (count < 1 || count > ABOVE_HIGHEST - LOWEST) {
            throw new IllegalArgumentException("cannot hand out a block of " + count + " ports");
        }
        for (int tries = 0; tries < 100_000; tries++) {
            int base = ThreadLocalRandom.current().nextInt(LOWEST, ABOVE_HIGHEST - count + 1);
            boolean free = true;
            for (int p = base; p < base + count && free; p++) {
                free = !HANDED_OUT.contains(p) && isFree(p);
            }
            if (free && handOut(base, count)) {
                return base;
            }
        }
        throw new IllegalStateException("no " + count + " free consecutive ports in [" + LOWEST + ", " + ABOVE_HIGHEST
            + ")");
    }

    /**
     * A RocketMQ broker's {@code listenPort} p whose neighbours it also binds are free as well: p - 2 (its VIP channel)
     * and p + 1 (its HA service).
     */
    public static int brokerPort() {
        return block(4) + 2;
    }

    /** Marks [base, base + count) handed out, unless another thread took one of them first (then none). */
    private static synchronized boolean handOut(int base, int count) {
        for (int p = base; p < base + count; p++) {
            if (HANDED_OUT.contains(p)) {
                return false;
            }
        }
        for (int p = base; p < base + count; p++) {
            HANDED_OUT.add(p);
        }
        return true;
    }

    private static boolean isFree(int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(port));
            return true;
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
