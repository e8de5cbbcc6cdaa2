package dev.dledger.raft.transport;

import static dev.dledger.raft.fuzz.FuzzTally.check;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.fuzz.FuzzTally;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzzes the transport's decoding exactly as bytes arrive from a socket: the fuzzed bytes go, cut into pieces where the
 * input says, through the real pipeline of a connection (length-field framing, then the handler that checks and
 * dispatches frames) on an {@link EmbeddedChannel}. Either side: an accepted connection, or an outbound one reading
 * what the peer answers. Either port: plain, or secured by a group secret and a client token; on a secured one the
 * input may first pass a real handshake (as a peer or as a client), so that the fuzzer reaches what follows it.
 *
 * <p>Contract: whatever the bytes, a connection serves frames, refuses them with an ERROR frame, or closes with a
 * logged reason (a malformed frame, a frame over the size limit). Nothing escapes the pipeline, the transport's
 * count of unexpected handler failures ({@link NettyTransport#internalErrors()}) stays put, and every message, chunk
 * and request that the handlers hand on decodes to the same bytes after a re-encoding. Anything else is a finding.
 */
class FrameDecoderFuzzTest {

    private static final FuzzTally TALLY = new FuzzTally("frame-decoder");
    private static final String GROUP = "g";
    private static final String SELF = "n1";
    private static final String PEER = "n0";
    private static final String SECRET = "fuzz-group-secret-0123456789";
    private static final String TOKEN = "fuzz-client-token";
    private static final InetSocketAddress PEER_ADDRESS = new InetSocketAddress("127.0.0.1", 1);
    /** A failure in a consumer the transport hands decoded values to. */
    private static final AtomicReference<Throwable> HANDED_ON = new AtomicReference<>();

    private static NettyTransport plain;
    private static NettyTransport secured;

    @BeforeAll
    static void start() {
        plain = transport(TransportOptions.defaults().withIoThreads(1));
        // A small frame limit on the secured port, so that the fuzzer reaches frames over the limit too.
        secured = transport(TransportOptions.defaults().withIoThreads(1).withLimits(4096, 4, 4)
            .withGroupSecret(SECRET).withClientToken(TOKEN));
    }

    @AfterAll
    static void stop() {
        TALLY.report();
        plain.close();
        secured.close();
    }

    private static NettyTransport transport(TransportOptions options) {
        NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), options);
        t.register(GROUP, SELF, FrameDecoderFuzzTest::handedOn);
        t.setPeers(GROUP, Map.of(PEER, PEER_ADDRESS, SELF, t.localAddress(), "n2", new InetSocketAddress("127.0.0.1", 2)));
        t.onChunks(GROUP, FrameDecoderFuzzTest::handedOn);
        t.serveRequests(GROUP, FrameDecoderFuzzTest::serve);
        return t;
    }

    @FuzzTest
    void connectionsSurviveAnyBytes(FuzzedDataProvider data) {
        TALLY.run(() -> feed(data));
    }

    private static void feed(FuzzedDataProvider data) {
        int mode = data.consumeInt(0, 7);
        boolean secure = (mode & 1) != 0;
        boolean outbound = (mode & 2) != 0;
        boolean handshake = (mode & 4) != 0;
        int[] pieces = new int[data.consumeInt(0, 6)];
        for (int i = 0; i < pieces.length; i++) {
            pieces[i] = data.consumeInt(0, 256);
        }
        boolean asClient = data.consumeBoolean();
        byte[] wire = data.consumeRemainingAsBytes();
        NettyTransport t = secure ? secured : plain;
        long errorsBefore = t.internalErrors();
        HANDED_ON.set(null);
        EmbeddedChannel ch = new EmbeddedChannel();
        try {
            if (outbound) {
                t.attachOutbound(ch, PEER_ADDRESS, GROUP, SELF, PEER);
                if (secure && handshake) {
                    answerHello(ch);
                }
            } else {
                t.addInboundHandlers(ch.pipeline());
                if (secure && handshake) {
                    authenticate(ch, asClient);
                }
            }
            int at = 0;
            for (int piece : pieces) {
                int n = Math.min(piece, wire.length - at);
                deliver(ch, wire, at, n);
                at += n;
            }
            deliver(ch, wire, at, wire.length - at);
            ch.checkException();
        } finally {
            ch.finishAndReleaseAll();
        }
        Throwable failure = HANDED_ON.get();
        if (failure != null) {
            throw new AssertionError("a value the transport handed on: " + failure, failure);
        }
        check(t.internalErrors() == errorsBefore, "the connection's handler failed unexpectedly (see the ERROR log)",
            null);
    }

    private static void deliver(EmbeddedChannel ch, byte[] wire, int at, int n) {
        if (ch.isOpen() && n > 0) {
            ch.writeInbound(Unpooled.wrappedBuffer(wire, at, n));
        }
    }

    /** The connecting side of a handshake, done right, on an accepted connection of the secured port. */
    private static void authenticate(EmbeddedChannel ch, boolean asClient) {
        Handshake.Hello hello = new Handshake.Hello(asClient ? Handshake.Role.CLIENT : Handshake.Role.PEER,
            Handshake.nonce(), asClient ? "client" : PEER, SELF);
        ch.writeInbound(Unpooled.wrappedBuffer(new Frame(Frame.Kind.HELLO, 0, GROUP, hello.encode()).encode()));
        Frame challengeFrame = readFrame(ch);
        check(challengeFrame.kind() == Frame.Kind.CHALLENGE, "the handshake is answered with a CHALLENGE", null);
        Handshake.Challenge c = Handshake.Challenge.decode(challengeFrame.body());
        byte[] proof = Handshake.proof(asClient ? TOKEN : SECRET, false, GROUP, hello, c.serverNonce());
        ch.writeInbound(Unpooled.wrappedBuffer(new Frame(Frame.Kind.AUTH, 0, GROUP, proof).encode()));
        check(ch.isOpen(), "a right proof keeps the connection open", null);
    }

    /** The listening side's right answer to the HELLO an outbound connection sent. */
    private static void answerHello(EmbeddedChannel ch) {
        Frame helloFrame = readFrame(ch);
        Handshake.Hello hello = Handshake.Hello.decode(helloFrame.body());
        byte[] nonce = Handshake.nonce();
        byte[] proof = Handshake.proof(SECRET, true, GROUP, hello, nonce);
        ch.writeInbound(Unpooled.wrappedBuffer(new Frame(Frame.Kind.CHALLENGE, 0, GROUP,
            new Handshake.Challenge(nonce, proof).encode()).encode()));
        check(ch.isOpen(), "a right CHALLENGE keeps the connection open", null);
        while (ch.outboundMessages().poll() != null) {
            // The AUTH the connection answered with: not needed here.
        }
    }

    private static Frame readFrame(EmbeddedChannel ch) {
        // Outside a read, the flush of a write waits for the event loop (flush consolidation): run it.
        ch.runPendingTasks();
        ByteBuf out = ch.readOutbound();
        check(out != null, "the handshake writes a frame", null);
        try {
            byte[] bytes = ByteBufUtil.getBytes(out);
            return Frame.decode(ByteBuffer.wrap(bytes, 4, bytes.length - 4));
        } finally {
            out.release();
        }
    }

    private static void handedOn(Message m) {
        try {
            byte[] once = MessageCodec.encode(m);
            check(Arrays.equals(once, MessageCodec.encode(MessageCodec.decode(ByteBuffer.wrap(once)))),
                "a Raft message survives encode and decode", null);
        } catch (RuntimeException | Error e) {
            HANDED_ON.compareAndSet(null, e);
        }
    }

    private static void handedOn(SnapshotChunk c) {
        try {
            byte[] once = c.encode();
            check(Arrays.equals(once, SnapshotChunk.decode(ByteBuffer.wrap(once)).encode()),
                "a snapshot chunk survives encode and decode", null);
        } catch (RuntimeException | Error e) {
            HANDED_ON.compareAndSet(null, e);
        }
    }

    /** As a node serves requests: decode (a malformed one is refused by the transport), answer at once. */
    private static CompletableFuture<byte[]> serve(byte[] body) {
        ClientProtocol.Request r = ClientProtocol.decodeRequest(body);
        try {
            byte[] once = ClientProtocol.encode(r);
            check(Arrays.equals(once, ClientProtocol.encode(ClientProtocol.decodeRequest(once))),
                "a client request survives encode and decode", null);
        } catch (RuntimeException | Error e) {
            HANDED_ON.compareAndSet(null, e);
        }
        return CompletableFuture.completedFuture(ClientProtocol.encode(
            ClientProtocol.Response.of(ClientProtocol.Status.OK, null)));
    }
}
