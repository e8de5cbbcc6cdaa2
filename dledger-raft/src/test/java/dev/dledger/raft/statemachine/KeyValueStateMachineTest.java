package dev.dledger.raft.statemachine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The key-value register: commands, queries, entries that are not commands, snapshot and restore. */
class KeyValueStateMachineTest {

    private static Entry normal(long index, byte[] data) {
        return new Entry(index, 1, EntryType.NORMAL, data);
    }

    private static String read(KeyValueStateMachine kv, String key) {
        byte[] v = kv.query(KeyValueStateMachine.get(key));
        return v == null ? null : new String(v, StandardCharsets.UTF_8);
    }

    @Test
    void setsOverwritesAndDeletesInLogOrder() {
        KeyValueStateMachine kv = new KeyValueStateMachine();
        List<byte[]> results = kv.apply(List.of(normal(0, KeyValueStateMachine.set("a", "1")),
            normal(1, KeyValueStateMachine.set("b", "2")), normal(2, KeyValueStateMachine.set("a", "3")),
            normal(3, KeyValueStateMachine.delete("b")), normal(4, KeyValueStateMachine.set("ключ", "значение"))));
        assertEquals("3", read(kv, "a"));
        assertNull(read(kv, "b"));
        assertEquals("значение", read(kv, "ключ"));
        assertEquals(2, kv.size());
        assertEquals(4, kv.appliedIndex());
        assertNull(results.get(0), "no previous value");
        assertArrayEquals("1".getBytes(StandardCharsets.UTF_8), results.get(2), "the value it replaced");
        assertArrayEquals("2".getBytes(StandardCharsets.UTF_8), results.get(3), "the value it deleted");
    }

    @Test
    void entriesThatAreNotCommandsAreSkippedOnEveryNodeAlike() {
        KeyValueStateMachine kv = new KeyValueStateMachine();
        byte[] set = KeyValueStateMachine.set("k", "v");
        kv.apply(List.of(normal(0, "Hello".getBytes(StandardCharsets.UTF_8)), normal(1, new byte[0]),
            normal(2, Arrays.copyOf(set, set.length - 1)), normal(3, Arrays.copyOf(set, set.length + 1)),
            new Entry(4, 1, EntryType.NOOP, new byte[0]), normal(5, set)));
        assertEquals(4, kv.skippedEntries(), "plain text, empty, cut short and trailing bytes");
        assertEquals("v", read(kv, "k"));
        assertEquals(5, kv.appliedIndex());
    }

    @Test
    void snapshotRestoresTheSameStateElsewhere() throws IOException {
        KeyValueStateMachine kv = new KeyValueStateMachine();
        for (int i = 0; i < 100; i++) {
            kv.apply(List.of(normal(i, KeyValueStateMachine.set("k" + (i % 30), "v" + i))));
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        kv.snapshot(99, out);
        KeyValueStateMachine other = new KeyValueStateMachine();
        other.apply(List.of(normal(0, KeyValueStateMachine.set("stale", "x"))));
        other.restore(99, new ByteArrayInputStream(out.toByteArray()));
        assertEquals(30, other.size());
        assertNull(read(other, "stale"), "restore replaces the whole state");
        for (int k = 0; k < 30; k++) {
            assertEquals(read(kv, "k" + k), read(other, "k" + k));
        }
        assertEquals(99, other.appliedIndex());
        ByteArrayOutputStream again = new ByteArrayOutputStream();
        other.snapshot(99, again);
        assertArrayEquals(out.toByteArray(), again.toByteArray(), "equal states give equal snapshots");
    }

    @Test
    void restoreFromNothingIsEmptyAndFromGarbageFailsByName() throws IOException {
        KeyValueStateMachine kv = new KeyValueStateMachine();
        kv.apply(List.of(normal(0, KeyValueStateMachine.set("a", "1"))));
        kv.restore(-1, new ByteArrayInputStream(new byte[0]));
        assertEquals(0, kv.size());
        IOException notOurs = assertThrows(IOException.class,
            () -> kv.restore(5, new ByteArrayInputStream("not a snapshot".getBytes(StandardCharsets.UTF_8))));
        assertTrue(notOurs.getMessage().contains("not a key-value snapshot"), notOurs.getMessage());

        KeyValueStateMachine full = new KeyValueStateMachine();
        full.apply(List.of(normal(0, KeyValueStateMachine.set("a", "1")), normal(1, KeyValueStateMachine.set("b", "2"))));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        full.snapshot(1, out);
        byte[] cut = Arrays.copyOf(out.toByteArray(), out.size() - 3);
        IOException early = assertThrows(IOException.class, () -> kv.restore(1, new ByteArrayInputStream(cut)));
        assertTrue(early.getMessage().contains("ends early"), early.getMessage());
    }
}
