package dev.dledger.raft.transport;

import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.nio.ByteBuffer;

/**
 * A piece of a snapshot moving from a leader's driver to a follower's, or the follower's acknowledgement. The core
 * only decides that a snapshot is needed ({@link InstallSnapshotRequest} without data); the drivers stream the bytes
 * in chunks, the follower checks the CRC32C of the whole snapshot, then steps the request with the bytes into its
 * core.
 *
 * @param from     sender id
 * @param to       receiver id
 * @param request  the core's request this transfer serves (its data is never set here)
 * @param total    length of the whole snapshot in bytes
 * @param crc      CRC32C of the whole snapshot; identifies the bytes, so a transfer resumes only onto the same ones
 * @param offset   for a chunk: where {@code data} starts; for an ack: the next offset the follower needs
 * @param data     the chunk's bytes; empty in an ack
 * @param ack      whether this is the follower's acknowledgement
 */
public record SnapshotChunk(String from, String to, InstallSnapshotRequest request, long total, int crc, long offset,
                           byte[] data, boolean ack) {

    byte[] encode() {
        SnapshotMeta meta = request.snapshot();
        WireWriter w = new WireWriter(96 + data.length);
        w.writeString(from).writeString(to).writeBoolean(ack)
            .writeString(request.from()).writeString(request.to()).writeLong(request.term())
            .writeLong(meta.index()).writeLong(meta.term()).writeBytes(meta.membership().encode())
            .writeLong(request.seq()).writeLong(total).writeInt(crc).writeLong(offset).writeBytes(data);
        return w.toByteArray();
    }

    static SnapshotChunk decode(ByteBuffer body) {
        WireReader r = new WireReader(body);
        String from = r.readString("from", MessageCodec.MAX_ID_BYTES);
        String to = r.readString("to", MessageCodec.MAX_ID_BYTES);
        boolean ack = r.readBoolean("ack");
        String reqFrom = r.readString("request from", MessageCodec.MAX_ID_BYTES);
        String reqTo = r.readString("request to", MessageCodec.MAX_ID_BYTES);
        long term = r.readLong("term", 0);
        long index = r.readLong("snapshot index", -1);
        long snapTerm = r.readLong("snapshot term", 0);
        Membership membership;
        try {
            membership = Membership.decode(r.readBytes("membership"));
        } catch (IllegalArgumentException e) {
            throw new CodecException("bad snapshot membership: " + e.getMessage());
        }
        long seq = r.readLong("seq");
        long total = r.readLong("total", 0);
        int crc = r.readInt("crc");
        long offset = r.readLong("offset", 0);
        byte[] data = r.readBytes("chunk");
        if (from == null || to == null || reqFrom == null || reqTo == null) {
            throw new CodecException("snapshot chunk without ids");
        }
        if (offset + data.length > total) {
            throw new CodecException("chunk [" + offset + "," + (offset + data.length) + ") past the snapshot's "
                + total + " bytes");
        }
        if (r.remaining() != 0) {
            throw new CodecException(r.remaining() + " trailing bytes after a snapshot chunk");
        }
        InstallSnapshotRequest req = new InstallSnapshotRequest(reqFrom, reqTo, term,
            new SnapshotMeta(index, snapTerm, membership), seq, null);
        return new SnapshotChunk(from, to, req, total, crc, offset, data, ack);
    }
}
