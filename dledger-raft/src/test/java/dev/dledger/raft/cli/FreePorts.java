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

    /** The ports handed out are in [{@value #LOWEST}, {@value #ABOVE_HIGHEST}). */
    private static final int LOWEST = 10_000;
    private static final int ABOVE_HIGHEST = 32_000;
    private static final Set<Integer> HANDED_OUT = ConcurrentHashMap.newKeySet();

    private FreePorts() {
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

    /** The peer list {@code n0-127.0.0.1:p0;n1-127.0.0.1:p1;...}. */
    public static String peers(int[] ports) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < ports.length; i++) {
            b.append(i == 0 ? "" : ";").append('n').append(i).append("-127.0.0.1:").append(ports[i]);
        }
        return b.toString();
    }
}
