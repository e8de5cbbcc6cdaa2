package dev.dledger.raft.transport;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
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
    private static final byte[] NO_BODY = new byte[0];

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

    /** Encodes the whole frame, length field included, into one array of its exact size. */
    public byte[] encode() {
        byte[] name = group.getBytes(StandardCharsets.UTF_8);
        if (name.length > Short.MAX_VALUE) {
            throw new IllegalArgumentException("string too long for the wire: " + name.length + " bytes");
        }
        byte[] out = new byte[HEADER_BYTES + name.length + body.length];
        ByteBuffer.wrap(out).putInt(out.length - 4).put(VERSION).put(kind.code()).putLong(requestId)
            .putShort((short) name.length).put(name).put(body);
        return out;
    }

    /**
     * Decodes a frame from the bytes after its length field.
     *
     * @throws CodecException if the version, kind or group is bad
     */
    public static Frame decode(ByteBuffer afterLength) {
        Frame head = decodeHeader(afterLength);
        byte[] body = new byte[afterLength.remaining()];
        afterLength.get(body);
        return new Frame(head.kind(), head.requestId(), head.group(), body);
    }

    /**
     * Decodes the header of a frame from the bytes after its length field and leaves {@code afterLength} at the
     * body, which the returned frame does not hold (its body is empty): a receiver that decodes the body itself
     * needs no copy of it.
     *
     * @throws CodecException if the version, kind or group is bad
     */
    public static Frame decodeHeader(ByteBuffer afterLength) {
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
        return new Frame(kind, requestId, group, NO_BODY);
    }
}
