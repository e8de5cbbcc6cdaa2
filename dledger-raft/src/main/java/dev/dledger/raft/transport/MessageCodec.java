package dev.dledger.raft.transport;

import dev.dledger.raft.core.AppendEntriesRequest;
import dev.dledger.raft.core.AppendEntriesResponse;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.InstallSnapshotResponse;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.core.TimeoutNow;
import dev.dledger.raft.core.VoteRequest;
import dev.dledger.raft.core.VoteResponse;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The binary encoding of the Raft messages between peers: big-endian, no reflection, no JSON. A body is one type
 * byte, then the fields in the order of the record's components. Strings are a 2-byte length then UTF-8; byte arrays
 * a 4-byte length (-1 for null) then the bytes; lists a 4-byte count then the items; an entry is index, term, type
 * magic (1 byte, with bit 7 set when a request id follows), the request id's client id and seq when present, payload.
 *
 * <p>Decoding never trusts a length: every count is checked against the bytes left, so a malformed body fails with a
 * {@link CodecException} and allocates at most the body's size. Thread-safe (stateless).
 */
public final class MessageCodec {

    /** The longest node id on the wire, in UTF-8 bytes. */
    public static final int MAX_ID_BYTES = 255;

    static final byte VOTE_REQUEST = 1;
    static final byte VOTE_RESPONSE = 2;
    static final byte APPEND_REQUEST = 3;
    static final byte APPEND_RESPONSE = 4;
    static final byte SNAPSHOT_REQUEST = 5;
    static final byte SNAPSHOT_RESPONSE = 6;
    static final byte TIMEOUT_NOW = 7;
    /** {@link #APPEND_REQUEST} followed by the leader's data-durable index after {@code seq}. */
    static final byte APPEND_REQUEST_DATA_DURABLE = 8;
    /**
     * On the wire, a successful append answer from a follower ready to lead ({@link AppendEntriesResponse#leadReady})
     * has this in its conflict term, which a success leaves at -1 otherwise: the encoding stays one that every version
     * decodes (they check only that the field is at least -1), and a leader of a version before it, which reads no
     * conflict field of a success, takes it as an ordinary success.
     */
    static final long LEAD_READY_CONFLICT_TERM = 0;

    /** Entry on the wire without payload: index, term, magic, payload length. */
    private static final int MIN_ENTRY_BYTES = 8 + 8 + 1 + 4;
    /** Bit of an entry's type byte: a request id follows. */
    private static final int HAS_REQUEST_ID = 0x80;

    private MessageCodec() {
    }

    /** Encodes {@code m} into a new array. */
    public static byte[] encode(Message m) {
        WireWriter w = new WireWriter(estimate(m));
        write(w, m);
        return w.toByteArray();
    }

    /**
     * Encodes {@code m} as the body of a whole {@link Frame.Kind#RAFT} frame of {@code group}, length field included:
     * the same bytes as {@code new Frame(RAFT, 0, group, encode(m)).encode()}, written once.
     */
    static byte[] encodeFrame(String group, Message m) {
        WireWriter w = new WireWriter(Frame.HEADER_BYTES - 2 + WireWriter.stringBytes(group) + estimate(m));
        w.writeInt(0).writeByte(Frame.VERSION).writeByte(Frame.Kind.RAFT.code()).writeLong(0).writeString(group);
        write(w, m);
        byte[] out = w.toByteArray();
        ByteBuffer.wrap(out).putInt(0, out.length - 4);
        return out;
    }

