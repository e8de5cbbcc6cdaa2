package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The body of a broker state entry: what it holds, how it is told from a message, and how bad bytes are refused. */
@Tag("in-process")
class BrokerStateEntryTest {

    private static final BrokerStateEntry ALL_KINDS = new BrokerStateEntry(List.of(
        new BrokerStateEntry.OffsetCommit("group-ä", "topic", 3, 1234567890123L),
        new BrokerStateEntry.TopicPut("T", "{\"topicName\":\"T\"}"),
        new BrokerStateEntry.TopicDelete("Gone"),
        new BrokerStateEntry.GroupPut("G", "{\"groupName\":\"G\"}", true),
        new BrokerStateEntry.GroupPut("H", "{}", false),
        new BrokerStateEntry.GroupDelete("Old"),
        new BrokerStateEntry.OffsetsRemoveGroup("Old"),
        new BrokerStateEntry.OffsetsRemoveTopic("Gone"),
        new BrokerStateEntry.DelayOffset(3, 99),
        new BrokerStateEntry.TimerProgress(1_764_800_000_000L, 4321),
        new BrokerStateEntry.OffsetCommit("", "", 0, -1)));

    @Test
    void everyOperationKindSurvivesEncodeAndDecodeInOrder() {
        byte[] body = ALL_KINDS.encode();
        assertEquals(body.length, ByteBuffer.wrap(body).getInt(0), "the body starts with its size, as a message");
        assertEquals(ALL_KINDS, BrokerStateEntry.decode(body));
    }

    @Test
    void aStateEntryIsToldApartFromMessagesAndBlanks() {
        byte[] body = ALL_KINDS.encode();
        assertTrue(BrokerStateEntry.isStateEntry(body));
        ByteBuffer inFile = ByteBuffer.allocate(100 + body.length);
        inFile.position(100);
        inFile.put(body);
        assertTrue(BrokerStateEntry.isStateEntry(inFile, 100));
        for (int magic : new int[] {MessageDecoder.MESSAGE_MAGIC_CODE, MessageDecoder.MESSAGE_MAGIC_CODE_V2,
            MessageDecoder.BLANK_MAGIC_CODE}) {
            byte[] message = new byte[200];
            ByteBuffer.wrap(message).putInt(200).putInt(magic);
            assertFalse(BrokerStateEntry.isStateEntry(message), "magic " + magic);
        }
        assertFalse(BrokerStateEntry.isStateEntry(new byte[7]), "too short");
    }

    @Test
    void aDamagedBodyIsRefusedWithOneLineNamingWhatIsWrong() {
        byte[] good = ALL_KINDS.encode();
        // Cut short: the size no longer matches.
        assertRefused(Arrays.copyOf(good, good.length - 3), "says " + good.length + " bytes");
        // Cut short with a matching size: an operation runs past the end.
        byte[] cut = Arrays.copyOf(good, good.length - 3);
        ByteBuffer.wrap(cut).putInt(0, cut.length);
        assertRefused(cut, "ends inside operation");
        // An unknown version.
        byte[] version = good.clone();
        ByteBuffer.wrap(version).putShort(8, (short) 9);
        assertRefused(version, "version 9");
        // An unknown operation kind.
        byte[] kind = good.clone();
        kind[14] = 77;
        assertRefused(kind, "unknown kind 77");
        // A string longer than the body.
        byte[] string = good.clone();
        ByteBuffer.wrap(string).putInt(15, 1 << 30);
        assertRefused(string, "string of " + (1 << 30));
        // No operations.
        byte[] none = Arrays.copyOf(good, 14);
        ByteBuffer.wrap(none).putInt(0, 14).putInt(10, 0);
        assertRefused(none, "announces 0 operations");
        // Bytes left over.
        byte[] longer = Arrays.copyOf(good, good.length + 2);
        ByteBuffer.wrap(longer).putInt(0, longer.length);
        assertRefused(longer, "2 bytes after");
        // A message is not a state entry.
        byte[] message = new byte[64];
        ByteBuffer.wrap(message).putInt(64).putInt(MessageDecoder.MESSAGE_MAGIC_CODE);
        assertRefused(message, "not a broker state entry");
    }

    @Test
    void encodingIsStable() {
        byte[] body = new BrokerStateEntry(List.of(new BrokerStateEntry.OffsetCommit("g", "t", 1, 2))).encode();
        ByteBuffer expected = ByteBuffer.allocate(14 + 1 + 5 + 5 + 4 + 8);
        expected.putInt(expected.capacity()).putInt(BrokerStateEntry.MAGIC).putShort((short) 1).putInt(1)
            .put((byte) 1).putInt(1).put((byte) 'g').putInt(1).put((byte) 't').putInt(1).putLong(2);
        assertArrayEquals(expected.array(), body, "the layout other versions of the broker read");
    }

    private static void assertRefused(byte[] body, String expected) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BrokerStateEntry.decode(body));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }
}
