package dev.dledger.raft.transport;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** A growable big-endian buffer for encoding frame bodies; the counterpart of {@link WireReader}. */
final class WireWriter {

    private ByteBuffer buf;

    WireWriter(int initialCapacity) {
        buf = ByteBuffer.allocate(Math.max(64, initialCapacity));
    }

    private void ensure(int bytes) {
        if (buf.remaining() < bytes) {
            int cap = Math.max(buf.capacity() * 2, buf.position() + bytes);
            ByteBuffer bigger = ByteBuffer.allocate(cap);
            buf.flip();
            bigger.put(buf);
            buf = bigger;
        }
    }

    WireWriter writeByte(int b) {
        ensure(1);
        buf.put((byte) b);
        return this;
    }

    WireWriter writeBoolean(boolean b) {
        return writeByte(b ? 1 : 0);
    }

    WireWriter writeInt(int v) {
        ensure(4);
        buf.putInt(v);
        return this;
    }

    WireWriter writeLong(long v) {
        ensure(8);
        buf.putLong(v);
        return this;
    }

    WireWriter writeBytes(byte[] b) {
        ensure(4 + b.length);
        buf.putInt(b.length);
        buf.put(b);
        return this;
    }

    WireWriter writeNullableBytes(byte[] b) {
        if (b == null) {
            return writeInt(-1);
        }
        return writeBytes(b);
    }

    WireWriter writeString(String s) {
        if (s == null) {
            ensure(2);
            buf.putShort((short) -1);
            return this;
        }
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        if (b.length > Short.MAX_VALUE) {
            throw new IllegalArgumentException("string too long for the wire: " + b.length + " bytes");
        }
        ensure(2 + b.length);
        buf.putShort((short) b.length);
        buf.put(b);
        return this;
    }

    int size() {
        return buf.position();
    }

    /** The bytes written; the buffer itself, without a copy, when they fill it exactly (the writer is then spent). */
    byte[] toByteArray() {
        if (buf.position() == buf.capacity()) {
            return buf.array();
        }
        return Arrays.copyOf(buf.array(), buf.position());
    }

    /** Bytes {@link #writeString} writes for {@code s}. */
    static int stringBytes(String s) {
        if (s == null) {
            return 2;
        }
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                n++;
            } else {
                // Rare (ids are ASCII in practice): let the encoder count.
                return 2 + s.getBytes(StandardCharsets.UTF_8).length;
            }
        }
        return 2 + n;
    }
}
