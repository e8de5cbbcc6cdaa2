package dev.dledger.rocketmq;

import dev.dledger.raft.cli.FreePorts;
import java.io.IOException;
import java.net.ServerSocket;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Free loopback ports for the child processes of a test, none handed out twice within one {@code taken} set. They are
 * taken below the kernel's ephemeral range (32768 and up on Linux): a process restarted by a test binds its port again,
 * and a port in that range may meanwhile be the local end of some outgoing connection (seen: a broker restarted in
 * BrokerReplaceTest failed with "Address already in use" on its listenPort). They come from this JVM's slice of that
 * range ({@link FreePorts#sliceLow()}, {@code -DfreePorts.slice=k/n}), so that test JVMs run side by side never draw
 * the same port.
 */
final class LoopbackPorts {

    /** The ports handed out are in [LOWEST, ABOVE_HIGHEST). */
    private static final int LOWEST = FreePorts.sliceLow();
    private static final int ABOVE_HIGHEST = FreePorts.sliceHigh();

    private LoopbackPorts() {
    }

    /** A port that was free a moment ago. */
    static int freePort(Set<Integer> taken) throws IOException {
        while (true) {
            int p = ThreadLocalRandom.current().nextInt(LOWEST, ABOVE_HIGHEST);
            if (!taken.contains(p) && isFree(p)) {
                taken.add(p);
                return p;
            }
        }
    }

    /** A broker listenPort p with p - 2 (the VIP channel) and p + 1 (HA) free as well. */
    static int brokerPort(Set<Integer> taken) {
        while (true) {
            int base = ThreadLocalRandom.current().nextInt(LOWEST, ABOVE_HIGHEST - 4);
            boolean free = true;
            for (int p = base; p < base + 4 && free; p++) {
                free = !taken.contains(p) && isFree(p);
            }
            if (free) {
                for (int p = base; p < base + 4; p++) {
                    taken.add(p);
                }
                return base + 2;
            }
        }
    }

    private static boolean isFree(int port) {
        try (ServerSocket s = new ServerSocket(port)) {
            return s.getLocalPort() == port;
        } catch (IOException e) {
            return false;
        }
    }
}
