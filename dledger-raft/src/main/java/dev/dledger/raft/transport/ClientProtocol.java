package dev.dledger.raft.transport;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.RequestId;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The client and admin requests a node serves, and their answers, in the body of REQUEST and RESPONSE frames. A
 * request body is an op byte then its fields; a response body is a status byte, the leader hint, then the fields
 * of the op. Decoding is bounds-checked like {@link MessageCodec}. Stateless and thread-safe.
 */
public final class ClientProtocol {

    private ClientProtocol() {
    }

    /** The operations. */
    public enum Op {
        APPEND, GET, METADATA, TRANSFER, ADD_VOTER, REMOVE_VOTER, READ_INDEX,
        /**
         * A linearizable query of the state machine: the leader confirms its leadership (read index), waits until it
         * applied that index, then hands the request bytes to {@code StateMachine.query}.
         */
        QUERY
    }

    /**
     * Whether {@code op} is an admin request: status (METADATA), leadership transfer, member add or remove. These change
     * which node leads or who votes, never an entry; a port may serve them alone ({@code TransportOptions.ClientApi}).
     */
    public static boolean isAdmin(Op op) {
        return op == Op.METADATA || op == Op.TRANSFER || op == Op.ADD_VOTER || op == Op.REMOVE_VOTER;
    }

    /**
     * The op of a request body, read from its first byte only.
     *
     * @throws CodecException if the body is empty or the op unknown
     */
    public static Op opOf(byte[] body) {
        if (body.length == 0) {
            throw new CodecException("empty request");
        }
        int code = body[0] & 0xff;
        if (code >= Op.values().length) {
            throw new CodecException("unknown op " + code);
        }
        return Op.values()[code];
    }

    /** The outcome of a request, as the client sees it. */
    public enum Status {
        OK, NOT_LEADER, TRANSFERRING, OVERLOADED, TIMEOUT, LOST, STOPPED, NOT_FOUND, INVALID,
        /** A retried append the leader cannot match with certainty; nothing was appended (see the server's). */
        EXPIRED,
        /** The leader's disk is too full to take appends; nothing was appended. */
        DISK_FULL,
        /** ADD_VOTER: the peer is being caught up; the leader makes it a voter by itself once it has caught up. */
        CATCHING_UP,
        /** ADD_VOTER, REMOVE_VOTER: another peer is being caught up, or another change has not committed yet. */
        CHANGE_IN_PROGRESS,
        /** ADD_VOTER: the peer is a voter already; nothing changed. */
        ALREADY_MEMBER,
        /** REMOVE_VOTER: the peer is not a voter (or is the last one); nothing changed. */
        NOT_MEMBER,
        /** REMOVE_VOTER: the peer is the leader; transfer leadership first; nothing changed. */
        IS_LEADER,
        /** REMOVE_VOTER: the voters left that the leader hears from would not form a quorum; nothing changed. */
        NO_QUORUM
    }

    /**
     * A request.
     *
     * @param op     what to do
     * @param bodies APPEND: the entries' payloads; QUERY: exactly one, the query for the state machine
     * @param number GET: the index; READ_INDEX, QUERY: 1 for a lease read
     * @param peer   TRANSFER, ADD_VOTER, REMOVE_VOTER: the peer id; ADD_VOTER: {@code id=address} to record the new
     *               voter's address in the configuration
     * @param requestId APPEND: the id of the first entry (the others follow it), or null for an append that must
     *                  not be retried
     */
    public record Request(Op op, List<byte[]> bodies, long number, String peer, RequestId requestId) {

        public Request {
            bodies = List.copyOf(bodies);
        }

        /** A request without a request id. */
        public Request(Op op, List<byte[]> bodies, long number, String peer) {
            this(op, bodies, number, peer, null);
        }

        public static Request append(List<byte[]> bodies) {
            return new Request(Op.APPEND, bodies, 0, null);
        }

        /** An append whose entries carry the ids {@code firstId}, {@code firstId.plus(1)}, ... */
        public static Request append(List<byte[]> bodies, RequestId firstId) {
            return new Request(Op.APPEND, bodies, 0, null, firstId);
        }

