package dev.dledger.raft.transport;

import static dev.dledger.raft.fuzz.FuzzTally.check;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.fuzz.FuzzTally;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;

/**
 * Fuzzes every decoder of the wire directly: the frame header, the Raft messages, the client requests and answers,
 * the handshake and the snapshot chunks. The first input byte picks the decoder, the rest is the body.
 *
 * <p>Contract: a decoder returns a value or throws {@link CodecException} with a one-line message; it allocates at most
 * a small multiple of the body (a length field that claims gigabytes must be refused, not allocated); and what it
 * returns encodes to bytes that decode to the same value again. Anything else is a finding.
 */
class WireMessagesFuzzTest {

    private static final FuzzTally TALLY = new FuzzTally("wire-messages");
    /** Bytes a decoder may allocate beyond a multiple of the body: buffers, records, strings. */
    private static final long ALLOCATION_SLACK_BYTES = 1 << 20;
    private static final int ALLOCATION_PER_BODY_BYTE = 64;

    @FuzzTest
    void decodersRefuseMalformedBodiesClearly(byte[] input) {
        TALLY.run(() -> decode(input));
    }

    @AfterAll
    static void report() {
        TALLY.report();
    }

    private static void decode(byte[] input) {
        if (input.length == 0) {
            return;
        }
        int which = Byte.toUnsignedInt(input[0]) % 7;
        byte[] body = Arrays.copyOfRange(input, 1, input.length);
        long limit = ALLOCATION_SLACK_BYTES + (long) ALLOCATION_PER_BODY_BYTE * body.length;
        FuzzTally.allocatesAtMost(limit, "decoder " + which + " on a body of " + body.length + " bytes", () -> {
            try {
                decodeWith(which, body);
            } catch (CodecException e) {
                FuzzTally.clearError(e);
            }
        });
    }

    private static void decodeWith(int which, byte[] body) {
        switch (which) {
            case 0:
                frame(body);
                break;
            case 1:
                message(body);
                break;
            case 2:
                request(body);
                break;
            case 3:
                response(body);
                break;
            case 4:
                hello(body);
                break;
            case 5:
                challenge(body);
                break;
            default:
                chunk(body);
                break;
        }
    }

    private static void frame(byte[] body) {
        Frame f = Frame.decode(ByteBuffer.wrap(body));
        byte[] once = f.encode();
        Frame again = Frame.decode(ByteBuffer.wrap(once, 4, once.length - 4));
        check(Arrays.equals(once, again.encode()), "a frame does not survive encode and decode", null);
    }

    private static void message(byte[] body) {
        Message m = MessageCodec.decode(ByteBuffer.wrap(body));
        byte[] once = MessageCodec.encode(m);
        byte[] twice = MessageCodec.encode(MessageCodec.decode(ByteBuffer.wrap(once)));
        check(Arrays.equals(once, twice), "a Raft message does not survive encode and decode: " + m, null);
    }

    private static void request(byte[] body) {
        byte[] once = ClientProtocol.encode(ClientProtocol.decodeRequest(body));
        byte[] twice = ClientProtocol.encode(ClientProtocol.decodeRequest(once));
        check(Arrays.equals(once, twice), "a client request does not survive encode and decode", null);
    }

    private static void response(byte[] body) {
        byte[] once = ClientProtocol.encode(ClientProtocol.decodeResponse(body));
        byte[] twice = ClientProtocol.encode(ClientProtocol.decodeResponse(once));
        check(Arrays.equals(once, twice), "a client answer does not survive encode and decode", null);
    }

    private static void hello(byte[] body) {
        byte[] once = Handshake.Hello.decode(body).encode();
        check(Arrays.equals(once, Handshake.Hello.decode(once).encode()), "a HELLO does not survive encode and decode",
            null);
    }

    private static void challenge(byte[] body) {
        byte[] once = Handshake.Challenge.decode(body).encode();
        check(Arrays.equals(once, Handshake.Challenge.decode(once).encode()),
            "a CHALLENGE does not survive encode and decode", null);
    }

    private static void chunk(byte[] body) {
        byte[] once = SnapshotChunk.decode(ByteBuffer.wrap(body)).encode();
        check(Arrays.equals(once, SnapshotChunk.decode(ByteBuffer.wrap(once)).encode()),
            "a snapshot chunk does not survive encode and decode", null);
    }
}
