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
 * @param requestId the client's id of a {@link EntryType#NORMAL} entry appended with one, so that a retry is
 *                  recognized; null for entries without (the DLedger format then is byte for byte the stock one)
 */
public record Entry(long index, long term, EntryType type, byte[] data, RequestId requestId) {

    private static final byte[] EMPTY = new byte[0];

    /** An entry without a request id. */
    public Entry(long index, long term, EntryType type, byte[] data) {
        this(index, term, type, data, null);
    }

    public Entry {
        if (index < 0) {
            throw new IllegalArgumentException("entry index must be >= 0, was " + index);
        }
        if (term < 0) {
            throw new IllegalArgumentException("entry term must be >= 0, was " + term);
        }
        Objects.requireNonNull(type, "type");
        data = data == null ? EMPTY : data;
        if (requestId != null && type != EntryType.NORMAL) {
            throw new IllegalArgumentException("only NORMAL entries carry a request id, not " + type);
        }
    }

    /**
     * Bytes this entry costs against flow-control budgets: the payload plus DLedger's 48-byte header, plus the
     * request id when there is one.
     */
    public long sizeBytes() {
        return data.length + 48L + (requestId == null ? 0 : RequestId.BYTES);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Entry e && e.index == index && e.term == term && e.type == type
            && Arrays.equals(e.data, data) && Objects.equals(e.requestId, requestId);
    }

    @Override
    public int hashCode() {
        return Objects.hash(index, term, type, requestId) * 31 + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "Entry{" + index + "@" + term + " " + type + " " + data.length + "B"
            + (requestId == null ? "" : " " + requestId) + "}";
    }
}
