package dev.dledger.raft.core;

import java.util.Arrays;
import java.util.Objects;

/**
 * One log entry. Indexes start at 0, as in DLedger; -1 means "before the first entry" and has term 0.
 *
 * <p>The payload array is owned by the entry once constructed: callers must not change it afterwards. Equality
 * compares the payload by content.
 *
 * @param index position in the log, 0-based
 * @param term  the leader term that created the entry; 0 only in stores written by stock DLedger, whose first term is
 *              0 (ours starts at 1)
 * @param type  what the payload holds
 * @param data  the payload, never null (empty for {@link EntryType#NOOP})
 */
public record Entry(long index, long term, EntryType type, byte[] data) {

    private static final byte[] EMPTY = new byte[0];

    public Entry {
        if (index < 0) {
            throw new IllegalArgumentException("entry index must be >= 0, was " + index);
        }
        if (term < 0) {
            throw new IllegalArgumentException("entry term must be >= 0, was " + term);
        }
        Objects.requireNonNull(type, "type");
        data = data == null ? EMPTY : data;
    }

    /** Bytes this entry costs against flow-control budgets: the payload plus DLedger's 48-byte header. */
    public long sizeBytes() {
        return data.length + 48L;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Entry e && e.index == index && e.term == term && e.type == type
            && Arrays.equals(e.data, data);
    }

    @Override
    public int hashCode() {
        return Objects.hash(index, term, type) * 31 + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "Entry{" + index + "@" + term + " " + type + " " + data.length + "B}";
    }
}