    private static void write(WireWriter w, Message m) {
        if (m instanceof VoteRequest v) {
            head(w, VOTE_REQUEST, m);
            w.writeLong(v.lastLogIndex()).writeLong(v.lastLogTerm()).writeBoolean(v.preVote())
                .writeBoolean(v.leadershipTransfer());
        } else if (m instanceof VoteResponse v) {
            head(w, VOTE_RESPONSE, m);
            w.writeBoolean(v.granted()).writeBoolean(v.preVote());
        } else if (m instanceof AppendEntriesRequest a) {
            // A request that tells a data-durable index (only in groups with a witness, issue 19) has its own type, so
            // that every other request keeps the earlier body byte for byte.
            boolean dd = a.dataDurableIndex() >= 0;
            head(w, dd ? APPEND_REQUEST_DATA_DURABLE : APPEND_REQUEST, m);
            w.writeLong(a.prevLogIndex()).writeLong(a.prevLogTerm()).writeLong(a.leaderCommit()).writeLong(a.seq());
            if (dd) {
                w.writeLong(a.dataDurableIndex());
            }
            w.writeInt(a.entries().size());
            for (Entry e : a.entries()) {
                RequestId id = e.requestId();
                w.writeLong(e.index()).writeLong(e.term()).writeByte(e.type().magic() | (id == null ? 0 : HAS_REQUEST_ID));
                if (id != null) {
                    w.writeLong(id.clientId()).writeLong(id.seq());
                }
                w.writeBytes(e.data());
            }
        } else if (m instanceof AppendEntriesResponse a) {
            head(w, APPEND_RESPONSE, m);
            long conflictTerm = a.success() && a.leadReady() ? LEAD_READY_CONFLICT_TERM : a.conflictTerm();
            w.writeBoolean(a.success()).writeLong(a.matchIndex()).writeLong(a.rejectedIndex())
                .writeLong(a.conflictIndex()).writeLong(conflictTerm).writeLong(a.seq());
        } else if (m instanceof InstallSnapshotRequest s) {
            head(w, SNAPSHOT_REQUEST, m);
            w.writeLong(s.snapshot().index()).writeLong(s.snapshot().term())
                .writeBytes(s.snapshot().membership().encode()).writeLong(s.seq()).writeNullableBytes(s.data());
        } else if (m instanceof InstallSnapshotResponse s) {
            head(w, SNAPSHOT_RESPONSE, m);
            w.writeLong(s.matchIndex()).writeLong(s.seq());
        } else if (m instanceof TimeoutNow) {
            head(w, TIMEOUT_NOW, m);
        } else {
            throw new IllegalArgumentException("no encoding for " + m.getClass().getName());
        }
    }

    private static AppendEntriesResponse appendResponse(WireReader r, String from, String to, long term) {
        boolean success = r.readBoolean("success");
        long match = r.readLong("matchIndex", -1);
        long rejected = r.readLong("rejectedIndex", -1);
        long conflictIndex = r.readLong("conflictIndex", -1);
        long conflictTerm = r.readLong("conflictTerm", -1);
        boolean leadReady = success && conflictTerm == LEAD_READY_CONFLICT_TERM;
        return new AppendEntriesResponse(from, to, term, success, match, rejected, conflictIndex,
            leadReady ? -1 : conflictTerm, r.readLong("seq"), leadReady);
    }

    /** The exact size of an AppendEntries body (so that no copy is made of it), an upper estimate of others. */
    private static int estimate(Message m) {
        int size = 96;
        if (m instanceof AppendEntriesRequest a) {
            size = 1 + WireWriter.stringBytes(m.from()) + WireWriter.stringBytes(m.to()) + 8 + 4 * 8 + 4;
            for (Entry e : a.entries()) {
                size += MIN_ENTRY_BYTES + (e.requestId() == null ? 0 : RequestId.BYTES) + e.data().length;
            }
            size += a.dataDurableIndex() >= 0 ? 8 : 0;
        } else if (m instanceof InstallSnapshotRequest s && s.data() != null) {
            size += s.data().length;
        }
        return size;
    }

    private static void head(WireWriter w, byte type, Message m) {
        w.writeByte(type).writeString(m.from()).writeString(m.to()).writeLong(m.term());
    }

