package dev.dledger.raft.faults;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The proxy against a plain socket server on loopback: pass, drop, one-way stall, blackhole, delay and heal. */
class FaultProxyTest {

    /** How long "nothing arrives" is watched for. */
    private static final int QUIET_MS = 300;

    private ServerSocket targetServer;
    private final BlockingQueue<Socket> targetSide = new LinkedBlockingQueue<>();
    private FaultProxy proxy;

    @BeforeEach
    void startTarget() throws IOException {
        targetServer = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread t = new Thread(() -> {
            while (!targetServer.isClosed()) {
                try {
                    targetSide.add(targetServer.accept());
                } catch (IOException e) {
                    return;
                }
            }
        }, "target accept");
        t.setDaemon(true);
        t.start();
        proxy = FaultProxy.start("a->b", new InetSocketAddress(InetAddress.getLoopbackAddress(),
            targetServer.getLocalPort()));
    }

    @AfterEach
    void stop() throws IOException {
        proxy.close();
        targetServer.close();
        for (Socket s : targetSide) {
            s.close();
        }
    }

    @Test
    void passesBytesBothWaysWhenHealed() throws Exception {
        try (Socket client = connect()) {
            Socket target = acceptedAtTarget();
            send(client, "ping");
            assertEquals("ping", receive(target, 4));
            send(target, "pong");
            assertEquals("pong", receive(client, 4));
            // the counters move right after the bytes were written
            Awaitility.await().atMost(Duration.ofSeconds(10)).until(() ->
                proxy.bytesForwarded(FaultProxy.Direction.TO_TARGET) == 4
                    && proxy.bytesForwarded(FaultProxy.Direction.FROM_TARGET) == 4);
            assertTrue(proxy.healed());
        }
    }

    @Test
    void dropResetsOpenConnectionsAndNewOnesUntilHealed() throws Exception {
        try (Socket client = connect()) {
            acceptedAtTarget();
            Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> proxy.openConnections() == 1);
            proxy.drop();
            assertEquals(0, proxy.openConnections());
            assertClosedByProxy(client);
        }
        assertRefused();
        assertTrue(proxy.resetConnections() >= 2, proxy + " reset " + proxy.resetConnections());
        proxy.heal();
        try (Socket again = connect()) {
            Socket target = acceptedAtTarget();
            send(again, "back");
            assertEquals("back", receive(target, 4));
        }
    }

    @Test
    void stallOneDirectionHoldsItsBytesWhileTheOtherPassesAndDeliversThemInOrderAfterHeal() throws Exception {
        try (Socket client = connect()) {
            Socket target = acceptedAtTarget();
            proxy.stall(FaultProxy.Direction.FROM_TARGET);
            send(target, "held-1");
            send(target, "held-2");
            send(client, "goes");
            assertEquals("goes", receive(target, 4));
            assertNothingArrives(client);
            proxy.heal();
            assertEquals("held-1held-2", receive(client, 12));
        }
    }

    @Test
    void blackholeKeepsConnectionsOpenButMovesNothing() throws Exception {
        try (Socket client = connect()) {
            Socket target = acceptedAtTarget();
            proxy.blackhole();
            send(client, "lost?");
            send(target, "also?");
            assertNothingArrives(target);
            assertNothingArrives(client);
            assertEquals(1, proxy.openConnections());
            proxy.heal();
            assertEquals("lost?", receive(target, 5));
            assertEquals("also?", receive(client, 5));
        }
    }

    @Test
    void delayAddsLatencyInBothDirections() throws Exception {
        proxy.delay(200);
        try (Socket client = connect()) {
            Socket target = acceptedAtTarget();
            long start = System.nanoTime();
            send(client, "one");
            assertEquals("one", receive(target, 3));
            send(target, "two");
            assertEquals("two", receive(client, 3));
            long roundTripMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertTrue(roundTripMs >= 400, "round trip " + roundTripMs + " ms with 200 ms each way");
        }
        assertThrows(IllegalArgumentException.class, () -> proxy.delay(-1));
    }

    @Test
    void anUnreachableTargetClosesTheConnection() throws Exception {
        targetServer.close();
        assertRefused();
    }

    private Socket connect() throws IOException {
        Socket s = new Socket();
        s.connect(proxy.address(), 5_000);
        s.setSoTimeout(10_000);
        return s;
    }

    private Socket acceptedAtTarget() throws Exception {
        Socket s = targetSide.poll(10, TimeUnit.SECONDS);
        assertTrue(s != null, "the proxy connected to the target");
        s.setSoTimeout(10_000);
        return s;
    }

    private static void send(Socket s, String text) throws IOException {
        s.getOutputStream().write(text.getBytes(StandardCharsets.UTF_8));
        s.getOutputStream().flush();
    }

    private static String receive(Socket s, int bytes) throws IOException {
        byte[] b = s.getInputStream().readNBytes(bytes);
        assertEquals(bytes, b.length, "bytes before the end of the stream");
        return new String(b, StandardCharsets.UTF_8);
    }

    private static void assertNothingArrives(Socket s) throws IOException {
        int before = s.getSoTimeout();
        s.setSoTimeout(QUIET_MS);
        try {
            assertThrows(SocketTimeoutException.class, () -> s.getInputStream().read(),
                "nothing arrives for " + QUIET_MS + " ms");
        } finally {
            s.setSoTimeout(before);
        }
    }

    /** A new connection is reset while connecting or closed right after. */
    private void assertRefused() throws IOException {
        Socket s = new Socket();
        try {
            s.connect(proxy.address(), 5_000);
        } catch (IOException e) {
            s.close();
            return; // reset during the handshake
        }
        try (s) {
            s.setSoTimeout(10_000);
            assertClosedByProxy(s);
        }
    }

    /** The proxy closed or reset the connection: a read ends the stream or fails, it does not time out. */
    private static void assertClosedByProxy(Socket s) {
        int read;
        try {
            read = s.getInputStream().read();
        } catch (SocketTimeoutException e) {
            throw new AssertionError("the connection stayed open", e);
        } catch (IOException e) {
            read = -1; // reset by the proxy
        }
        assertEquals(-1, read, "end of stream");
    }
}
