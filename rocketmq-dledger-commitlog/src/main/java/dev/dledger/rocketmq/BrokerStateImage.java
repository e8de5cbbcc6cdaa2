package dev.dledger.rocketmq;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The broker's state as one image, sent with the position when a follower is caught up by a snapshot
 * ({@link BrokerStateLog#image()}): every registered table ({@link BrokerStateLog.StateTable}: topics, subscription
 * groups, consumer offsets, delay offsets, and any kind registered later) in its own serialization, after the state
 * entries up to {@code index} (of {@code term}) were applied. The follower replaces its tables by it and does not
 * apply the state entries up to {@code index} again.
 *
 * <p>Bytes, big-endian: int {@link #MAGIC}, short version (1), long index, long term, int number of tables, then each
 * table as its name and its text (each an int byte length, then UTF-8).
 *
 * @param index  the last state entry whose effect the tables hold; -1 for none
 * @param term   that entry's term (0 for none)
 * @param tables table name to its serialization
 */
public record BrokerStateImage(long index, long term, Map<String, String> tables) {

    /** "RSI1". */
    public static final int MAGIC = 0x52534931;
    private static final short VERSION = 1;

    public BrokerStateImage {
        tables = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(Objects.requireNonNull(tables, "tables")));
    }

    /** The image's bytes. */
    public byte[] encode() {
        List<byte[]> strings = new ArrayList<>();
        int size = 4 + 2 + 8 + 8 + 4;
        for (Map.Entry<String, String> t : tables.entrySet()) {
            byte[] name = t.getKey().getBytes(StandardCharsets.UTF_8);
            byte[] text = t.getValue().getBytes(StandardCharsets.UTF_8);
            strings.add(name);
            strings.add(text);
            size += 8 + name.length + text.length;
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        b.putInt(MAGIC).putShort(VERSION).putLong(index).putLong(term).putInt(tables.size());
        for (byte[] s : strings) {
            b.putInt(s.length).put(s);
        }
        return b.array();
    }

    /**
     * Reads an image.
     *
     * @throws IllegalArgumentException in one line naming what is wrong
     */
    public static BrokerStateImage decode(byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        try {
            int magic = b.getInt();
            if (magic != MAGIC) {
                throw new IllegalArgumentException("broker state image of " + bytes.length + " bytes has magic "
                    + Integer.toHexString(magic) + ", not " + Integer.toHexString(MAGIC));
            }
            short version = b.getShort();
            if (version != VERSION) {
                throw new IllegalArgumentException("broker state image of version " + version + ", this broker reads "
                    + VERSION);
            }
            long index = b.getLong();
            long term = b.getLong();
            int count = b.getInt();
            if (count < 0 || count > bytes.length) {
                throw new IllegalArgumentException("broker state image announces " + count + " tables in "
                    + bytes.length + " bytes");
            }
            Map<String, String> tables = new LinkedHashMap<>();
            for (int i = 0; i < count; i++) {
                tables.put(string(b), string(b));
            }
            if (b.hasRemaining()) {
                throw new IllegalArgumentException("broker state image has " + b.remaining() + " bytes after its "
                    + count + " tables");
            }
            return new BrokerStateImage(index, term, tables);
        } catch (BufferUnderflowException e) {
            throw new IllegalArgumentException("broker state image of " + bytes.length + " bytes ends early");
        }
    }

    private static String string(ByteBuffer b) {
        int length = b.getInt();
        if (length < 0 || length > b.remaining()) {
            throw new IllegalArgumentException("broker state image has a string of " + length + " bytes where "
                + b.remaining() + " remain");
        }
        byte[] s = new byte[length];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }
}