    /**
     * Decodes one body; all of it must be consumed.
     *
     * @throws CodecException if the body is malformed, with what and where
     */
    public static Message decode(ByteBuffer body) {
        WireReader r = new WireReader(body);
        byte type = r.readByte("message type");
        String from = id(r, "from");
        String to = id(r, "to");
        long term = r.readLong("term", 0);
        Message m;
        switch (type) {
            case VOTE_REQUEST:
                m = new VoteRequest(from, to, term, r.readLong("lastLogIndex", -1), r.readLong("lastLogTerm", 0),
                    r.readBoolean("preVote"), r.readBoolean("leadershipTransfer"));
                break;
            case VOTE_RESPONSE:
                m = new VoteResponse(from, to, term, r.readBoolean("granted"), r.readBoolean("preVote"));
                break;
            case APPEND_REQUEST:
            case APPEND_REQUEST_DATA_DURABLE:
                m = appendRequest(r, from, to, term, type == APPEND_REQUEST_DATA_DURABLE);
                break;
            case APPEND_RESPONSE:
                m = appendResponse(r, from, to, term);
                break;
            case SNAPSHOT_REQUEST:
                m = snapshotRequest(r, from, to, term);
                break;
            case SNAPSHOT_RESPONSE:
                m = new InstallSnapshotResponse(from, to, term, r.readLong("matchIndex", -1), r.readLong("seq"));
                break;
            case TIMEOUT_NOW:
                m = new TimeoutNow(from, to, term);
                break;
            default:
                throw new CodecException("unknown message type " + type);
        }
        if (r.remaining() != 0) {
            throw new CodecException(r.remaining() + " trailing bytes after " + m.getClass().getSimpleName()
                + " at offset " + r.position());
        }
        return m;
    }

    private static String id(WireReader r, String field) {
        String s = r.readString(field, MAX_ID_BYTES);
        if (s == null || s.isEmpty()) {
            throw new CodecException("missing " + field + " id");
        }
        return s;
    }

    private static AppendEntriesRequest appendRequest(WireReader r, String from, String to, long term,
                                                      boolean withDataDurable) {
        long prev = r.readLong("prevLogIndex", -1);
        long prevTerm = r.readLong("prevLogTerm", 0);
        long commit = r.readLong("leaderCommit", -1);
        long seq = r.readLong("seq");
        long dataDurable = withDataDurable ? r.readLong("dataDurableIndex", 0) : -1;
        int n = r.readCount("entry count", MIN_ENTRY_BYTES);
        List<Entry> ents = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int at = r.position();
            long index = r.readLong("entry index", 0);
            long entryTerm = r.readLong("entry term", 0);
            int typeByte = r.readByte("entry type") & 0xFF;
            int magic = typeByte & ~HAS_REQUEST_ID;
            RequestId id = null;
            if ((typeByte & HAS_REQUEST_ID) != 0) {
                long clientId = r.readLong("entry client id");
                id = new RequestId(clientId, r.readLong("entry request seq", 0));
            }
            byte[] data = r.readBytes("entry payload");
            if (index != prev + 1 + i) {
                throw new CodecException("entry " + i + " at offset " + at + " has index " + index + ", expected "
                    + (prev + 1 + i));
            }
            EntryType et;
            try {
                et = EntryType.ofMagic(magic);
            } catch (IllegalArgumentException e) {
                throw new CodecException("entry " + i + " at offset " + at + ": " + e.getMessage());
            }
            try {
                ents.add(new Entry(index, entryTerm, et, data, id));
            } catch (IllegalArgumentException e) {
                throw new CodecException("entry " + i + " at offset " + at + ": " + e.getMessage());
            }
        }
        return new AppendEntriesRequest(from, to, term, prev, prevTerm, ents, commit, seq, dataDurable);
    }

    private static InstallSnapshotRequest snapshotRequest(WireReader r, String from, String to, long term) {
        long index = r.readLong("snapshot index", -1);
        long snapTerm = r.readLong("snapshot term", 0);
        Membership membership;
        try {
            membership = Membership.decode(r.readBytes("snapshot membership"));
        } catch (IllegalArgumentException e) {
            throw new CodecException("bad snapshot membership: " + e.getMessage());
        }
        long seq = r.readLong("seq");
        byte[] data = r.readNullableBytes("snapshot data");
        return new InstallSnapshotRequest(from, to, term, new SnapshotMeta(index, snapTerm, membership), seq, data);
    }
}
