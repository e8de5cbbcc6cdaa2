package dev.dledger.raft.server;

import dev.dledger.raft.core.FollowerProgress;
import dev.dledger.raft.core.ProposeResult;
import dev.dledger.raft.transport.ClientProtocol;
import dev.dledger.raft.transport.ClientProtocol.Request;
import dev.dledger.raft.transport.ClientProtocol.Response;
import dev.dledger.raft.transport.ClientProtocol.Status;
import dev.dledger.raft.transport.RequestHandler;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/** Serves the {@link ClientProtocol} requests of one node on the transport's port. */
final class ClientService implements RequestHandler {

    private final RaftGroupNode node;

    ClientService(RaftGroupNode node) {
        this.node = node;
    }

    @Override
    public CompletableFuture<byte[]> handle(byte[] body) {
        Request req = ClientProtocol.decodeRequest(body);
        CompletableFuture<Response> resp;
        switch (req.op()) {
            case APPEND:
                resp = node.append(req.bodies(), req.requestId()).thenApply(ClientService::appendResponse);
                break;
            case GET:
                resp = get(req.number());
                break;
            case READ_INDEX:
                resp = node.readIndex(req.number() != 0)
                    .thenApply(i -> new Response(Status.OK, node.id(), i, -1, new long[0], null, -1, null, List.of()))
                    .exceptionally(this::readFailure);
                break;
            case QUERY:
                resp = node.query(req.bodies().get(0), req.number() != 0)
                    .thenApply(r -> r == null ? Response.of(Status.NOT_FOUND, node.id())
                        : new Response(Status.OK, node.id(), -1, -1, new long[0], null, -1, null, List.of(), r))
                    .exceptionally(this::readFailure);
                break;
            case TRANSFER:
                resp = node.transferLeadership(req.peer()).thenApply(ClientService::proposeResponse);
                break;
            case ADD_VOTER:
                resp = addVoter(req.peer());
                break;
            case REMOVE_VOTER:
                resp = removeVoter(req.peer());
                break;
            default:
                resp = CompletableFuture.completedFuture(metadata());
                break;
        }
        return resp.thenApply(ClientProtocol::encode);
    }

    /**
     * Adds a voter after catching it up ({@code id} or {@code id=address}): CATCHING_UP until the leader made it a
     * voter, OK with the index of the configuration entry, ALREADY_MEMBER when it is one.
     */
    private CompletableFuture<Response> addVoter(String peer) {
        // A leading '!' asks for a witness (issue 19), as in the CONFIG body; a leading '^' for a witness's promotion.
        boolean witness = peer != null && peer.startsWith("!");
        boolean promote = peer != null && peer.startsWith("^");
        if (witness || promote) {
            peer = peer.substring(1);
        }
        int eq = peer == null ? -1 : peer.indexOf('=');
        String id = eq < 0 ? peer : peer.substring(0, eq);
        String address = eq < 0 ? null : peer.substring(eq + 1);
        try {
            if (id == null || id.isEmpty() || id.indexOf(',') >= 0 || id.startsWith("!")) {
                return CompletableFuture.completedFuture(Response.of(Status.INVALID, node.id()));
            }
            if (address != null) {
                dev.dledger.raft.core.Membership.checkAddress(id, address);
            }
        } catch (IllegalArgumentException e) {
            return CompletableFuture.completedFuture(Response.of(Status.INVALID, node.id()));
        }
        if (promote) {
            if (address != null) {
                return CompletableFuture.completedFuture(Response.of(Status.INVALID, node.id()));
            }
            // A state machine without snapshots cannot refill a witness (INVALID); a data member or this leader is
            // refused as a member already (ALREADY_MEMBER).
            if (!node.canPromoteWitnesses()) {
                return CompletableFuture.completedFuture(Response.of(Status.INVALID, node.id()));
            }
            return node.promoteWitness(id).thenApply(r -> changeResponse(r, true));
        }
        if (witness) {
            // A refused witness is a member already (ALREADY_MEMBER), or would leave the witnesses not outnumbered by
            // the data members (INVALID): the operator is told which.
            String w = id;
            return node.stageWitness(id, address).thenApply(r -> r.status() == ProposeResult.Status.INVALID_CONFIG_CHANGE
                && !node.status().voters().contains(w) ? Response.of(Status.INVALID, node.id()) : changeResponse(r, true));
        }
        return node.stageVoter(id, address).thenApply(r -> changeResponse(r, true));
    }

