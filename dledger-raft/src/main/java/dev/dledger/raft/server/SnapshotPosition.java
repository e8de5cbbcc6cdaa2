package dev.dledger.raft.server;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The bytes of a snapshot that holds no state-machine state, only the data position at which the log goes on after
 * it: what a node sends in InstallSnapshot when its log was compacted by retention rather than by a state-machine
 * snapshot. A follower that installs it starts its log at the same position, so that every later entry sits at the
 * same position on every node (RocketMQ's physical offsets and message ids are built from it), as DLedger keeps them
 * equal when it resets a follower.
 */
final class SnapshotPosition {

    private static final byte[] MAGIC = "DLGRPOS1".getBytes(StandardCharsets.US_ASCII);
    private static final int SIZE = MAGIC.length + Long.BYTES;

    private SnapshotPosition() {
    }

    /** The snapshot bytes that say the log goes on at {@code pos}. */
    static byte[] encode(long pos) {
        return ByteBuffer.allocate(SIZE).put(MAGIC).putLong(pos).array();
    }

    /** Whether {@code data} is such a record rather than a state machine's snapshot. */
    static boolean isPosition(byte[] data) {
        return data != null && data.length == SIZE && Arrays.equals(data, 0, MAGIC.length, MAGIC, 0, MAGIC.length);
    }

    /** The position of a record for which {@link #isPosition} holds. */
    static long decode(byte[] data) {
        return ByteBuffer.wrap(data, MAGIC.length, Long.BYTES).getLong();
    }
}
