package dev.dledger.raft.transport;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.VoteRequest;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class NettyTransportTest {

    private static final int MAX_FRAME = 64 * 1024;
    private NettyTransport a;
    private NettyTransport b;
    private final List<Message> receivedByB = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() {
        a = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, MAX_FRAME);
        b = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, MAX_FRAME);
        a.register("g", "n0", m -> { });
        b.register("g", "n1", receivedByB::add);
        a.setPeers("g", Map.of("n1", b.localAddress()));
        b.setPeers("g", Map.of("n0", a.localAddress()));
    }

    @AfterEach
    void stop() {
        a.close();
        b.close();
    }

    private void sendUntilReceived(Message m, int count) {
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            a.send("g", m);
            return receivedByB.size() >= count;
        });
    }

    @Test
    void peersExchangeMessagesOfTheirGroup() {
        VoteRequest m = new VoteRequest("n0", "n1", 3, 10, 2, true, false);
        sendUntilReceived(m, 1);
        assertEquals(m, receivedByB.get(0));
    }

    @Test
    void aPeerWhoseProcessIsGoneIsReported() {
        List<String> downs = new CopyOnWriteArrayList<>();
        a.onPeerDown("g", downs::add);
        sendUntilReceived(new VoteRequest("n0", "n1", 1, -1, 0, false, false), 1);
        assertEquals(List.of(), downs, "nothing reported while n1 is up");

        b.close();

        await("n1 reported gone").atMost(Duration.ofSeconds(10)).until(() -> downs.contains("n1"));
        assertEquals(List.of("n1"), downs, "reported once");
    }

    @Test
    void aConnectionClosedByAPeerThatStillListensIsNotReported() throws Exception {
        List<String> downs = new CopyOnWriteArrayList<>();
        a.onPeerDown("g", downs::add);
        try (java.net.ServerSocket closer = new java.net.ServerSocket(0, 50,
            java.net.InetAddress.getByName("127.0.0.1"))) {
            a.setPeers("g", Map.of("n1", new InetSocketAddress("127.0.0.1", closer.getLocalPort())));
            // It resets the first connection; the transport tries again at once and finds the port open.
            closer.setSoTimeout(10_000);
            a.send("g", new VoteRequest("n0", "n1", 1, -1, 0, false, false));
            try (Socket first = closer.accept()) {
                // Reset it only once it is in use (a frame arrived), as a real peer's connection would be.
                await("a frame on the first connection").atMost(Duration.ofSeconds(10)).until(() -> {
                    a.send("g", new VoteRequest("n0", "n1", 1, -1, 0, false, false));
                    return first.getInputStream().available() > 0;
                });
                first.setSoLinger(true, 0);
            }
            try (Socket probe = closer.accept()) {
                assertTrue(probe.isConnected(), "the transport connected again after the reset");
                // Checked while the port still listens: once this block closes the port, a report is right.
                assertEquals(List.of(), downs, "a closed connection to a port that still listens is no evidence");
            }
        }
    }

    @Test
    void closingTwiceIsHarmless() {
        sendUntilReceived(new VoteRequest("n0", "n1", 1, -1, 0, false, false), 1);
        a.close();
        assertDoesNotThrow(a::close, "a second close must return quietly");
        assertDoesNotThrow(b::close);
    }

    @Test
    void malformedFrameClosesOnlyThatConnection() throws IOException {
        sendUntilReceived(new VoteRequest("n0", "n1", 1, -1, 0, false, false), 1);
        try (Socket s = new Socket("127.0.0.1", b.localAddress().getPort())) {
            byte[] junk = {0, 0, 0, 5, 9, 9, 9, 9, 9};
            s.getOutputStream().write(junk);
            s.getOutputStream().flush();
            assertEquals(-1, readUntilClosed(s.getInputStream()), "server must close a connection with a bad frame");
        }
        int before = receivedByB.size();
        sendUntilReceived(new VoteRequest("n0", "n1", 2, -1, 0, false, false), before + 1);
    }

    @Test
    void oversizedFrameClosesTheConnection() throws IOException {
        try (Socket s = new Socket("127.0.0.1", b.localAddress().getPort())) {
            OutputStream out = s.getOutputStream();
            out.write(ByteBuffer.allocate(4).putInt(MAX_FRAME + 1).array());
            out.write(new byte[1024]);
            out.flush();
            assertEquals(-1, readUntilClosed(s.getInputStream()));
        }
    }

    @Test
    void unknownGroupAndUnknownPeerAreRefusedWithAReason() throws IOException {
        byte[] wrongGroup = new Frame(Frame.Kind.RAFT, 0, "other",
            MessageCodec.encode(new VoteRequest("n0", "n1", 1, -1, 0, false, false))).encode();
        assertTrue(exchange(wrongGroup).contains("unknown group 'other'"));
        byte[] stranger = new Frame(Frame.Kind.RAFT, 0, "g",
            MessageCodec.encode(new VoteRequest("evil", "n1", 1, -1, 0, false, false))).encode();
        assertTrue(exchange(stranger).contains("unknown peer 'evil'"));
        assertEquals(0, receivedByB.size());
        assertEquals(2, b.refusedFrames());
    }

    private String exchange(byte[] frame) throws IOException {
        try (Socket s = new Socket("127.0.0.1", b.localAddress().getPort())) {
            s.getOutputStream().write(frame);
            s.getOutputStream().flush();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] reply = new byte[in.readInt()];
            in.readFully(reply);
            Frame f = Frame.decode(ByteBuffer.wrap(reply));
            assertEquals(Frame.Kind.ERROR, f.kind());
            return new String(f.body(), StandardCharsets.UTF_8);
        }
    }

    /**
     * A group that left b while its peer on a goes on sending (the nodes of a group removed from a container still
     * count it a voter): every frame is refused and answered, saying that the group stopped there (not that it is
     * unknown, which reads as a wrong conf), and each side logs one WARN for it, not one per frame.
     */
    @Test
    void framesOfAGroupThatLeftAreRefusedWithOneWarnNotOnePerFrame() throws Exception {
        sendUntilReceived(new VoteRequest("n0", "n1", 1, -1, 0, false, false), 1);
        java.util.concurrent.atomic.AtomicInteger errorsAtA = new java.util.concurrent.atomic.AtomicInteger();
        a.onPeerError(reason -> errorsAtA.incrementAndGet());
        long refusedBefore = b.refusedFrames();
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            b.unregister("g");
            for (int i = 0; i < 50; i++) {
                a.send("g", new VoteRequest("n0", "n1", 2, -1, 0, false, false));
            }
            await("b refused the 50 frames and a got 50 answers").atMost(Duration.ofSeconds(10))
                .until(() -> b.refusedFrames() - refusedBefore >= 50 && errorsAtA.get() >= 50);
        } finally {
            System.setErr(err);
        }
        List<String> lines = captured.toString(StandardCharsets.UTF_8).lines().toList();
        long warnAtB = lines.stream().filter(l -> l.contains("WARN") && l.contains("refused a frame from")
            && l.contains("group 'g' stopped on this node")).count();
        long warnAtA = lines.stream().filter(l -> l.contains("WARN") && l.contains("refused our message")
            && l.contains("group 'g' stopped on this node")).count();
        assertEquals(1, warnAtB, "WARN lines of b's refusals: " + lines);
        assertEquals(1, warnAtA, "WARN lines of a's refused messages: " + lines);
    }

    /**
     * A group leaving the transport closes the outbound connections only it used, for good (they are not opened
     * again), and keeps those another group uses.
     */
    @Test
    void unregisterClosesTheConnectionsOnlyItsGroupUsed() throws Exception {
        java.net.InetAddress lo = java.net.InetAddress.getByName("127.0.0.1");
        try (java.net.ServerSocket peerOfG = new java.net.ServerSocket(0, 50, lo);
             java.net.ServerSocket peerOfH = new java.net.ServerSocket(0, 50, lo)) {
            peerOfG.setSoTimeout(10_000);
            peerOfH.setSoTimeout(10_000);
            a.setPeers("g", Map.of("n1", new InetSocketAddress("127.0.0.1", peerOfG.getLocalPort())));
            a.register("h", "m0", m -> { });
            a.setPeers("h", Map.of("m1", new InetSocketAddress("127.0.0.1", peerOfH.getLocalPort())));
            a.send("g", new VoteRequest("n0", "n1", 1, -1, 0, false, false));
            a.send("h", new VoteRequest("m0", "m1", 1, -1, 0, false, false));
            try (Socket toG = peerOfG.accept(); Socket toH = peerOfH.accept()) {
                assertEquals(2, a.outboundConnections());

                a.unregister("g");

                toG.setSoTimeout(10_000);
                assertEquals(-1, readUntilClosed(toG.getInputStream()), "the connection of the group that left closed");
                assertEquals(1, a.outboundConnections(), "the other group's connection is kept");
                a.send("g", new VoteRequest("n0", "n1", 2, -1, 0, false, false));
                assertEquals(1, a.outboundConnections(), "a frame of the group that left opens nothing");
                assertTrue(toH.isConnected() && !toH.isClosed());
            }
        }
    }

    /** Peers set again without one (a member removed): the connection to it is closed for good. */
    @Test
    void aPeerNoLongerListedLosesItsConnection() throws Exception {
        java.net.InetAddress lo = java.net.InetAddress.getByName("127.0.0.1");
        try (java.net.ServerSocket peer = new java.net.ServerSocket(0, 50, lo)) {
            peer.setSoTimeout(10_000);
            a.setPeers("g", Map.of("n1", b.localAddress(), "n2", new InetSocketAddress("127.0.0.1",
                peer.getLocalPort())));
            try (Socket toPeer = peer.accept()) {
                a.setPeers("g", Map.of("n1", b.localAddress()));

                toPeer.setSoTimeout(10_000);
                assertEquals(-1, readUntilClosed(toPeer.getInputStream()), "the removed peer's connection closed");
                assertEquals(1, a.outboundConnections(), "n1's connection is kept");
            }
        }
    }

    private static int readUntilClosed(InputStream in) throws IOException {
        int r;
        do {
            r = in.read();
        } while (r != -1);
        return r;
    }
}
