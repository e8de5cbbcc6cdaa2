package dev.dledger.raft.server;

import dev.dledger.raft.core.ProposeResult;
import dev.dledger.raft.core.RaftNode;
import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.core.Role;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The client request path of one {@link RaftGroupNode}: an append is refused up front (too many pending, disk full),
 * judged against the request table when it carries request ids ({@link RequestDedup}: already applied, in flight,
 * too old to judge), or proposed to the core and then tracked by {@link PendingAppends} until applied.
 *
 * <p>Contract: driver thread only, except {@link #checkBodies}. A new leader judges retries only once it applied
 * every entry of earlier terms (everything up to where its log ended when the driver first saw it lead); appends with
 * ids wait until then ({@link #releaseWaitingAppends}), and are refused OVERLOADED at their deadline or NOT_LEADER
 * when the leadership ends first. Every future given here completes exactly once.
 */
final class ClientAppends {

    private record WaitingAppend(List<byte[]> bodies, RequestId id, long deadlineNanos,
                                 CompletableFuture<AppendResult> future) {
    }

    private final RaftNode node;
    private final NodeStorage storage;
    private final NodeOptions options;
    private final Clock clock;
    private final PendingAppends pending;
    /** Client request ids applied here and in the log here: how a leader recognizes a retried append. */
    private final RequestDedup dedup;
    /** The term of the last leadership of this node that the driver saw, or -1. */
    private long leaderTerm = -1;
    /** The last index when that leadership was seen: retries are judged once it is applied. */
    private long leaderStartIndex;
    /** Appends with request ids that wait for this new leader to apply the entries of earlier terms. */
    private final List<WaitingAppend> waitingAppends = new ArrayList<>();

    ClientAppends(RaftNode node, NodeStorage storage, NodeOptions options, Clock clock, PendingAppends pending,
                  RequestDedup dedup) {
        this.node = node;
        this.storage = storage;
        this.options = options;
        this.clock = clock;
        this.pending = pending;
        this.dedup = dedup;
    }

    /** Why {@code bodies} cannot be appended (empty, or an entry too large for a data file), or null. */
    static String checkBodies(List<byte[]> bodies, int maxEntryBytes) {
        if (bodies.isEmpty()) {
            return "empty append";
        }
        for (byte[] b : bodies) {
            if (b.length > maxEntryBytes) {
                return "an entry of " + b.length + " bytes is larger than the " + maxEntryBytes
                    + " bytes a data file can hold";
            }
        }
        return null;
    }

    /** Refuses an append before anything else when too many are pending or the disk is full; whether it did. */
    private boolean refusedUpFront(CompletableFuture<AppendResult> f) {
        if (pending.size() >= options.maxPendingAppends()) {
            f.complete(AppendResult.of(AppendResult.Status.OVERLOADED, null));
            return true;
        }
        if (node.role() == Role.LEADER && storage.diskFull() != null) {
            f.complete(AppendResult.of(AppendResult.Status.DISK_FULL, null));
            return true;
        }
        return false;
    }

    void proposeNow(List<byte[]> bodies, RequestId id, CompletableFuture<AppendResult> f, long deadline) {
        if (refusedUpFront(f)) {
            return;
        }
        if (id != null && node.role() == Role.LEADER) {
            if (!judgesRetries()) {
                waitingAppends.add(new WaitingAppend(bodies, id, deadline, f));
                return;
            }
            RequestDedup.Lookup seen = dedup.lookup(id, bodies.size(), clock.nanoTime());
            switch (seen.verdict()) {
                case APPLIED:
                    long[] unknown = new long[bodies.size()];
                    Arrays.fill(unknown, -1L);
                    f.complete(new AppendResult(AppendResult.Status.OK, seen.firstIndex(), seen.term(), unknown, null));
                    return;
                case IN_FLIGHT:
                    attach(seen.firstIndex(), seen.firstIndex() + bodies.size() - 1, seen.term(), f, deadline);
                    return;
                case UNKNOWN:
                    f.complete(AppendResult.of(AppendResult.Status.EXPIRED, node.leaderId()));
                    return;
                default:
                    break;
            }
        }
        ProposeResult r = node.propose(bodies, id);
        settle(r, bodies.size(), f, deadline);
        if (r.accepted() && id != null) {
            // Known at once, so that a retry taken in this same pass finds it.
            for (int i = 0; i < bodies.size(); i++) {
                dedup.logged(id.plus(i), r.index() + i, r.term());
            }
        }
    }

    void proposeBuilt(EntryBuilder builder, CompletableFuture<AppendResult> f, long deadline) {
        if (refusedUpFront(f)) {
            return;
        }
        ProposeResult refused = node.proposalRefusal();
        if (refused != null) {
            settle(refused, 0, f, deadline);
            return;
        }
        List<byte[]> bodies;
        try {
            bodies = List.copyOf(builder.build(node.term()));
        } catch (RuntimeException e) {
            f.completeExceptionally(e);
            return;
        }
        String wrong = checkBodies(bodies, storage.maxEntryBytes());
        if (wrong != null) {
            f.completeExceptionally(new IllegalArgumentException(wrong));
            return;
        }
        ProposeResult r = node.propose(bodies, null);
        if (!r.accepted()) {
            // Nothing ran between the check and the proposal on this thread: the core broke its word.
            throw new IllegalStateException("a proposal the core would take was refused: " + r);
        }
        settle(r, bodies.size(), f, deadline);
    }

    /** An accepted proposal becomes pending until committed; a refused one completes with why. */
    private void settle(ProposeResult r, int count, CompletableFuture<AppendResult> f, long deadline) {
        switch (r.status()) {
            case ACCEPTED:
                pending.add(r.index(), r.index() + count - 1, r.term(), deadline, f);
                break;
            case TRANSFERRING:
                f.complete(AppendResult.of(AppendResult.Status.TRANSFERRING, r.leaderHint()));
                break;
            default:
                f.complete(AppendResult.of(AppendResult.Status.NOT_LEADER, r.leaderHint()));
                break;
        }
    }

    /**
     * Whether this leader may judge retried appends: it applied every entry of earlier terms (everything up to where
     * its log ended when the driver first saw it lead), so the applied table knows all of them that will ever commit.
     */
    boolean judgesRetries() {
        if (leaderTerm != node.term()) {
            leaderTerm = node.term();
            leaderStartIndex = node.lastIndex();
        }
        return node.appliedIndex() >= leaderStartIndex;
    }

    /** A retry of entries in the log at {@code [first, last]}: completes with the original's outcome. */
    private void attach(long first, long last, long term, CompletableFuture<AppendResult> f, long deadline) {
        pending.attach(first, last, term, f, deadline, node.leaderId());
    }

    /** Takes the appends that waited for this leader to catch up, or refuses them once it no longer leads. */
    void releaseWaitingAppends() {
        if (waitingAppends.isEmpty()) {
            return;
        }
        if (node.role() != Role.LEADER) {
            for (WaitingAppend w : waitingAppends) {
                w.future().complete(AppendResult.of(AppendResult.Status.NOT_LEADER, node.leaderId()));
            }
            waitingAppends.clear();
        } else if (judgesRetries()) {
            List<WaitingAppend> ready = new ArrayList<>(waitingAppends);
            waitingAppends.clear();
            for (WaitingAppend w : ready) {
                proposeNow(w.bodies(), w.id(), w.future(), w.deadlineNanos());
            }
        }
    }

    /** Refuses OVERLOADED the waiting appends past their deadline: nothing was appended, the client may retry. */
    void expireWaiting(long now) {
        waitingAppends.removeIf(w -> {
            boolean late = now - w.deadlineNanos() >= 0;
            if (late) {
                // Nothing was appended: a definite refusal the client may retry.
                w.future().complete(AppendResult.of(AppendResult.Status.OVERLOADED, node.leaderId()));
            }
            return late;
        });
    }

    /** Answers STOPPED to every waiting append. */
    void failWaiting() {
        for (WaitingAppend w : waitingAppends) {
            w.future().complete(AppendResult.of(AppendResult.Status.STOPPED, null));
        }
        waitingAppends.clear();
    }
}