        public static Request get(long index) {
            return new Request(Op.GET, List.of(), index, null);
        }

        public static Request metadata() {
            return new Request(Op.METADATA, List.of(), 0, null);
        }

        public static Request peerOp(Op op, String peer) {
            return new Request(op, List.of(), 0, peer);
        }

        public static Request readIndex(boolean lease) {
            return new Request(Op.READ_INDEX, List.of(), lease ? 1 : 0, null);
        }

        /** A state machine query; with {@code lease} the leader may skip the heartbeat round (leader lease). */
        public static Request query(byte[] query, boolean lease) {
            return new Request(Op.QUERY, List.of(query), lease ? 1 : 0, null);
        }
    }

    /**
     * A follower's replication state in a metadata answer.
     *
     * @param id    the follower
     * @param match its match index
     */
    public record PeerLag(String id, long match) {
    }

    /**
     * An answer.
     *
     * @param status      the outcome
     * @param leaderHint  the leader to go to, or null
     * @param index       APPEND: first index; READ_INDEX: the read index; METADATA: the commit index
     * @param term        APPEND: the term; METADATA: the term
     * @param positions   APPEND: each entry's data-file position
     * @param entry       GET: the entry, or null
     * @param lastIndex   METADATA: the node's last index
     * @param role        METADATA: the node's role name
     * @param followers   METADATA, on a leader: each follower's match index
     * @param result      QUERY: the state machine's answer (status OK), else null
     */
    public record Response(Status status, String leaderHint, long index, long term, long[] positions, Entry entry,
                           long lastIndex, String role, List<PeerLag> followers, byte[] result) {

        public Response {
            followers = List.copyOf(followers);
        }

        /** An answer without a query result. */
        public Response(Status status, String leaderHint, long index, long term, long[] positions, Entry entry,
                        long lastIndex, String role, List<PeerLag> followers) {
            this(status, leaderHint, index, term, positions, entry, lastIndex, role, followers, null);
        }

        /** An answer with a status only. */
        public static Response of(Status status, String leaderHint) {
            return new Response(status, leaderHint, -1, -1, new long[0], null, -1, null, List.of());
        }
    }

    /** Encodes a request body. */
    public static byte[] encode(Request r) {
        // An append's exact size (op, count, bodies, request id), so that its bytes are not copied once more at the
        // end; the other requests are small.
        int size = r.op() == Op.APPEND ? 1 + 4 + 1 + (r.requestId() != null ? 16 : 0) : 64;
        for (byte[] b : r.bodies()) {
            size += 4 + b.length;
        }
        WireWriter w = new WireWriter(size);
        w.writeByte(r.op().ordinal());
        switch (r.op()) {
            case APPEND:
                w.writeInt(r.bodies().size());
                for (byte[] b : r.bodies()) {
                    w.writeBytes(b);
                }
                w.writeBoolean(r.requestId() != null);
                if (r.requestId() != null) {
                    w.writeLong(r.requestId().clientId()).writeLong(r.requestId().seq());
                }
                break;
            case GET:
            case READ_INDEX:
                w.writeLong(r.number());
                break;
            case QUERY:
                w.writeLong(r.number()).writeBytes(r.bodies().get(0));
                break;
            case TRANSFER:
            case ADD_VOTER:
            case REMOVE_VOTER:
                w.writeString(r.peer());
                break;
            default:
                break;
        }
        return w.toByteArray();
    }

