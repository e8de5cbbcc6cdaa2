package dev.dledger.raft.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.raft.core.AppendEntriesRequest;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.RequestId;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

class FrameTest {

    @Test
    void aFrameReadsBackWholeOrHeaderFirstWithItsBodyLeftInPlace() {
        byte[] body = {9, 8, 7};
        byte[] wire = new Frame(Frame.Kind.REQUEST, 42, "grüppe", body).encode();
        assertEquals(wire.length - 4, ByteBuffer.wrap(wire).getInt());

        Frame whole = Frame.decode(ByteBuffer.wrap(wire, 4, wire.length - 4).slice());
        assertEquals(Frame.Kind.REQUEST, whole.kind());
        assertEquals(42, whole.requestId());
        assertEquals("grüppe", whole.group());
        assertArrayEquals(body, whole.body());

        ByteBuffer rest = ByteBuffer.wrap(wire, 4, wire.length - 4).slice();
        Frame head = Frame.decodeHeader(rest);
        assertEquals("grüppe", head.group());
        assertEquals(0, head.body().length);
        byte[] left = new byte[rest.remaining()];
        rest.get(left);
        assertArrayEquals(body, left);
    }

    @Test
    void anAppendWithAndWithoutRequestIdsRoundTripsThroughAFrame() {
        AppendEntriesRequest a = new AppendEntriesRequest("n0", "n1", 3, 9, 2,
            List.of(new Entry(10, 3, EntryType.NORMAL, new byte[] {1, 2}, new RequestId(5, 6)),
                new Entry(11, 3, EntryType.NOOP, new byte[0]),
                new Entry(12, 3, EntryType.NORMAL, new byte[1024])), 8, 77);
        byte[] wire = new Frame(Frame.Kind.RAFT, 0, "g", MessageCodec.encode(a)).encode();
        ByteBuffer rest = ByteBuffer.wrap(wire, 4, wire.length - 4).slice();
        Frame.decodeHeader(rest);
        AppendEntriesRequest back = (AppendEntriesRequest) MessageCodec.decode(rest.slice());
        assertEquals(a.prevLogIndex(), back.prevLogIndex());
        assertEquals(a.seq(), back.seq());
        assertEquals(3, back.entries().size());
        assertEquals(new RequestId(5, 6), back.entries().get(0).requestId());
        assertArrayEquals(new byte[1024], back.entries().get(2).data());
    }

    @Test
    void aRaftFrameWrittenAtOnceHasTheBytesOfItsBodyWrappedInAFrame() {
        AppendEntriesRequest a = new AppendEntriesRequest("n0", "n1", 3, 9, 2,
            List.of(new Entry(10, 3, EntryType.NORMAL, new byte[] {1, 2}, new RequestId(5, 6)),
                new Entry(11, 3, EntryType.CONFIG, new byte[] {4})), 8, 77);
        for (String group : List.of("g", "grüppe")) {
            assertArrayEquals(new Frame(Frame.Kind.RAFT, 0, group, MessageCodec.encode(a)).encode(),
                MessageCodec.encodeFrame(group, a), "group " + group);
        }
    }
}
