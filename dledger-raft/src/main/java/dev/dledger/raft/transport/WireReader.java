package dev.dledger.raft.transport;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Bounds-checked reads from a frame body. Every read that would pass the end, and every length that is negative or
 * larger than what remains, fails with a {@link CodecException} naming the field and the offset, so a hostile or
 * broken peer can neither crash the decoder nor make it allocate more than the frame it sent.
 */
final class WireReader {

    private final ByteBuffer buf;

    WireReader(ByteBuffer buf) {
        this.buf = buf;
    }

    private void need(int bytes, String field) {
        if (buf.remaining() < bytes) {
            throw new CodecException("truncated frame: " + field + " needs " + bytes + " bytes at offset "
                + buf.position() + ", " + buf.remaining() + " left");
        }
    }

    byte readByte(String field) {
        need(1, field);
        return buf.get();
    }

    boolean readBoolean(String field) {
        byte b = readByte(field);
        if (b != 0 && b != 1) {
            throw new CodecException("bad boolean " + b + " for " + field + " at offset " + (buf.position() - 1));
        }
        return b == 1;
    }

    int readInt(String field) {
        need(4, field);
        return buf.getInt();
    }

    long readLong(String field) {
        need(8, field);
        return buf.getLong();
    }

    /** A long that must be at least {@code min}. */
    long readLong(String field, long min) {
        long v = readLong(field);
        if (v < min) {
            throw new CodecException(field + " " + v + " below " + min + " at offset " + (buf.position() - 8));
        }
        return v;
    }

    /** A count prefix that must not exceed what the remaining bytes can hold at {@code minBytesEach} per item. */
    int readCount(String field, int minBytesEach) {
        int n = readInt(field);
        if (n < 0 || (long) n * minBytesEach > buf.remaining()) {
            throw new CodecException("bad " + field + " " + n + " at offset " + (buf.position() - 4) + " with "
                + buf.remaining() + " bytes left");
        }
        return n;
    }

    byte[] readBytes(String field) {
        int n = readCount(field + " length", 1);
        byte[] out = new byte[n];
        buf.get(out);
        return out;
    }

    /** A nullable byte array: length -1 stands for null. */
    byte[] readNullableBytes(String field) {
        need(4, field);
        if (buf.getInt(buf.position()) == -1) {
            buf.getInt();
            return null;
        }
        return readBytes(field);
    }

    /** A UTF-8 string of at most {@code maxBytes}; length -1 stands for null. */
    String readString(String field, int maxBytes) {
        need(2, field);
        int n = buf.getShort();
        if (n == -1) {
            return null;
        }
        if (n < 0 || n > maxBytes || n > buf.remaining()) {
            throw new CodecException("bad " + field + " length " + n + " at offset " + (buf.position() - 2));
        }
        ByteBuffer slice = buf.slice();
        slice.limit(n);
        buf.position(buf.position() + n);
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT).decode(slice).toString();
        } catch (CharacterCodingException e) {
            throw new CodecException("bad UTF-8 in " + field + " at offset " + (buf.position() - n));
        }
    }

    int remaining() {
        return buf.remaining();
    }

    int position() {
        return buf.position();
    }
}
