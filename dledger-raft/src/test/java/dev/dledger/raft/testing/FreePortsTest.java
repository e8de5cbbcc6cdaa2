package dev.dledger.raft.testing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.Test;

/** The slices of the port range that test JVMs running side by side take their ports from, and the blocks handed out. */
class FreePortsTest {

    @Test
    void aBlockIsFreeOnTheWildcardAddressAndNoneOfItsPortsIsHandedOutAgain() throws IOException {
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 50; i++) {
            int listen = FreePorts.brokerPort();
            int base = listen - 2;
            for (int p = base; p < base + 4; p++) {
                assertTrue(p >= 10_000 && p < 32_000, "port " + p + " outside [10000, 32000)");
                assertTrue(seen.add(p), "port " + p + " handed out twice");
                try (ServerSocket s = new ServerSocket()) {
                    s.bind(new InetSocketAddress(p));
                }
            }
            assertTrue(seen.add(FreePorts.port()), "a single port handed out twice");
        }
        // Ports that other servers hold (bound here, not drawn here) are never handed out, alone or in a block: with 200
        // of this JVM's range of 11,000 to 22,000 held, 300 blocks of 4 would cover 11 to 22 of them if nothing looked.
        int[] range = FreePorts.slice(System.getProperty(FreePorts.SLICE_PROPERTY));
        List<ServerSocket> held = new ArrayList<>();
        Set<Integer> heldPorts = new HashSet<>();
        try {
            while (held.size() < 200) {
                int p = ThreadLocalRandom.current().nextInt(range[0], range[1]);
                ServerSocket s = new ServerSocket();
                try {
                    s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), p));
                    held.add(s);
                    heldPorts.add(p);
                } catch (IOException taken) {
                    s.close();
                }
            }
            for (int i = 0; i < 300; i++) {
                int base = FreePorts.block(4);
                for (int p = base; p < base + 4; p++) {
                    assertFalse(heldPorts.contains(p), "block at " + base + " covers the held port " + p);
                }
            }
        } finally {
            for (ServerSocket s : held) {
                s.close();
            }
        }
    }

    @Test
    void slicesSplitTheRangeWithoutOverlapAndNoSliceIsTheWholeRange() {
        assertArrayEquals(new int[] {10_000, 32_000}, FreePorts.slice(null));
        assertArrayEquals(new int[] {10_000, 32_000}, FreePorts.slice(" "));
        assertArrayEquals(new int[] {10_000, 21_000}, FreePorts.slice("1/2"));
        assertArrayEquals(new int[] {21_000, 32_000}, FreePorts.slice(" 2 / 2 "));
        assertArrayEquals(new int[] {10_000, 32_000}, FreePorts.slice("1/1"));
    }

    @Test
    void aBadSliceIsRefusedNamingTheProperty() {
        for (String bad : List.of("0/2", "3/2", "2", "a/b", "1/2/3", "1/0", "1/65")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FreePorts.slice(bad), bad);
            assertTrue(e.getMessage().startsWith("-DfreePorts.slice=" + bad + ": expected k/n"), e.getMessage());
        }
    }
}
