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
 *   0  int  magic      1 for every entry we write; -1 marks the BLANK record that pads the end of a data file
 *   4  int  size       bytes of the whole record, header included (48 + stored body length)
 *   8  long index
 *   16 long term
 *   24 long pos        the record's position in the data files (RocketMQ's physical offset is pos + 48)
 *   32 int  channel    low byte: the entry type (0 NORMAL, 2 NOOP, 3 CONFIG); stock DLedger always writes 0.
 *                      Bit 8 ({@link #CHANNEL_REQUEST_ID}) set: the body starts with the entry's 16-byte client
 *                      request id (clientId, seq), then the payload; other bits are left to other uses
 *   36 int  chainCrc   see {@link #chainCrc}; stock DLedger writes 0
 *   40 int  bodyCrc    CRC32C of the stored body; stock DLedger writes 0
 *   44 int  bodyLength
 *   48 body
 * </pre>
 *
 * <p>Entry types and stock DLedger. Stock 0.3.3.4's recovery accepts only magic 1, in the data and in the index
 * unit, and only a non-empty body: at the first record that breaks this it stops and cuts the log there. So that a
 * store of ours opens with stock DLedger whole, every entry is written with magic 1 (in the record and its index
 * unit), its type goes in the low byte of {@code channel}, and a NOOP or CONFIG entry with an empty payload is
 * stored with a body of one zero byte, which the reader drops. Stock DLedger reads such entries as ordinary ones
 * (a NOOP as a one-byte entry). The reader also takes the older forms: magic 2 (NOOP) and 3 (CONFIG) with channel
 * 0, as stock DLedger 0.4 and earlier versions of this store wrote them, including stock's NOOP whose index unit
 * says magic 1 (its bug S6, tolerated before {@code crc-from} only).
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
    /** The magic of every entry record this store writes (stock DLedger's only one). */
    public static final int ENTRY_MAGIC = 1;
    /** The bits of {@code channel} that hold the entry type; the other bits are left to other uses. */
    public static final int TYPE_MASK = 0xFF;
    private static final byte[] FILLER = {0};
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
     * (4 bytes), then its {@code channel} (4 bytes) when that is not 0. Any change to an entry, its type included,
     * or a missing or reordered entry, breaks the chain from there on. {@code header} holds at least the first 36
     * header bytes from its position.
     */
    public static int chainCrc(int previousChainCrc, ByteBuffer header, int bodyCrc) {
        CRC32C crc = new CRC32C();
        updateInt(crc, previousChainCrc);
        ByteBuffer first32 = header.duplicate();
        first32.limit(first32.position() + 32);
        crc.update(first32);
        updateInt(crc, bodyCrc);
        int channel = header.getInt(header.position() + 32);
        if (channel != 0) {
            updateInt(crc, channel);
        }
        return (int) crc.getValue();
    }

    private static void updateInt(CRC32C crc, int v) {
        crc.update(v >>> 24);
        crc.update(v >>> 16);
        crc.update(v >>> 8);
        crc.update(v);
    }

    /** The low byte of {@code channel} for an entry type. */
    public static int typeCode(EntryType type) {
        return type == EntryType.NORMAL ? 0 : type.magic();
    }

    /** The payload of a stored body: the body, except that a NOOP or CONFIG filler byte is dropped. */
    private static byte[] payload(EntryType type, byte[] body) {
        return type != EntryType.NORMAL && body.length == 1 && body[0] == 0 ? new byte[0] : body;
    }

    /**
     * Bytes of the body of {@code e} on disk: its request id (when it has one) then its payload; an empty NOOP or
     * CONFIG payload without an id is stored as one zero byte.
     */
    private static int bodyLength(Entry e) {
        if (e.requestId() != null) {
            return RequestId.BYTES + e.data().length;
        }
        return e.data().length == 0 && e.type() != EntryType.NORMAL ? FILLER.length : e.data().length;
    }

    /** Bytes of the record of {@code e}, header included. */
    public static int recordSize(Entry e) {
        return HEADER_SIZE + bodyLength(e);
    }

    /**
     * Writes one record for {@code e} at {@code pos} into {@code out}; returns its chain CRC. The body goes straight
     * into {@code out}; its CRC and the chain CRC are filled in after it.
     */
    public static int encode(Entry e, long pos, int previousChainCrc, ByteBuffer out) {
        int start = out.position();
        RequestId id = e.requestId();
        int bodyLength = bodyLength(e);
        int channel = typeCode(e.type()) | (id == null ? 0 : CHANNEL_REQUEST_ID);
        out.putInt(ENTRY_MAGIC).putInt(HEADER_SIZE + bodyLength).putLong(e.index()).putLong(e.term())
            .putLong(pos).putInt(channel).putInt(0).putInt(0).putInt(bodyLength);
        int bodyStart = out.position();
        if (id != null) {
            out.putLong(id.clientId()).putLong(id.seq());
        }
        out.put(bodyLength == FILLER.length && e.data().length == 0 ? FILLER : e.data());
        ByteBuffer body = out.duplicate();
        body.position(bodyStart).limit(out.position());
        CRC32C crc = new CRC32C();
        crc.update(body);
        int bodyCrc = (int) crc.getValue();
        ByteBuffer header = out.duplicate();
        header.position(start);
        int chain = chainCrc(previousChainCrc, header, bodyCrc);
        out.putInt(start + 36, chain).putInt(start + 40, bodyCrc);
        return chain;
    }

    /**
     * The entry a record holds, given its header and whole stored body: the request id is taken off the body when
     * the header's channel says it starts with one, and a NOOP or CONFIG filler byte is dropped.
     *
     * @throws IllegalArgumentException if the header announces a request id the body is too short to hold
     */
    public static Entry entry(Header h, byte[] body) {
        if ((h.channel() & CHANNEL_REQUEST_ID) == 0) {
            return new Entry(h.index(), h.term(), h.type(), payload(h.type(), body));
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

        /**
         * The entry type: from the low byte of {@code channel} under magic 1, from the magic itself under the older
         * magics 2 and 3; null when neither names a type.
         */
        public EntryType type() {
            if (magic == ENTRY_MAGIC) {
                int code = channel & TYPE_MASK;
                return code == 0 ? EntryType.NORMAL : code == 2 || code == 3 ? EntryType.ofMagic(code) : null;
            }
            return magic == 2 || magic == 3 ? EntryType.ofMagic(magic) : null;
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
        if (offset < 0) {
            return String.format("%020d", offset);
        }
        String digits = Long.toString(offset);
        return "0".repeat(20 - digits.length()) + digits;
    }

    /**
     * {@code e} as {@link #entry(Header, byte[])} would read it back after {@link #encode}: the same entry, except that
     * an empty NOOP or CONFIG payload stored as its filler byte reads back empty.
     */
    static Entry asRead(Entry e) {
        if (e.requestId() == null && e.type() != EntryType.NORMAL && e.data().length == 1 && e.data()[0] == 0) {
            return new Entry(e.index(), e.term(), e.type(), new byte[0]);
        }
        return e;
    }
}
