package dev.dledger.raft.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.AppendEntriesRequest;
import dev.dledger.raft.core.AppendEntriesResponse;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.InstallSnapshotResponse;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.core.TimeoutNow;
import dev.dledger.raft.core.VoteRequest;
import dev.dledger.raft.core.VoteResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class MessageCodecTest {

    private static final List<Message> SAMPLES = List.of(
        new VoteRequest("n0", "n1", 7, 41, 6, true, false),
        new VoteResponse("n1", "n0", 8, true, true),
        new AppendEntriesRequest("n0", "n2", 9, 10, 8, List.of(
            new Entry(11, 9, EntryType.NOOP, null),
            new Entry(12, 9, EntryType.NORMAL, "hello".getBytes(StandardCharsets.UTF_8)),
            new Entry(13, 9, EntryType.CONFIG, Membership.of("n0", "n1").encode()),
            new Entry(14, 9, EntryType.NORMAL, "retried".getBytes(StandardCharsets.UTF_8), new RequestId(-7, 3))), 10, 77),
        new AppendEntriesResponse("n2", "n0", 9, false, -1, 10, 5, 3, 77),
        new AppendEntriesResponse("n1", "n0", 9, true, 14, -1, -1, -1, 78, true),
        new AppendEntriesRequest("n0", "w", 9, 10, 8, List.of(new Entry(11, 9, EntryType.NOOP, null)), 11, 78, 10),
        new InstallSnapshotRequest("n0", "n1", 9, new SnapshotMeta(100, 8, Membership.of("n0", "n1", "n2")), 4,
            new byte[] {1, 2, 3}),
        new InstallSnapshotResponse("n1", "n0", 9, 100, 4),
        new TimeoutNow("n0", "n1", 9));

    @Test
    void everyMessageTypeRoundTrips() {
        for (Message m : SAMPLES) {
            Message back = MessageCodec.decode(ByteBuffer.wrap(MessageCodec.encode(m)));
            if (m instanceof InstallSnapshotRequest s) {
                InstallSnapshotRequest b = (InstallSnapshotRequest) back;
                assertEquals(s.snapshot(), b.snapshot());
                assertArrayEquals(s.data(), b.data());
                assertEquals(s.withData(null), b.withData(null));
            } else {
                assertEquals(m, back);
            }
        }
    }

    @Test
    void anAnswerReadyToLeadKeepsTheEncodingEveryVersionDecodes() {
        // The flag rides in the conflict term of a success (unused there): same type, same layout, and a value the
        // decoders of earlier versions accept (at least -1) and their leaders ignore on a success.
        byte[] plain = MessageCodec.encode(new AppendEntriesResponse("n1", "n0", 9, true, 14, -1, -1, -1, 78));
        byte[] ready = MessageCodec.encode(new AppendEntriesResponse("n1", "n0", 9, true, 14, -1, -1, -1, 78, true));
        assertEquals(MessageCodec.APPEND_RESPONSE, ready[0]);
        assertEquals(plain.length, ready.length);
        ByteBuffer b = ByteBuffer.wrap(ready);
        b.position(ready.length - 16);
        assertEquals(MessageCodec.LEAD_READY_CONFLICT_TERM, b.getLong(), "the conflict term, before the seq");
        // A failure's conflict term keeps its meaning, whatever the flag.
        AppendEntriesResponse failure = new AppendEntriesResponse("n1", "n0", 9, false, -1, 10, 5, 0, 78, true);
        assertEquals(new AppendEntriesResponse("n1", "n0", 9, false, -1, 10, 5, 0, 78),
            MessageCodec.decode(ByteBuffer.wrap(MessageCodec.encode(failure))));
    }

    @Test
    void snapshotRequestWithoutDataKeepsNull() {
        InstallSnapshotRequest m = new InstallSnapshotRequest("a", "b", 1, new SnapshotMeta(3, 1, Membership.of("a")),
            0, null);
        assertNull(((InstallSnapshotRequest) MessageCodec.decode(ByteBuffer.wrap(MessageCodec.encode(m)))).data());
    }

    @Test
    void everyTruncationIsRejectedWithAnOffset() {
        for (Message m : SAMPLES) {
            byte[] full = MessageCodec.encode(m);
            for (int len = 0; len < full.length; len++) {
                ByteBuffer cut = ByteBuffer.wrap(full, 0, len).slice();
                CodecException e = assertThrows(CodecException.class, () -> MessageCodec.decode(cut),
                    "decoded a " + len + "-byte prefix of " + m);
                assertTrue(e.getMessage().contains("offset") || e.getMessage().contains("missing"), e.getMessage());
            }
        }
    }

    @Test
    void trailingBytesAreRejected() {
        byte[] full = MessageCodec.encode(SAMPLES.get(0));
        byte[] longer = new byte[full.length + 1];
        System.arraycopy(full, 0, longer, 0, full.length);
        CodecException e = assertThrows(CodecException.class, () -> MessageCodec.decode(ByteBuffer.wrap(longer)));
        assertTrue(e.getMessage().contains("trailing"), e.getMessage());
    }

    @Test
    void hugeCountDoesNotAllocate() {
        byte[] full = MessageCodec.encode(SAMPLES.get(2));
        ByteBuffer b = ByteBuffer.wrap(full);
        // The entry count follows type, two ids, term and four longs.
        int countAt = 1 + 2 + 2 + 2 + 2 + 8 + 4 * 8;
        b.putInt(countAt, Integer.MAX_VALUE);
        CodecException e = assertThrows(CodecException.class, () -> MessageCodec.decode(b));
        assertTrue(e.getMessage().contains("entry count"), e.getMessage());
    }

    @Test
    void entriesOutOfSequenceAreRejected() {
        AppendEntriesRequest m = (AppendEntriesRequest) SAMPLES.get(2);
        byte[] full = MessageCodec.encode(m);
        ByteBuffer b = ByteBuffer.wrap(full);
        int firstEntryAt = 1 + 2 + 2 + 2 + 2 + 8 + 4 * 8 + 4;
        b.putLong(firstEntryAt, 99);
        CodecException e = assertThrows(CodecException.class, () -> MessageCodec.decode(b));
        assertTrue(e.getMessage().contains("expected 11"), e.getMessage());
    }

    @Test
    void randomBytesNeverEscapeAsAnythingButCodecException() {
        Random random = new Random(42);
        for (int i = 0; i < 20_000; i++) {
            byte[] junk;
            if (i % 2 == 0) {
                junk = new byte[random.nextInt(80)];
                random.nextBytes(junk);
            } else {
                junk = MessageCodec.encode(SAMPLES.get(random.nextInt(SAMPLES.size())));
                junk[random.nextInt(junk.length)] ^= (byte) (1 + random.nextInt(255));
            }
            try {
                MessageCodec.decode(ByteBuffer.wrap(junk));
            } catch (CodecException expected) {
                // a clear error is the only acceptable failure
            }
        }
    }
}
