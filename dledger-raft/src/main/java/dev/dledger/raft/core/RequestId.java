package dev.dledger.raft.core;

/**
 * The identity of one client-appended entry, carried in the replicated log so that a retried append can be recognized
 * by whichever node leads when the retry arrives (Raft thesis section 6.3). A client picks a random 64-bit
 * {@code clientId} once and numbers its entries with increasing {@code seq}s; a batch of n entries takes n consecutive
 * seqs.
 *
 * @param clientId the client's random id
 * @param seq      the entry's number within the client, >= 0
 */
public record RequestId(long clientId, long seq) {

    /** Bytes of a request id on disk and on the wire: two big-endian longs. */
    public static final int BYTES = 16;

    public RequestId {
        if (seq < 0) {
            throw new IllegalArgumentException("request seq must be >= 0, was " + seq);
        }
    }

    /** The id of the entry {@code offset} places after this one in the same batch. */
    public RequestId plus(int offset) {
        return new RequestId(clientId, seq + offset);
    }

    @Override
    public String toString() {
        return Long.toHexString(clientId) + "#" + seq;
    }
}
