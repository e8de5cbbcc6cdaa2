package dev.dledger.raft.store;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.RequestId;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * DLedger 0.3.x's on-disk layout, big-endian. A data record is a 48-byte header then the body:
 *
 * <pre>
 *   0  int  magic      1 NORMAL, 2 NOOP, 3 CONFIG; -1 marks the BLANK record that pads the end of a data file
 *   4  int  size       bytes of the whole record, header included (48 + body length)
 *   8  long index
 *   16 long term
 *   24 long pos        the record's position in the data files (RocketMQ's physical offset is pos + 48)
 *   32 int  channel    stock DLedger writes 0; bit 8 ({@link #CHANNEL_REQUEST_ID}) set: the body starts with the
 *                      entry's 16-byte client request id (clientId, seq), then the payload
 *   36 int  chainCrc   see {@link #chainCrc}; stock DLedger writes 0
 *   40 int  bodyCrc    CRC32C of the body; stock DLedger writes 0
 *   44 int  bodyLength
 *   48 body
 * </pre>
 *
 * An entry without a request id is written exactly as stock DLedger writes it. The request id is part of the body (its
 * length, CRC and size include it), so a stock reader sees it as 16 more payload bytes.
 *
 * <p>A BLANK record is the magic -1, then the int count of bytes to the end of the file, then zeros; an entry is
 * placed in a file only if it leaves at least 8 bytes after it, so a BLANK always fits. An index unit is 32 bytes,
 * at {@code index * 32} across the index files: magic (int), pos (long), size (int), index (long), term (long).
 */
public final class EntryFormat {

    /** Bytes before the body. */
    public static final int HEADER_SIZE = 48;
    /** Bytes of one index unit. */
    public static final int INDEX_UNIT_SIZE = 32;
    /** The magic of the padding record. */
    public static final int BLANK_MAGIC = -1;
    /** The smallest padding record, and the room an entry must leave at the end of a file. */
    public static final int MIN_BLANK = 8;
    /** Bit of the header's {@code channel}: the body starts with a {@link RequestId} (16 bytes). */
    public static final int CHANNEL_REQUEST_ID = 1 << 8;

    private EntryFormat() {
    }

    /** CRC32C of {@code body}. */
    public static int bodyCrc(byte[] body) {
        CRC32C crc = new CRC32C();
        crc.update(body, 0, body.length);
        return (int) crc.getValue();
    }

    /**
     * The chain CRC of an entry: CRC32C over the previous entry's chain CRC (4 bytes; 0 for the first entry of our
     * range), then this entry's magic, size, index, term and pos (the first 32 header bytes), then its body CRC
     * (4 bytes). Any change to an entry, or a missing or reordered entry, breaks the chain from there on.
     */
    public static int chainCrc(int previousChainCrc, ByteBuffer header32, int bodyCrc) {
        CRC32C crc = new CRC32C();
        updateInt(crc, previousChainCrc);
        ByteBuffer h = header32.duplicate();
        h.limit(h.position() + 32);
        crc.update(h);
        updateInt(crc, bodyCrc);
        return (int) crc.getValue();
    }

    private static void updateInt(CRC32C crc, int v) {
        crc.update(v >>> 24);
        crc.update(v >>> 16);
        crc.update(v >>> 8);
        crc.update(v);
    }

    /** Bytes of the body of {@code e} on disk: the payload, after the request id when there is one. */
    public static int bodyLength(Entry e) {
        return e.data().length + (e.requestId() == null ? 0 : RequestId.BYTES);
    }

    /** Bytes of the whole record of {@code e}, header included. */
    public static int recordSize(Entry e) {
        return HEADER_SIZE + bodyLength(e);
    }

    /** Writes one record for {@code e} at {@code pos} into {@code out}; returns its chain CRC. */
    public static int encode(Entry e, long pos, int previousChainCrc, ByteBuffer out) {
        int start = out.position();
        RequestId id = e.requestId();
        int bodyCrc;
        if (id == null) {
            bodyCrc = bodyCrc(e.data());
        } else {
            CRC32C crc = new CRC32C();
            crc.update(ByteBuffer.allocate(RequestId.BYTES).putLong(id.clientId()).putLong(id.seq()).flip());
            crc.update(e.data(), 0, e.data().length);
            bodyCrc = (int) crc.getValue();
        }
        out.putInt(e.type().magic()).putInt(recordSize(e)).putLong(e.index()).putLong(e.term())
            .putLong(pos).putInt(id == null ? 0 : CHANNEL_REQUEST_ID);
        ByteBuffer header = out.duplicate();
        header.position(start);
        int chain = chainCrc(previousChainCrc, header, bodyCrc);
        out.putInt(chain).putInt(bodyCrc).putInt(bodyLength(e));
        if (id != null) {
            out.putLong(id.clientId()).putLong(id.seq());
        }
        out.put(e.data());
        return chain;
    }

    /**
     * The entry a record holds, given its header and whole body: the request id is taken off the body when the
     * header's channel says it starts with one.
     *
     * @throws IllegalArgumentException if the header announces a request id the body is too short to hold
     */
    public static Entry entry(Header h, byte[] body) {
        if ((h.channel() & CHANNEL_REQUEST_ID) == 0) {
            return new Entry(h.index(), h.term(), h.type(), body);
        }
        if (body.length < RequestId.BYTES) {
            throw new IllegalArgumentException("entry " + h.index() + " announces a request id but its body has "
                + body.length + " bytes");
        }
        ByteBuffer b = ByteBuffer.wrap(body);
        RequestId id = new RequestId(b.getLong(), b.getLong());
        return new Entry(h.index(), h.term(), h.type(), Arrays.copyOfRange(body, RequestId.BYTES, body.length), id);
    }

    /** Writes the index unit of an entry. */
    public static void encodeIndex(int magic, long pos, int size, long index, long term, ByteBuffer out) {
        out.putInt(magic).putLong(pos).putInt(size).putLong(index).putLong(term);
    }

    /** A decoded record header. */
    public record Header(int magic, int size, long index, long term, long pos, int channel, int chainCrc, int bodyCrc,
                         int bodyLength) {

        /** Reads a header at the buffer's position (advancing it 48 bytes). */
        public static Header read(ByteBuffer b) {
            return new Header(b.getInt(), b.getInt(), b.getLong(), b.getLong(), b.getLong(), b.getInt(), b.getInt(),
                b.getInt(), b.getInt());
        }

        /** The entry type, or null when the magic is not an entry's. */
        public EntryType type() {
            return magic >= 1 && magic <= 3 ? EntryType.ofMagic(magic) : null;
        }
    }

    /** A decoded index unit. */
    public record IndexUnit(int magic, long pos, int size, long index, long term) {

        /** Reads a unit at the buffer's position (advancing it 32 bytes). */
        public static IndexUnit read(ByteBuffer b) {
            return new IndexUnit(b.getInt(), b.getLong(), b.getInt(), b.getLong(), b.getLong());
        }
    }

    /** The 20-digit name of a file that starts at {@code offset}, as DLedger names them. */
    public static String fileName(long offset) {
        return String.format("%020d", offset);
    }
}