    /**
     * Decodes a request body.
     *
     * @throws CodecException if it is malformed
     */
    public static Request decodeRequest(byte[] body) {
        WireReader r = new WireReader(ByteBuffer.wrap(body));
        int code = r.readByte("op");
        if (code < 0 || code >= Op.values().length) {
            throw new CodecException("unknown op " + code);
        }
        Op op = Op.values()[code];
        Request req;
        switch (op) {
            case APPEND:
                int n = r.readCount("entry count", 4);
                if (n == 0) {
                    throw new CodecException("append without entries");
                }
                List<byte[]> bodies = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    bodies.add(r.readBytes("entry " + i));
                }
                RequestId id = null;
                if (r.readBoolean("has request id")) {
                    long clientId = r.readLong("client id");
                    id = new RequestId(clientId, r.readLong("request seq", 0));
                }
                req = Request.append(bodies, id);
                break;
            case GET:
                req = Request.get(r.readLong("index", 0));
                break;
            case READ_INDEX:
                req = Request.readIndex(r.readLong("lease") != 0);
                break;
            case QUERY:
                boolean lease = r.readLong("lease") != 0;
                req = Request.query(r.readBytes("query"), lease);
                break;
            case TRANSFER:
            case ADD_VOTER:
            case REMOVE_VOTER:
                String peer = r.readString("peer", MessageCodec.MAX_ID_BYTES);
                if (peer == null || peer.isEmpty()) {
                    throw new CodecException("missing peer id");
                }
                req = Request.peerOp(op, peer);
                break;
            default:
                req = Request.metadata();
                break;
        }
        if (r.remaining() != 0) {
            throw new CodecException(r.remaining() + " trailing bytes after " + op + " request");
        }
        return req;
    }

    /** Encodes a response body. */
    public static byte[] encode(Response r) {
        WireWriter w = new WireWriter(64 + (r.entry() == null ? 0 : r.entry().data().length)
            + (r.result() == null ? 0 : r.result().length));
        w.writeByte(r.status().ordinal()).writeString(r.leaderHint()).writeLong(r.index()).writeLong(r.term());
        w.writeInt(r.positions().length);
        for (long p : r.positions()) {
            w.writeLong(p);
        }
        w.writeBoolean(r.entry() != null);
        if (r.entry() != null) {
            Entry e = r.entry();
            w.writeLong(e.index()).writeLong(e.term()).writeByte(e.type().magic()).writeBytes(e.data());
        }
        w.writeLong(r.lastIndex()).writeString(r.role());
        w.writeInt(r.followers().size());
        for (PeerLag p : r.followers()) {
            w.writeString(p.id()).writeLong(p.match());
        }
        w.writeNullableBytes(r.result());
        return w.toByteArray();
    }

    /**
     * Decodes a response body.
     *
     * @throws CodecException if it is malformed
     */
    public static Response decodeResponse(byte[] body) {
        WireReader r = new WireReader(ByteBuffer.wrap(body));
        int code = r.readByte("status");
        if (code < 0 || code >= Status.values().length) {
            throw new CodecException("unknown status " + code);
        }
        String hint = r.readString("leader hint", MessageCodec.MAX_ID_BYTES);
        long index = r.readLong("index");
        long term = r.readLong("term");
        int n = r.readCount("position count", 8);
        long[] positions = new long[n];
        for (int i = 0; i < n; i++) {
            positions[i] = r.readLong("position");
        }
        Entry entry = null;
        if (r.readBoolean("has entry")) {
            long ei = r.readLong("entry index", 0);
            long et = r.readLong("entry term", 0);
            byte magic = r.readByte("entry type");
            byte[] data = r.readBytes("entry payload");
            try {
                entry = new Entry(ei, et, EntryType.ofMagic(magic), data);
            } catch (IllegalArgumentException e) {
                throw new CodecException("bad entry: " + e.getMessage());
            }
        }
        long lastIndex = r.readLong("last index");
        String role = r.readString("role", 32);
        int f = r.readCount("follower count", 10);
        List<PeerLag> followers = new ArrayList<>(f);
        for (int i = 0; i < f; i++) {
            followers.add(new PeerLag(r.readString("follower id", MessageCodec.MAX_ID_BYTES), r.readLong("match")));
        }
        byte[] result = r.readNullableBytes("query result");
        if (r.remaining() != 0) {
            throw new CodecException(r.remaining() + " trailing bytes after a response");
        }
        return new Response(Status.values()[code], hint, index, term, positions, entry, lastIndex, role, followers,
            result);
    }
}
