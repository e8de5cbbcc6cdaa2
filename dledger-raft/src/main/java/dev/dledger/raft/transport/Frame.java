package dev.dledger.raft.transport;

import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * One unit on the wire. Layout, big-endian:
 *
 * <pre>
 *   int    length      bytes after this field
 *   byte   version     {@link #VERSION}
 *   byte   kind        {@link Kind}
 *   long   requestId   pairs a response with its request; 0 for one-way Raft messages
 *   short  groupLength then the group name, UTF-8, at most {@link #MAX_GROUP_BYTES}
 *   bytes  body        the rest: a {@link MessageCodec} body for RAFT, the caller's bytes otherwise
 * </pre>
 *
 * @param kind      what the body holds
 * @param requestId the request id, or 0
 * @param group     the Raft group the frame is for
 * @param body      the body bytes
 */
public record Frame(Kind kind, long requestId, String group, byte[] body) {

    /** The only frame version this build speaks. */
    public static final byte VERSION = 1;
    /** The longest group name, in UTF-8 bytes. */
    public static final int MAX_GROUP_BYTES = 255;
    /** Bytes of a frame around the body (length field included) for a group name of {@code n} bytes. */
    static final int HEADER_BYTES = 4 + 1 + 1 + 8 + 2;

    /** What a frame carries. */
    public enum Kind {
        /** A Raft message between peers (one-way). */
        RAFT(1),
        /** A client or admin request. */
        REQUEST(2),
        /** The answer to a REQUEST with the same id. */
        RESPONSE(3),
        /** A refusal of the frame with the same id: the body is a UTF-8 reason. */
        ERROR(4),
        /** A snapshot chunk or its acknowledgement between drivers ({@link SnapshotChunk}). */
        SNAPSHOT(5),
        /** Opens the {@link Handshake} of a secured connection: a {@link Handshake.Hello}. */
        HELLO(6),
        /** The listening side's answer to HELLO: a {@link Handshake.Challenge}. */
        CHALLENGE(7),
        /** The connecting side's proof: the body is the HMAC bytes. */
        AUTH(8);

        private final byte code;

        Kind(int code) {
            this.code = (byte) code;
        }

        byte code() {
            return code;
        }

        static Kind of(byte code) {
            for (Kind k : values()) {
                if (k.code == code) {
                    return k;
                }
            }
            throw new CodecException("unknown frame kind " + code);
        }
    }

    public Frame {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(group, "group");
        Objects.requireNonNull(body, "body");
    }

    /** Encodes the whole frame, length field included. */
    public byte[] encode() {
        WireWriter w = new WireWriter(HEADER_BYTES + group.length() + body.length);
        w.writeInt(0).writeByte(VERSION).writeByte(kind.code()).writeLong(requestId).writeString(group);
        byte[] head = w.toByteArray();
        byte[] out = new byte[head.length + body.length];
        System.arraycopy(head, 0, out, 0, head.length);
        System.arraycopy(body, 0, out, head.length, body.length);
        ByteBuffer.wrap(out).putInt(0, out.length - 4);
        return out;
    }

    /**
     * Decodes a frame from the bytes after its length field.
     *
     * @throws CodecException if the version, kind or group is bad
     */
    public static Frame decode(ByteBuffer afterLength) {
        WireReader r = new WireReader(afterLength);
        byte version = r.readByte("version");
        if (version != VERSION) {
            throw new CodecException("unsupported frame version " + version + " (this node speaks " + VERSION + ")");
        }
        Kind kind = Kind.of(r.readByte("kind"));
        long requestId = r.readLong("requestId");
        String group = r.readString("group", MAX_GROUP_BYTES);
        if (group == null || group.isEmpty()) {
            throw new CodecException("frame without a group");
        }
        byte[] body = new byte[afterLength.remaining()];
        afterLength.get(body);
        return new Frame(kind, requestId, group, body);
    }
}
