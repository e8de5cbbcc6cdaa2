package dev.dledger.raft.server;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The bytes of a snapshot whose log was compacted by retention rather than by a state-machine snapshot: the data
 * position at which the log goes on after it, and optionally the state machine's image of its state
 * ({@link dev.dledger.raft.statemachine.StateMachine#retainedImage()}). A follower that installs it starts its log at
 * the same position, so that every later entry sits at the same position on every node (RocketMQ's physical offsets
 * and message ids are built from it), as DLedger keeps them equal when it resets a follower; the image, when there is
 * one, is restored into its state machine.
 *
 * <p>Two layouts: {@code DLGRPOS1} and the position (16 bytes, written before images were carried; it holds no
 * state), and {@code DLGRPOS2}, the position, then the image to the end.
 */
final class SnapshotPosition {

    private static final byte[] MAGIC = "DLGRPOS1".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] MAGIC_WITH_IMAGE = "DLGRPOS2".getBytes(StandardCharsets.US_ASCII);
    private static final int SIZE = MAGIC.length + Long.BYTES;

    private SnapshotPosition() {
    }

    /** The snapshot bytes that say the log goes on at {@code pos} (no state). */
    static byte[] encode(long pos) {
        return ByteBuffer.allocate(SIZE).put(MAGIC).putLong(pos).array();
    }

    /** The snapshot bytes that say the log goes on at {@code pos}, with the state machine's {@code image}. */
    static byte[] encode(long pos, byte[] image) {
        if (image == null || image.length == 0) {
            return encode(pos);
        }
        return ByteBuffer.allocate(SIZE + image.length).put(MAGIC_WITH_IMAGE).putLong(pos).put(image).array();
    }

    /** Whether {@code data} is such a record (either layout) rather than a state machine's snapshot. */
    static boolean isPosition(byte[] data) {
        if (data == null || data.length < SIZE) {
            return false;
        }
        return data.length == SIZE && Arrays.equals(data, 0, MAGIC.length, MAGIC, 0, MAGIC.length)
            || Arrays.equals(data, 0, MAGIC.length, MAGIC_WITH_IMAGE, 0, MAGIC.length);
    }

    /** The position of a record for which {@link #isPosition} holds. */
    static long decode(byte[] data) {
        return ByteBuffer.wrap(data, MAGIC.length, Long.BYTES).getLong();
    }

    /** The image of a record for which {@link #isPosition} holds; empty for the first layout. */
    static byte[] image(byte[] data) {
        return Arrays.copyOfRange(data, SIZE, data.length);
    }
}
