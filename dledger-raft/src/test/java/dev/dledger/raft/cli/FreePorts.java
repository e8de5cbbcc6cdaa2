package dev.dledger.raft.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;

/** Ports free on loopback right now, for nodes that must know each other's ports before they start. */
public final class FreePorts {

    private FreePorts() {
    }

    /** {@code n} distinct ports that were free a moment ago (another process may still take one meanwhile). */
    public static int[] take(int n) {
        List<ServerSocket> held = new ArrayList<>();
        try {
            int[] ports = new int[n];
            for (int i = 0; i < n; i++) {
                ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                held.add(s);
                ports[i] = s.getLocalPort();
            }
            return ports;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            for (ServerSocket s : held) {
                try {
                    s.close();
                } catch (IOException ignored) {
                    // closing a probe socket
                }
            }
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