    /** Removes a voter other than this leader, keeping a quorum of reachable voters. */
    private CompletableFuture<Response> removeVoter(String peer) {
        if (peer != null && peer.startsWith("!")) {
            // "Remove the data of": turn a data member into a witness (issue 19).
            return node.makeWitness(peer.substring(1)).thenApply(r -> changeResponse(r, false));
        }
        if (peer != null && peer.equals(node.id()) && "LEADER".equals(node.status().role().name())) {
            return CompletableFuture.completedFuture(Response.of(Status.IS_LEADER, node.id()));
        }
        return node.removeVoterKeepingQuorum(peer).thenApply(r -> changeResponse(r, false));
    }

    private Response changeResponse(ProposeResult r, boolean add) {
        Status s;
        switch (r.status()) {
            case CATCHING_UP:
                s = Status.CATCHING_UP;
                break;
            case CONFIG_CHANGE_IN_PROGRESS:
                s = Status.CHANGE_IN_PROGRESS;
                break;
            case INVALID_CONFIG_CHANGE:
                s = add ? Status.ALREADY_MEMBER : Status.NOT_MEMBER;
                break;
            case NO_QUORUM_AFTER_CHANGE:
                s = Status.NO_QUORUM;
                break;
            default:
                return proposeResponse(r);
        }
        return new Response(s, r.leaderHint() != null ? r.leaderHint() : node.id(),
            r.index(), r.term(), new long[0], null, -1, null, List.of());
    }

    /** Serves committed entries only: an entry past the commit index may still be replaced. */
    private CompletableFuture<Response> get(long index) {
        NodeStatus s = node.status();
        if (index > s.commitIndex()) {
            return CompletableFuture.completedFuture(Response.of(Status.NOT_FOUND, s.leaderId()));
        }
        return node.get(index).thenApply(e -> e == null ? Response.of(Status.NOT_FOUND, s.leaderId())
            : new Response(Status.OK, s.leaderId(), e.index(), e.term(), new long[0], e, -1, null, List.of()));
    }

    private Response readFailure(Throwable t) {
        Throwable cause = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        if (cause instanceof NotLeaderException nl) {
            return Response.of(Status.NOT_LEADER, nl.leaderHint());
        }
        if (cause instanceof UnsupportedOperationException || cause instanceof IllegalArgumentException) {
            return Response.of(Status.INVALID, node.id());
        }
        return Response.of(Status.TIMEOUT, node.status().leaderId());
    }

    private Response metadata() {
        NodeStatus s = node.status();
        List<ClientProtocol.PeerLag> lags = new ArrayList<>();
        for (FollowerProgress p : s.followers()) {
            lags.add(new ClientProtocol.PeerLag(p.id(), p.matchIndex()));
        }
        return new Response(Status.OK, s.leaderId(), s.commitIndex(), s.term(), new long[0], null, s.lastIndex(),
            s.role().name(), lags);
    }

    private static Response appendResponse(AppendResult r) {
        Status s;
        switch (r.status()) {
            case OK:
                s = Status.OK;
                break;
            case NOT_LEADER:
                s = Status.NOT_LEADER;
                break;
            case TRANSFERRING:
                s = Status.TRANSFERRING;
                break;
            case OVERLOADED:
                s = Status.OVERLOADED;
                break;
            case LOST:
                s = Status.LOST;
                break;
            case STOPPED:
                s = Status.STOPPED;
                break;
            case EXPIRED:
                s = Status.EXPIRED;
                break;
            case DISK_FULL:
                s = Status.DISK_FULL;
                break;
            default:
                s = Status.TIMEOUT;
                break;
        }
        return new Response(s, r.leaderHint(), r.index(), r.term(), r.positions(), null, -1, null, List.of());
    }

    private static Response proposeResponse(ProposeResult r) {
        Status s;
        switch (r.status()) {
            case ACCEPTED:
                s = Status.OK;
                break;
            case NOT_LEADER:
                s = Status.NOT_LEADER;
                break;
            case TRANSFERRING:
                s = Status.TRANSFERRING;
                break;
            default:
                s = Status.INVALID;
                break;
        }
        return new Response(s, r.leaderHint(), r.index(), r.term(), new long[0], null, -1, null, List.of());
    }
}
