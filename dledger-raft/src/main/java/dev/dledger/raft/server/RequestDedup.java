package dev.dledger.raft.server;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.RequestId;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * What a node knows of client request ids, so that a retried append is taken once (Raft thesis section 6.3). The
 * check happens where appends enter the log, on the leader, rather than when they are applied: the log then holds one
 * copy, and the state machine needs no table of its own.
 *
 * <p>Two parts, both rebuilt from the log: the <em>applied</em> table, filled on every node as entries are applied
 * (so a node that becomes leader already has it), and the <em>logged</em> entries, in this node's log but not applied
 * yet. A leader may rely on them only once it applied every entry of earlier terms (its first entry of the term): the
 * entries of earlier terms it holds are then in the applied table, and those it does not hold can never commit.
 *
 * <p>The applied table keeps, per client id, the last {@code maxSeqsPerClient} applied seqs with their index and
 * term, and remembers below which seq it forgot ({@code floor}); a retry at or below the floor cannot be matched and
 * is answered {@link Verdict#UNKNOWN}. A client's seqs are dropped, least recently used first, when the table tracks
 * more than {@code maxTracked} seqs or the client was not seen for {@code maxAgeNanos}; what stays of it is a
 * tombstone, its highest seq, so that a late retry of any of its forgotten seqs is still answered UNKNOWN, never
 * taken as new (issue 16, B2). At most {@code maxTombstones} are kept; beyond that, and after a start or snapshot
 * install that brought no table ({@link #restore(byte[], long)} with null), the table is <em>incomplete</em>: a client
 * it does not know whose first request has a seq above 0 may have had earlier requests it forgot, so that request
 * (and every lower seq of the client) is answered UNKNOWN, and the client's later seqs are new.
 *
 * <p>The applied table is part of the node's snapshots ({@link #encode()}, {@link #restore(byte[], long)}): a node
 * that restarts from a snapshot, or installs one, judges retries of entries the snapshot covers as the node that
 * took it did.
 *
 * <p>Only the driver thread uses an instance; times are {@link System#nanoTime()} values passed in.
 */
final class RequestDedup {

    /** Default seqs remembered per client: 4096. */
    static final int DEFAULT_MAX_SEQS_PER_CLIENT = 4096;
    /** Default seqs remembered over all clients: 262144 (some 20 MiB). */
    static final int DEFAULT_MAX_TRACKED = 1 << 18;
    /** Default time after which an idle client is forgotten: 10 minutes. */
    static final long DEFAULT_MAX_AGE_NANOS = TimeUnit.MINUTES.toNanos(10);

    /** What is known of a request. */
    enum Verdict {
        /** Never seen: append it. */
        NEW,
        /** Applied: answer with the original index. */
        APPLIED,
        /** In this node's log, not applied yet: wait for the original. */
        IN_FLIGHT,
        /** Cannot be told (forgotten, or only part of a batch known): append nothing. */
        UNKNOWN
    }

    /**
     * The answer of {@link #lookup}.
     *
     * @param verdict    what is known
     * @param firstIndex APPLIED and IN_FLIGHT: the index of the request's first entry, else -1
     * @param term       APPLIED and IN_FLIGHT: the term the entries were appended in, else -1
     */
    record Lookup(Verdict verdict, long firstIndex, long term) {
    }

    private static final Lookup NEW = new Lookup(Verdict.NEW, -1, -1);
    private static final Lookup UNKNOWN = new Lookup(Verdict.UNKNOWN, -1, -1);

    private static final class Client {
        /** Every seq at or below it was applied or forgotten. */
        long floor = -1;
        /** Applied seq -> {index, term}. */
        final TreeMap<Long, long[]> applied = new TreeMap<>();
        long seenNanos;
    }

    /** Default tombstones (clients whose seqs were dropped) kept: 65536. */
    static final int DEFAULT_MAX_TOMBSTONES = 1 << 16;
    /** The first bytes of an {@link #encode() encoded} table. */
    private static final int TABLE_MAGIC = 0x44445550;

    private final int maxSeqsPerClient;
    private final int maxTracked;
    private final long maxAgeNanos;
    private final int maxTombstones;
    /** Client id -> its highest seq, of the clients whose seqs were dropped; the oldest first. */
    private final LinkedHashMap<Long, Long> tombstones = new LinkedHashMap<>();
    /** Whether clients may have been forgotten without a tombstone (see the class comment). */
    private boolean incomplete;
    /** In access order: the least recently seen client first. */
    private final LinkedHashMap<Long, Client> clients = new LinkedHashMap<>(16, 0.75f, true);
    private final Map<RequestId, long[]> logged = new HashMap<>();
    private final TreeMap<Long, RequestId> loggedByIndex = new TreeMap<>();
    private long tracked;

    /** A table with the defaults above. */
    RequestDedup() {
        this(DEFAULT_MAX_SEQS_PER_CLIENT, DEFAULT_MAX_TRACKED, DEFAULT_MAX_AGE_NANOS);
    }

    /**
     * A table with the given bounds.
     *
     * @throws IllegalArgumentException if a bound is below 1
     */
    RequestDedup(int maxSeqsPerClient, int maxTracked, long maxAgeNanos) {
        this(maxSeqsPerClient, maxTracked, maxAgeNanos, DEFAULT_MAX_TOMBSTONES);
    }

    /**
     * A table with the given bounds.
     *
     * @throws IllegalArgumentException if a bound is below 1
     */
    RequestDedup(int maxSeqsPerClient, int maxTracked, long maxAgeNanos, int maxTombstones) {
        if (maxSeqsPerClient < 1 || maxTracked < 1 || maxAgeNanos < 1 || maxTombstones < 1) {
            throw new IllegalArgumentException("dedup bounds must be >= 1: " + maxSeqsPerClient + " seqs per client, "
                + maxTracked + " tracked, " + maxAgeNanos + " ns, " + maxTombstones + " tombstones");
        }
        this.maxSeqsPerClient = maxSeqsPerClient;
        this.maxTracked = maxTracked;
        this.maxAgeNanos = maxAgeNanos;
        this.maxTombstones = maxTombstones;
    }

    /** Records that {@code id} was written to this node's log at {@code index} in {@code term}. */
    void logged(RequestId id, long index, long term) {
        long[] known = logged.get(id);
        if (known != null && known[0] == index && known[1] == term) {
            // The leader records its own entries when it proposes them, then sees them again when it writes them.
            return;
        }
        RequestId previous = loggedByIndex.put(index, id);
        if (previous != null && !previous.equals(id)) {
            logged.remove(previous);
        }
        logged.put(id, new long[] {index, term});
    }

    /**
     * Records the entries written to this node's log. An entry without a request id (a no-op, a configuration, a
     * plain append) still replaces what was recorded at its index: a leader records its proposals before they are
     * written, and the core may drop such an entry unwritten when a new leader's entries take its place, with no
     * truncation to report; a new leader's first entry there is typically its no-op.
     */
    void logged(Iterable<Entry> entries) {
        for (Entry e : entries) {
            if (e.requestId() != null) {
                logged(e.requestId(), e.index(), e.term());
            } else {
                RequestId previous = loggedByIndex.remove(e.index());
                if (previous != null) {
                    logged.remove(previous);
                }
            }
        }
    }

    /** Forgets the logged entries at or after {@code fromIndex} (a truncation). */
    void truncated(long fromIndex) {
        Iterator<RequestId> it = loggedByIndex.tailMap(fromIndex, true).values().iterator();
        while (it.hasNext()) {
            logged.remove(it.next());
            it.remove();
        }
    }

    /** Forgets every logged entry (the log was replaced by a snapshot). */
    void logReset() {
        logged.clear();
        loggedByIndex.clear();
    }

    /** Records an applied entry; entries without a request id are ignored. */
    void applied(Entry e, long nowNanos) {
        RequestId id = e.requestId();
        if (id == null) {
            return;
        }
        long[] at = logged.remove(id);
        if (at != null) {
            loggedByIndex.remove(at[0]);
        }
        Client c = client(id.clientId());
        c.seenNanos = nowNanos;
        if (id.seq() > c.floor && c.applied.put(id.seq(), new long[] {e.index(), e.term()}) == null) {
            tracked++;
            while (c.applied.size() > maxSeqsPerClient) {
                c.floor = c.applied.pollFirstEntry().getKey();
                tracked--;
            }
        }
        evict(nowNanos);
    }

    /** The client's entry, made when missing: its floor is its tombstone when it has one. */
    private Client client(long clientId) {
        Client c = clients.get(clientId);
        if (c == null) {
            c = new Client();
            Long dropped = tombstones.remove(clientId);
            if (dropped != null) {
                c.floor = dropped;
            }
            clients.put(clientId, c);
        }
        return c;
    }

    private void evict(long nowNanos) {
        Iterator<Map.Entry<Long, Client>> it = clients.entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<Long, Client> eldest = it.next();
            Client c = eldest.getValue();
            if (tracked <= maxTracked && nowNanos - c.seenNanos <= maxAgeNanos) {
                return;
            }
            tracked -= c.applied.size();
            it.remove();
            bury(eldest.getKey(), c.applied.isEmpty() ? c.floor : Math.max(c.floor, c.applied.lastKey()));
        }
    }

    /** Keeps a tombstone of a dropped client: its seqs at or below {@code highestSeq} can no longer be told. */
    private void bury(long clientId, long highestSeq) {
        if (highestSeq < 0) {
            return;
        }
        tombstones.put(clientId, highestSeq);
        Iterator<Long> it = tombstones.keySet().iterator();
        while (tombstones.size() > maxTombstones) {
            it.next();
            it.remove();
            // That client is now forgotten without a trace.
            incomplete = true;
        }
    }

    /**
     * What is known of the request whose {@code count} entries carry the ids {@code first}, {@code first.plus(1)},
     * and so on. The batch's last entry decides: a batch is appended as a whole, and if a leader change cut it, only
     * a prefix survived.
     */
    Lookup lookup(RequestId first, int count, long nowNanos) {
        if (count < 1) {
            throw new IllegalArgumentException("a request has at least one entry, not " + count);
        }
        RequestId last = first.plus(count - 1);
        Client c = clients.get(first.clientId());
        if (c != null) {
            c.seenNanos = nowNanos;
            long[] applied = c.applied.get(last.seq());
            if (applied != null) {
                long[] head = c.applied.get(first.seq());
                if (head != null && head[0] != applied[0] - (count - 1)) {
                    return UNKNOWN;
                }
                return new Lookup(Verdict.APPLIED, applied[0] - (count - 1), applied[1]);
            }
        }
        long[] inLog = logged.get(last);
        if (inLog != null) {
            return new Lookup(Verdict.IN_FLIGHT, inLog[0] - (count - 1), inLog[1]);
        }
        if (count > 1 && (logged.containsKey(first) || (c != null && c.applied.containsKey(first.seq())))) {
            // The head of the batch is known but not its end: it was cut; appending it again would duplicate the head.
            return UNKNOWN;
        }
        if (c != null && first.seq() <= c.floor) {
            // The batch reaches down to seqs the table forgot (the floor).
            return UNKNOWN;
        }
        if (c == null) {
            Long dropped = tombstones.get(first.clientId());
            if (dropped != null && first.seq() <= dropped) {
                return UNKNOWN;
            }
            if (dropped == null && incomplete && first.seq() > 0) {
                // A client this table may have forgotten: its earlier seqs, and this one, cannot be told; its later
                // seqs can.
                bury(first.clientId(), last.seq());
                return UNKNOWN;
            }
        }
        return NEW;
    }

    /**
     * The applied table (clients, their applied seqs with index and term, tombstones), for a snapshot taken once
     * the entries up to the snapshot's index were applied. The logged entries are not in it: a snapshot replaces
     * the log.
     */
    byte[] encode() {
        int size = 4 + 1 + 4 + 4;
        for (Client c : clients.values()) {
            size += 8 + 8 + 4 + c.applied.size() * 24;
        }
        size += tombstones.size() * 16;
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(size);
        b.putInt(TABLE_MAGIC).put((byte) (incomplete ? 1 : 0)).putInt(clients.size());
        for (Map.Entry<Long, Client> e : clients.entrySet()) {
            Client c = e.getValue();
            b.putLong(e.getKey()).putLong(c.floor).putInt(c.applied.size());
            for (Map.Entry<Long, long[]> a : c.applied.entrySet()) {
                b.putLong(a.getKey()).putLong(a.getValue()[0]).putLong(a.getValue()[1]);
            }
        }
        b.putInt(tombstones.size());
        for (Map.Entry<Long, Long> t : tombstones.entrySet()) {
            b.putLong(t.getKey()).putLong(t.getValue());
        }
        return b.array();
    }

    /**
     * Replaces the applied table with one {@link #encode() encoded} at a snapshot, or, for null (a snapshot that
     * holds no table: taken before tables were kept in snapshots, or a position-only one), empties it and marks it
     * incomplete. The logged entries are forgotten too. Every client counts as seen at {@code nowNanos}.
     *
     * @throws IllegalArgumentException if {@code table} is not an encoded table, naming what is wrong
     */
    void restore(byte[] table, long nowNanos) {
        clients.clear();
        tombstones.clear();
        tracked = 0;
        logReset();
        if (table == null) {
            incomplete = true;
            return;
        }
        try {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(table);
            if (b.getInt() != TABLE_MAGIC) {
                throw new IllegalArgumentException("request table: bad magic");
            }
            incomplete = b.get() != 0;
            int n = b.getInt();
            for (int i = 0; i < n; i++) {
                Client c = new Client();
                long id = b.getLong();
                c.floor = b.getLong();
                int seqs = b.getInt();
                for (int k = 0; k < seqs; k++) {
                    c.applied.put(b.getLong(), new long[] {b.getLong(), b.getLong()});
                }
                c.seenNanos = nowNanos;
                tracked += seqs;
                clients.put(id, c);
            }
            int t = b.getInt();
            for (int i = 0; i < t; i++) {
                tombstones.put(b.getLong(), b.getLong());
            }
            if (b.hasRemaining()) {
                throw new IllegalArgumentException("request table: " + b.remaining() + " bytes after its end");
            }
        } catch (java.nio.BufferUnderflowException | NegativeArraySizeException e) {
            throw new IllegalArgumentException("request table of " + table.length + " bytes ends early");
        }
    }

    /** Seqs remembered over all clients (for tests and metrics). */
    long tracked() {
        return tracked;
    }

    /** Entries with ids in the log and not applied (for tests). */
    int loggedCount() {
        return logged.size();
    }
}
