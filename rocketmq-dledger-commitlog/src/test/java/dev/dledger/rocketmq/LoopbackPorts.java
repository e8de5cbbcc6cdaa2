package dev.dledger.rocketmq;

import java.io.IOException;
import java.net.ServerSocket;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/** Free loopback ports for the child processes of a test, none handed out twice within one {@code taken} set. */
final class LoopbackPorts {

    private LoopbackPorts() {
    }

    /** A port that was free a moment ago. */
    static int freePort(Set<Integer> taken) throws IOException {
        while (true) {
            try (ServerSocket s = new ServerSocket(0)) {
                if (taken.add(s.getLocalPort())) {
                    return s.getLocalPort();
                }
            }
        }
    }

    /** A broker listenPort p with p - 2 (the VIP channel) and p + 1 (HA) free as well. */
    static int brokerPort(Set<Integer> taken) {
        while (true) {
            int base = ThreadLocalRandom.current().nextInt(20_000, 40_000);
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
