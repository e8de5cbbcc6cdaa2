package dev.dledger.raft.statemachine;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A key-value register on the log (what DLedger's "register" example keeps): each NORMAL entry is a command that
 * sets or deletes one key; a query reads one key. Keys and values are UTF-8 strings.
 *
 * <p>Command encoding, big-endian: byte {@code 'S'} (set) or {@code 'D'} (delete), int key length, key bytes, and for
 * a set an int value length and the value bytes. A query is the key's UTF-8 bytes. An entry that is not a command
 * (appended by a plain client, say) is skipped and counted in {@link #skippedEntries()}: a replicated state machine
 * must apply the same log the same way on every node, so it can neither refuse nor fail on it.
 *
 * <p>Snapshot format: int magic {@code 0x4B563031} ("KV01"), long applied index, int pair count, then per pair the
 * key and value as length-prefixed UTF-8. Pairs are written in key order so equal states give equal snapshots.
 *
 * <p>Like every state machine, all calls come from the node's apply thread (see {@link StateMachine}); the size and
 * counters are also safe to read from other threads.
 */
public final class KeyValueStateMachine implements StateMachine {

    private static final byte SET = 'S';
    private static final byte DELETE = 'D';
    private static final int SNAPSHOT_MAGIC = 0x4B563031;

    private final Map<String, String> values = new HashMap<>();
    private volatile int size;
    private volatile long skipped;
    private volatile long appliedIndex = -1;

    /** The command that sets {@code key} to {@code value}. */
    public static byte[] set(String key, String value) {
        byte[] k = key.getBytes(StandardCharsets.UTF_8);
        byte[] v = value.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(1 + 4 + k.length + 4 + v.length).put(SET).putInt(k.length).put(k)
            .putInt(v.length).put(v).array();
    }

    /** The command that deletes {@code key}. */
    public static byte[] delete(String key) {
        byte[] k = key.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(1 + 4 + k.length).put(DELETE).putInt(k.length).put(k).array();
    }

    /** The query that reads {@code key}. */
    public static byte[] get(String key) {
        return key.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public List<byte[]> apply(List<Entry> committed) {
        List<byte[]> results = new ArrayList<>(committed.size());
        for (Entry e : committed) {
            results.add(e.type() == EntryType.NORMAL ? applyCommand(e.data()) : null);
            appliedIndex = e.index();
        }
        size = values.size();
        return results;
    }

    /** Applies one command; returns the previous value (UTF-8), or null. */
    private byte[] applyCommand(byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data);
        if (b.remaining() < 5) {
            skipped++;
            return null;
        }
        byte op = b.get();
        String key = readString(b);
        if (key == null || (op != SET && op != DELETE)) {
            skipped++;
            return null;
        }
        String previous;
        if (op == SET) {
            String value = readString(b);
            if (value == null || b.hasRemaining()) {
                skipped++;
                return null;
            }
            previous = values.put(key, value);
        } else {
            if (b.hasRemaining()) {
                skipped++;
                return null;
            }
            previous = values.remove(key);
        }
        return previous == null ? null : previous.getBytes(StandardCharsets.UTF_8);
    }

    private static String readString(ByteBuffer b) {
        if (b.remaining() < 4) {
            return null;
        }
        int n = b.getInt();
        if (n < 0 || n > b.remaining()) {
            return null;
        }
        byte[] s = new byte[n];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    /**
     * Reads one key.
     *
     * @param query the key's UTF-8 bytes, see {@link #get(String)}
     * @return the value's UTF-8 bytes, or null when the key is not set
     */
    @Override
    public byte[] query(byte[] query) {
        String value = values.get(new String(query, StandardCharsets.UTF_8));
        return value == null ? null : value.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public boolean canSnapshot() {
        return true;
    }

    @Override
    public void snapshot(long lastIndex, OutputStream out) throws IOException {
        DataOutputStream d = new DataOutputStream(out);
        d.writeInt(SNAPSHOT_MAGIC);
        d.writeLong(lastIndex);
        d.writeInt(values.size());
        for (Map.Entry<String, String> e : new TreeMap<>(values).entrySet()) {
            d.writeInt(e.getKey().getBytes(StandardCharsets.UTF_8).length);
            d.write(e.getKey().getBytes(StandardCharsets.UTF_8));
            d.writeInt(e.getValue().getBytes(StandardCharsets.UTF_8).length);
            d.write(e.getValue().getBytes(StandardCharsets.UTF_8));
        }
        d.flush();
    }

    /**
     * Replaces the state with a snapshot; an empty stream (no snapshot yet) is the empty register.
     *
     * @throws IOException if the snapshot is not one of ours or is cut short, naming what is wrong
     */
    @Override
    public void restore(long lastIndex, InputStream in) throws IOException {
        DataInputStream d = new DataInputStream(in);
        Map<String, String> restored = new HashMap<>();
        int magic;
        try {
            magic = d.readInt();
        } catch (EOFException empty) {
            values.clear();
            size = 0;
            appliedIndex = lastIndex;
            return;
        }
        if (magic != SNAPSHOT_MAGIC) {
            throw new IOException("not a key-value snapshot: magic " + Integer.toHexString(magic) + " instead of "
                + Integer.toHexString(SNAPSHOT_MAGIC));
        }
        try {
            // The index written is for people reading the file; the node's snapshot meta is the authority (a node
            // folder keeps the meta and the data in one file, so they always belong to the same snapshot).
            d.readLong();
            int n = d.readInt();
            if (n < 0) {
                throw new IOException("negative pair count " + n);
            }
            for (int i = 0; i < n; i++) {
                restored.put(readUtf8(d, "key " + i), readUtf8(d, "value " + i));
            }
        } catch (EOFException e) {
            throw new IOException("the snapshot ends early after " + restored.size() + " pairs", e);
        }
        values.clear();
        values.putAll(restored);
        size = values.size();
        appliedIndex = lastIndex;
    }

    private static String readUtf8(DataInputStream d, String what) throws IOException {
        int n = d.readInt();
        if (n < 0 || n > 64 << 20) {
            throw new IOException("bad length " + n + " of " + what);
        }
        byte[] b = new byte[n];
        d.readFully(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    /** How many keys are set. Any thread. */
    public int size() {
        return size;
    }

    /** How many NORMAL entries were not commands and were skipped. Any thread. */
    public long skippedEntries() {
        return skipped;
    }

    /** The last index applied or restored, -1 before any. Any thread. */
    public long appliedIndex() {
        return appliedIndex;
    }
}
