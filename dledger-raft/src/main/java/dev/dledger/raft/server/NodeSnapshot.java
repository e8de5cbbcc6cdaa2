package dev.dledger.raft.server;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The bytes of a node's snapshot as the driver stores and sends them: the request table of {@link RequestDedup}
 * taken at the snapshot's index, then the state machine's snapshot. Layout: the 8 bytes {@code DLGRNSN1}, the table's
 * length (4 bytes, big-endian), the table, then the state machine's bytes to the end.
 *
 * <p>Bytes without that magic are read as they were written before tables were kept in snapshots: all of them are
 * the state machine's, with no table. A {@link SnapshotPosition} record holds no table, and the state machine's
 * image when it carries one, else an empty state machine (issue 16, B6).
 *
 * @param table        the encoded request table, or null when the snapshot holds none
 * @param stateMachine the state machine's snapshot; empty when it holds no state
 */
record NodeSnapshot(byte[] table, byte[] stateMachine) {

    private static final byte[] MAGIC = "DLGRNSN1".getBytes(StandardCharsets.US_ASCII);

    /** The bytes of a snapshot with {@code table} (not null) and the state machine's {@code state}. */
    static byte[] encode(byte[] table, byte[] state) {
        return ByteBuffer.allocate(MAGIC.length + 4 + table.length + state.length).put(MAGIC).putInt(table.length)
            .put(table).put(state).array();
    }

    /**
     * Reads snapshot bytes (null reads as an empty snapshot without a table).
     *
     * @throws IllegalArgumentException when the bytes carry the magic but their table length does not fit
     */
    static NodeSnapshot decode(byte[] data) {
        if (data == null) {
            return new NodeSnapshot(null, new byte[0]);
        }
        if (SnapshotPosition.isPosition(data)) {
            // No request table; the state machine's image when the record carries one, else empty.
            return new NodeSnapshot(null, SnapshotPosition.image(data));
        }
        if (data.length < MAGIC.length + 4 || !Arrays.equals(data, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
            return new NodeSnapshot(null, data);
        }
        int tableLength = ByteBuffer.wrap(data, MAGIC.length, 4).getInt();
        int from = MAGIC.length + 4;
        if (tableLength < 0 || tableLength > data.length - from) {
            throw new IllegalArgumentException("node snapshot of " + data.length + " bytes gives a request table of "
                + tableLength + " bytes");
        }
        return new NodeSnapshot(Arrays.copyOfRange(data, from, from + tableLength),
            Arrays.copyOfRange(data, from + tableLength, data.length));
    }
}
