package dev.dledger.raft.server;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The content of a node folder's {@code snapshot/data}: the snapshot's metadata (index, term, membership) and its
 * bytes in one file, written with one atomic rename, so that a snapshot's state is never paired with another
 * snapshot's index (issue 16, B3). Layout: the 8 bytes {@code DLGRSNF1}, index and term (8 bytes each, big-endian),
 * the membership's length (4 bytes) and encoding, then the snapshot's bytes to the end.
 *
 * <p>A file without that magic was written before the metadata went into it: all of it is the snapshot's bytes, and
 * its metadata is unknown ({@link #meta()} null).
 *
 * @param meta the snapshot's metadata, or null for a file of the older layout
 * @param data the snapshot's bytes
 */
record SnapshotFile(SnapshotMeta meta, byte[] data) {

    private static final byte[] MAGIC = "DLGRSNF1".getBytes(StandardCharsets.US_ASCII);

    /** The file's bytes for {@code meta} and {@code data}. */
    static byte[] encode(SnapshotMeta meta, byte[] data) {
        byte[] voters = meta.membership().encode();
        return ByteBuffer.allocate(MAGIC.length + 8 + 8 + 4 + voters.length + data.length).put(MAGIC)
            .putLong(meta.index()).putLong(meta.term()).putInt(voters.length).put(voters).put(data).array();
    }

    /**
     * Reads a file's bytes.
     *
     * @param where names the file in the error
     * @throws IllegalArgumentException when the file has the magic but not a whole header, naming {@code where}
     */
    static SnapshotFile decode(byte[] file, String where) {
        if (file.length < MAGIC.length || !Arrays.equals(file, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            return new SnapshotFile(null, file);
        }
        try {
            ByteBuffer b = ByteBuffer.wrap(file, MAGIC.length, file.length - MAGIC.length);
            long index = b.getLong();
            long term = b.getLong();
            int length = b.getInt();
            if (length < 0 || length > b.remaining()) {
                throw new IllegalArgumentException(where + ": membership of " + length + " bytes where "
                    + b.remaining() + " remain");
            }
            byte[] voters = new byte[length];
            b.get(voters);
            byte[] data = new byte[b.remaining()];
            b.get(data);
            return new SnapshotFile(new SnapshotMeta(index, term, Membership.decode(voters)), data);
        } catch (BufferUnderflowException e) {
            throw new IllegalArgumentException(where + ": the snapshot header of " + file.length + " bytes ends early");
        }
    }
}
