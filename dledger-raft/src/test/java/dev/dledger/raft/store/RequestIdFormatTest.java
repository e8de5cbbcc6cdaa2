package dev.dledger.raft.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.RequestId;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Entries with a client request id on disk: channel bit 8 and the id before the payload; others as stock DLedger. */
class RequestIdFormatTest {

    @TempDir
    Path dir;

    private static final byte[] PAYLOAD = "payload".getBytes(StandardCharsets.UTF_8);

    private ByteBuffer record(long pos) throws IOException {
        byte[] file = Files.readAllBytes(dir.resolve("data").resolve(EntryFormat.fileName(0)));
        return ByteBuffer.wrap(file, (int) pos, file.length - (int) pos).slice();
    }

    @Test
    void anEntryWithARequestIdRoundTripsAndOneWithoutIsStock() throws IOException {
        Entry plain = new Entry(0, 1, EntryType.NORMAL, PAYLOAD);
        Entry withId = new Entry(1, 1, EntryType.NORMAL, PAYLOAD, new RequestId(0x0123456789abcdefL, 42));
        long[] pos;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SegmentedLogStoreTest.SMALL)) {
            pos = s.append(List.of(plain, withId));
            assertEquals(List.of(plain, withId), s.entries(0, 2, Long.MAX_VALUE));
            s.sync();
        }
        // Without an id: channel 0, the body is the payload, as stock DLedger writes it.
        EntryFormat.Header h = EntryFormat.Header.read(record(pos[0]));
        assertEquals(0, h.channel());
        assertEquals(PAYLOAD.length, h.bodyLength());
        assertEquals(EntryFormat.HEADER_SIZE + PAYLOAD.length, h.size());
        assertEquals(EntryFormat.bodyCrc(PAYLOAD), h.bodyCrc());
        // With an id: channel bit 8, then the id's two longs before the payload, all counted in the body.
        ByteBuffer r = record(pos[1]);
        EntryFormat.Header hi = EntryFormat.Header.read(r);
        assertEquals(EntryFormat.CHANNEL_REQUEST_ID, hi.channel());
        assertEquals(RequestId.BYTES + PAYLOAD.length, hi.bodyLength());
        assertEquals(0x0123456789abcdefL, r.getLong());
        assertEquals(42, r.getLong());
        byte[] rest = new byte[PAYLOAD.length];
        r.get(rest);
        assertArrayEquals(PAYLOAD, rest);

        try (SegmentedLogStore s = SegmentedLogStore.open(dir, SegmentedLogStoreTest.SMALL)) {
            assertEquals(List.of(plain, withId), s.entries(0, 2, Long.MAX_VALUE), "after recovery");
            assertNull(s.verify().problem());
        }
    }
}
