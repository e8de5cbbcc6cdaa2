package dev.dledger.raft.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The Raft protocol of one node of one group, as a deterministic state machine: the same state and the same inputs
 * always give the same outputs. It does no I/O, owns no thread, reads no clock and draws randomness only from the
 * injected {@link RandomSource}.
 *
 * <p>Inputs: {@link #tick()}, {@link #step(Message)}, {@link #propose(byte[])} and the other commands. Output: a
 * {@link Ready} batch; see its Javadoc for the order in which the driver must handle it. Every method must be called
 * from one thread at a time (the driver's), and between {@link #ready()} and {@link #advance(Ready)} no other input
 * is allowed.
 *
 * <p>Indexes start at 0; -1 stands for "before the first entry" and has term 0.
 */
public final class RaftNode {

    /** Give up on a snapshot that was not acknowledged for this many election timeouts. */
    private static final int SNAPSHOT_TIMEOUT_ELECTIONS = 5;
    /** The seq of an answer that answers no request of its receiver's current leadership. */
    static final long NO_SEQ = -1;
    /** After a transfer to the preferred leader failed, wait this many election timeouts before the next try. */
    private static final int PREFERRED_RETRY_ELECTIONS = 10;
    /**
     * The preferred leader is handed the leadership once it answered without a long silence this many election
     * timeouts, the last answer saying it is ready to lead ({@link AppendEntriesResponse#leadReady()}).
     */
    private static final int PREFERRED_STEADY_ELECTIONS = 1;

    private final RaftConfig config;
    private final String id;
    private final RaftLog log;
    private final RandomSource random;
    private final CoreLog out;

    // Persistent state (Raft paper, figure 2); durable once a Ready carrying it was handled.
    private long term;
    private String votedFor;
    private HardState persistedHardState;

    // Volatile state.
    private Role role = Role.FOLLOWER;
    private String leaderId;
    private long commitIndex;
    private long appliedIndex;
    /**
     * The last index of this node's log known to be durable on its disk: what a leader counts for itself toward a
     * quorum. Every persisted entry with {@link #advance(Ready)}; only what the driver reported through
     * {@link #logDurable(long, long)} after {@link #advance(Ready, boolean) advance(rd, false)}.
     */
    private long durableIndex;
    /**
     * On a witness: the highest index whose body it may drop by the drop rule (see {@link Membership}), learned from
     * the leader's data-durable index; -1 on a data member, which never drops on the witness's account.
     */
    private long witnessDropIndex = -1;
    /** Set by {@link #leave()}: this node never campaigns again. */
    private boolean leaving;
    /** What the driver last said through {@link #setLeadReady}: whether it could serve at once if it led. */
    private boolean driverLeadReady = true;

    // Time, counted in this node's ticks.
    private long now;
    private int electionElapsed;
    private int heartbeatElapsed;
    private int randomizedElectionTimeout;

    // Configurations: the base (snapshot or bootstrap) then every CONFIG entry of the log, in index order.
    private final List<ConfigPoint> configHistory = new ArrayList<>();
    private Membership membership;

    // Candidate state: who answered and how.
    private final Map<String, Boolean> votes = new TreeMap<>();

    // Leader state.
    private final Map<String, Progress> progress = new TreeMap<>();
    private long noopIndex = -1;
    private String leadTransferee;
    /**
     * Ticks since the transfer started, or since its first TimeoutNow once that was sent: the target then has an
     * election timeout for its election (a pre-vote round, then the vote) before the transfer is given up.
     */
    private int transferElapsed;
    /** Whether the transfer under way sent its target TimeoutNow yet. */
    private boolean transferTimeoutNowSent;
    private long preferredRetryTick;
    /**
     * A peer being caught up before it becomes a voter (thesis section 4.2.1): the leader replicates to it, it counts
     * toward nothing, and once its log reaches the commit index the leader proposes adding it. Leader-local: a new
     * leader forgets it, and the operator asks again.
     */
    private String stagedPeer;
    private String stagedAddress;
    /** Whether {@link #stagedPeer} joins as a witness. */
    private boolean stagedWitness;
    /** A snapshot at or above this index is wanted for a promoted witness ({@link #snapshotWanted()}); -1 none. */
    private long snapshotWantedAt = -1;
    /** The staged peer's current round: reach this index within an election timeout of the round's start. */
    private long stagedRoundTarget;
    private long stagedRoundStartTick;
    /**
     * The node this leader is about to hand its leadership to ({@link #announceTransfer}), announced in
     * {@link #leadTransferee()} a heartbeat interval before the transfer starts; null when none.
     */
    private String handOverAnnounced;
    private long handOverAnnouncedTick;
    /** The driver's clients still have proposals on their way ({@link #setHandOverHeld}). */
    private boolean handOverHeld;
    /** The ticks this node was told it skipped ({@link #skipTicks}), in all. */
    private long stoodStill;
    /**
     * The leader whose TimeoutNow started the current (pre-)campaign, null for a campaign of this node's own: the vote
     * requests of a transfer's campaign set the lease aside.
     */
    private String transferFrom;
    /** The tick the current (pre-)campaign started at. */
    private long campaignStartTick;
    /**
     * Set once this leader sent TimeoutNow in its term: the target's election skips the voters' lease check, so this
     * leader's lease no longer proves that no other leader exists. Lease reads then fall back to read index.
     */
    private boolean leaseRevoked;
    /** Ticks after start during which votes are refused (see {@link InitialState#leaseQuietTicks()}). */
    private final int leaseQuietTicks;
    private boolean broadcastPending;
    /**
     * The number of the last broadcast of this process as leader (heartbeats, read rounds), echoed in the answers and
     * counted by {@link #quorumAckedSeq()}. It starts again from 0 when the process restarts: an answer whose seq is
     * above it answers an earlier incarnation and confirms nothing.
     */
    private long seq;
    private final TreeMap<Long, Long> seqTicks = new TreeMap<>();
    private final ArrayDeque<PendingRead> pendingReads = new ArrayDeque<>();
    private final List<AwaitingRead> readsAwaitingNoop = new ArrayList<>();

    // Output collected for the next Ready.
    private final List<Message> msgs = new ArrayList<>();
    private final List<ReadState> readStates = new ArrayList<>();
    private boolean readyOutstanding;

    private record ConfigPoint(long index, Membership membership) {
    }

    private record PendingRead(long requestId, long index, long seq) {
    }

    private record AwaitingRead(long requestId, boolean lease) {
    }

    /**
     * Creates a node from what it recovered.
     *
     * @param config  protocol settings
     * @param logView the durable log, written only by the driver
     * @param initial the recovered term, vote, configurations, commit and applied indexes
     * @param random  the source of election jitter
     * @param out     where log lines go
     */
    public RaftNode(RaftConfig config, LogView logView, InitialState initial, RandomSource random, CoreLog out) {
        this.config = Objects.requireNonNull(config, "config");
        this.id = config.id();
        this.log = new RaftLog(Objects.requireNonNull(logView, "logView"));
        this.random = Objects.requireNonNull(random, "random");
        this.out = Objects.requireNonNull(out, "out");
        this.term = initial.hardState().term();
        this.votedFor = initial.hardState().votedFor();
        this.persistedHardState = initial.hardState();
        this.leaseQuietTicks = initial.leaseQuietTicks();

        SnapshotMeta snap = logView.snapshot();
        long base = snap.index();
        Membership baseMembership = base >= 0 ? snap.membership() : initial.membership();
        configHistory.add(new ConfigPoint(base, baseMembership));
        for (Entry e : initial.configEntries()) {
            if (e.type() != EntryType.CONFIG) {
                throw new IllegalArgumentException("not a CONFIG entry: " + e);
            }
            if (e.index() > base && e.index() <= logView.lastIndex()) {
                configHistory.add(new ConfigPoint(e.index(), Membership.decode(e.data())));
            }
        }
        this.membership = configHistory.get(configHistory.size() - 1).membership();
        // Everything up to the snapshot is committed and applied; a checkpoint may know of more commits, but never
        // of more than the durable log holds.
        this.commitIndex = Math.max(base, Math.min(initial.commitIndex(), logView.lastIndex()));
        // The recovered log is what the disk holds; a driver that syncs lazily makes it durable before it starts.
        this.durableIndex = logView.lastIndex();
        this.appliedIndex = Math.max(base, Math.min(initial.appliedIndex(), commitIndex));
        resetRandomizedElectionTimeout();
        out.info("started at term " + term + ", log [" + logView.firstIndex() + ".." + logView.lastIndex()
            + "], commit " + commitIndex + ", applied " + appliedIndex + ", voters " + membership.voters());
    }

    // ------------------------------------------------------------------------------------------------------------
    // Inputs

    /** Advances this node's clock by one tick: election and heartbeat timers, check-quorum, transfer timeout. */
    public void tick() {
        now++;
        electionElapsed++;
        if (role == Role.LEADER) {
            tickLeader();
        } else if (electionElapsed >= randomizedElectionTimeout && promotable()) {
            // Raft paper section 5.2: no word from a leader for an election timeout. Start with a pre-vote when
            // enabled, so that a node that cannot win does not raise the group's term (thesis section 9.6).
            campaign(config.preVote(), null);
        }
    }

    /**
     * Tells the node that {@code ticks} ticks of real time went by that the driver did not tick and will not replay
     * (its thread was starved, or the process stood still: a long GC, SIGSTOP, a stalled disk). The clock moves on by
     * that much so that what it measures stays true in real time; the timers (election, heartbeat, transfer) do not,
     * so no burst of heartbeats or elections follows.
     *
     * <p>Check-quorum does not count them either: a leader that stood still sent nothing meanwhile, so its followers
     * had nothing to answer; counted, any pause over an election timeout less a heartbeat made the leader step down at
     * its first tick after it, although its followers, which heard its last heartbeat as late, had not timed out. It
     * judges the silence of ticks it ran, and steps down one election timeout of those after the pause if nobody
     * answers. Elections and safety do not depend on it: a follower's own election timer runs in its real time.
     *
     * <p>This matters for the leader lease (thesis section 6.4.1): it holds for {@code leaseTicks} after a quorum
     * acknowledged a heartbeat, on the assumption that this node's ticks keep pace with its followers'. A leader
     * that stood still for longer than an election timeout may have been replaced meanwhile; without the skipped
     * ticks its lease would still look valid and a lease read would return a state older than writes the new leader
     * acknowledged. With them the lease has lapsed, and reads wait for a heartbeat round acknowledged after the pause.
     *
     * @param ticks how many ticks were skipped, 0 or more
     * @throws IllegalArgumentException if {@code ticks} is negative
     */
    public void skipTicks(long ticks) {
        if (ticks < 0) {
            throw new IllegalArgumentException("cannot skip a negative number of ticks: " + ticks);
        }
        now += ticks;
        stoodStill += ticks;
    }

    private void tickLeader() {
        heartbeatElapsed++;
        if (electionElapsed >= config.electionTimeoutTicks()) {
            electionElapsed = 0;
        }
        // A transfer ends an election timeout after it started if its target never caught up, else an election
        // timeout after its first TimeoutNow: given up earlier, while the target's election runs, this leader takes
        // proposals again, the target's log falls behind, and the election the transfer started is lost (a term spent
        // and the group without a leader for an election timeout, the transfer to a preferred leader deferred).
        if (leadTransferee != null && ++transferElapsed >= config.electionTimeoutTicks()) {
            out.info("leadership transfer to " + leadTransferee + " timed out");
            if (leadTransferee.equals(config.preferredLeader())) {
                preferredRetryTick = now + (long) PREFERRED_RETRY_ELECTIONS * config.electionTimeoutTicks();
            }
            leadTransferee = null;
        }
        if (config.checkQuorum() && !quorumActive()) {
            // Check-quorum (thesis section 6.2): a leader cut off from a majority steps down, so that clients find
            // the real leader and lease reads stay safe. The term is unchanged.
            out.info("no quorum heard from within " + config.electionTimeoutTicks() + " ticks, stepping down");
            becomeFollower(term, null);
            return;
        }
        if (heartbeatElapsed >= config.heartbeatTicks()) {
            heartbeatElapsed = 0;
            heartbeat();
            maybeStartAnnouncedTransfer();
            maybeTransferToPreferred();
            maybePromoteStaged();
            maybeHandOffAsWitness();
        }
    }

    /**
     * Takes a message from a peer. Messages from an older term are dropped or answered with the current term;
     * a message from a newer term makes this node adopt that term first (Raft paper section 5.1).
     *
     * @throws RaftInvariantError if the message proves a broken invariant (two leaders in one term, a committed
     *                            entry overwritten); the node must then stop
     */
    public void step(Message m) {
        Objects.requireNonNull(m, "message");
        if (!id.equals(m.to())) {
            throw new IllegalArgumentException("message for " + m.to() + " stepped into " + id);
        }
        if (m.term() > term) {
            if (m instanceof VoteRequest vr) {
                // Leader stickiness (thesis section 4.2.3): while a leader is heard from, a vote request cannot
                // depose it, unless the leader itself asked for the election by a transfer.
                if (inLease() && !vr.leadershipTransfer()) {
                    if (out.debugEnabled()) {
                        out.debug("ignored " + m + ": leader " + leaderId + " heard from " + electionElapsed
                            + " ticks ago");
                    }
                    return;
                }
                if (!vr.preVote()) {
                    // Adopt the term, but keep the election timer running: only a granted vote resets it (Raft
                    // figure 2). Otherwise doomed candidates with stale logs keep the node with the best log from
                    // ever campaigning.
                    int elapsed = electionElapsed;
                    becomeFollower(m.term(), null);
                    electionElapsed = elapsed;
                }
            } else if (m instanceof VoteResponse vresp && vresp.preVote() && vresp.granted()) {
                // A granted pre-vote carries the term asked about; it changes nobody's term.
                if (out.debugEnabled()) {
                    out.debug("pre-vote granted by " + m.from());
                }
            } else if (m instanceof AppendEntriesRequest || m instanceof InstallSnapshotRequest
                || m instanceof TimeoutNow) {
                becomeFollower(m.term(), m.from());
            } else {
                // A higher term learned from an answer keeps the election timer running too (Raft figure 2): a
                // candidate that restarted its timer on every rejection would always lose the race for the next term
                // to the node that rejected it.
                int elapsed = electionElapsed;
                becomeFollower(m.term(), null);
                electionElapsed = elapsed;
            }
        } else if (m.term() < term) {
            answerStale(m);
            return;
        }

        if (m instanceof VoteRequest vr) {
            handleVoteRequest(vr);
        } else if (m instanceof VoteResponse vr) {
            handleVoteResponse(vr);
        } else if (m instanceof AppendEntriesRequest ar) {
            ensureFollowerOf(ar.from());
            handleAppend(ar);
        } else if (m instanceof InstallSnapshotRequest sr) {
            ensureFollowerOf(sr.from());
            handleInstallSnapshot(sr);
        } else if (m instanceof AppendEntriesResponse ar) {
            if (role == Role.LEADER) {
                handleAppendResponse(ar);
                maybePromoteStaged();
            }
        } else if (m instanceof InstallSnapshotResponse sr) {
            if (role == Role.LEADER) {
                handleSnapshotResponse(sr);
            }
        } else if (m instanceof TimeoutNow) {
            // A TimeoutNow the leader sent again (it does at each answer of its transferee) while this node already
            // campaigns for it leaves the campaign alone: starting it over would drop the votes it has.
            boolean campaigning = role != Role.FOLLOWER && m.from().equals(transferFrom);
            if (role != Role.LEADER && promotable() && !campaigning) {
                out.info("leadership transfer from " + m.from() + ": campaigning now");
                // With pre-vote, a pre-vote round first (the voters' lease set aside, as for the vote): a TimeoutNow
                // that reached a stalled node after the leader gave the transfer up and appended more then ends in
                // rejections at this term, instead of a higher term that deposes the leader for a candidate whose
                // log is behind and cannot win.
                campaign(config.preVote(), m.from());
            }
        }
    }

    /**
     * Proposes one application entry. Only a leader that is not transferring leadership accepts it.
     *
     * @return where the entry went, or why it was refused
     */
    public ProposeResult propose(byte[] data) {
        Objects.requireNonNull(data, "data");
        return propose(List.of(data));
    }

    /**
     * Proposes consecutive application entries, appended together (they get consecutive indexes).
     *
     * @return the index of the first entry, or why the batch was refused
     */
    public ProposeResult propose(List<byte[]> batch) {
        return propose(batch, null);
    }

    /**
     * Proposes consecutive application entries that carry client request ids: the entry at offset i of the batch
     * gets {@code firstId.plus(i)}. The core does not look at the ids; the driver uses them to recognize retries.
     *
     * @param firstId the id of the first entry, or null for entries without ids
     * @return the index of the first entry, or why the batch was refused
     */
    public ProposeResult propose(List<byte[]> batch, RequestId firstId) {
        if (batch.isEmpty()) {
            throw new IllegalArgumentException("empty batch");
        }
        ProposeResult refused = proposalRefusal();
        if (refused != null) {
            return refused;
        }
        long first = log.lastIndex() + 1;
        List<Entry> ents = new ArrayList<>(batch.size());
        for (int i = 0; i < batch.size(); i++) {
            ents.add(new Entry(first + i, term, EntryType.NORMAL, Objects.requireNonNull(batch.get(i), "data"),
                firstId == null ? null : firstId.plus(i)));
        }
        appendAsLeader(ents);
        return new ProposeResult(ProposeResult.Status.ACCEPTED, first, term, null);
    }

    /** Proposes adding {@code peer} as a voter (thesis section 4.1: one server at a time). */
    public ProposeResult addVoter(String peer) {
        return proposeMembership(peer, true);
    }

    /**
     * Adds {@code peer} as a voter once it has caught up (thesis section 4.2.1), so that a new, empty member never
     * holds up commits: the leader first replicates to it as to a non-voter, then, once its log reaches the commit
     * index and no other change is in progress, appends the configuration entry that adds it at {@code address}.
     * Asking again for the same peer is harmless and reports where it stands.
     *
     * @param address the peer's address to record in the configuration, or null for none
     * @return CATCHING_UP while it catches up; ACCEPTED with the configuration entry's index when that was appended
     *         by this call; INVALID_CONFIG_CHANGE when it is a voter already; CONFIG_CHANGE_IN_PROGRESS while another
     *         peer is being caught up or another change has not committed; NOT_LEADER, TRANSFERRING as a proposal
     */
    public ProposeResult stageVoter(String peer, String address) {
        Objects.requireNonNull(peer, "peer");
        if (address != null) {
            Membership.checkAddress(peer, address);
        }
        ProposeResult refused = proposalRefusal();
        if (refused != null) {
            return refused;
        }
        if (membership.contains(peer)) {
            return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, term, null);
        }
        if (peer.equals(id) || (stagedPeer != null && !stagedPeer.equals(peer)) || lastConfigIndex() > commitIndex) {
            return new ProposeResult(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, -1, term, null);
        }
        if (stagedPeer == null) {
            out.info("catching up " + peer + (address == null ? "" : " at " + address) + " before it becomes a voter");
            stage(peer, -1);
        }
        stagedAddress = address != null ? address : stagedAddress;
        ProposeResult promoted = maybePromoteStaged();
        return promoted != null ? promoted : new ProposeResult(ProposeResult.Status.CATCHING_UP, -1, term, null);
    }

    /** The peer being caught up before it becomes a voter, or null (on a leader only). */
    public String stagedPeer() {
        return stagedPeer;
    }

    /** The address of {@link #stagedPeer()}, or null. */
    public String stagedAddress() {
        return stagedAddress;
    }

    /**
     * Proposes adding the staged peer once it is caught up; null when not (yet) done. Caught up is the thesis's
     * rounds (section 4.2.1): a round ends when the peer holds the leader's last index of the round's start; a round
     * that took at most an election timeout means the peer is as current as a follower can be under the present load.
     */
    private ProposeResult maybePromoteStaged() {
        if (stagedPeer == null || role != Role.LEADER) {
            return null;
        }
        Progress pr = progress.get(stagedPeer);
        if (pr == null || pr.refillFloor >= 0 || pr.match < stagedRoundTarget) {
            return null;
        }
        if (now - stagedRoundStartTick > config.electionTimeoutTicks()) {
            stagedRoundTarget = log.lastIndex();
            stagedRoundStartTick = now;
            return null;
        }
        if (commitIndex < noopIndex || lastConfigIndex() > commitIndex) {
            return null;
        }
        if (!stagedWitness && !membership.witnesses().isEmpty() && pr.match < commitIndex) {
            // A new data member of a group with witnesses holds everything committed before it counts (issue 19): a
            // witness may have dropped any committed body the data members held, and a quorum of the witness and the
            // new member must not lack one. What it holds bounds every drop permission sent so far (never above the
            // commit index); from its configuration entry on, the permissions count it.
            return null;
        }
        String peer = stagedPeer;
        stagedPeer = null;
        out.info(peer + " caught up to " + pr.match + " (commit index " + commitIndex + "), adding it as a voter");
        Membership next = stagedWitness ? membership.withWitnessMember(peer, stagedAddress)
            : membership.with(peer, stagedAddress);
        stagedAddress = null;
        stagedWitness = false;
        long index = log.lastIndex() + 1;
        appendAsLeader(List.of(new Entry(index, term, EntryType.CONFIG, next.encode())));
        return new ProposeResult(ProposeResult.Status.ACCEPTED, index, term, null);
    }

    /**
     * Proposes removing {@code peer}, but only when the voters left that this leader heard from within an election
     * timeout still form a quorum of the new configuration: otherwise NO_QUORUM_AFTER_CHANGE and nothing changes.
     * Other answers as {@link #removeVoter}.
     */
    public ProposeResult removeVoterKeepingQuorum(String peer) {
        Objects.requireNonNull(peer, "peer");
        if (role == Role.LEADER && membership.contains(peer) && membership.voters().size() > 1
            && !activeQuorumOf(membership.without(peer))) {
            return new ProposeResult(ProposeResult.Status.NO_QUORUM_AFTER_CHANGE, -1, term, null);
        }
        return removeVoter(peer);
    }

    /** Whether the voters of {@code next} that this leader heard from within an election timeout are a quorum of it. */
    private boolean activeQuorumOf(Membership next) {
        int active = 0;
        for (String v : next.voters()) {
            Progress pr = progress.get(v);
            if (v.equals(id) || (pr != null && now - pr.lastActiveTick < config.electionTimeoutTicks())) {
                active++;
            }
        }
        return active >= next.quorum();
    }

    /**
     * Proposes turning data member {@code peer} into a witness (issue 19; rules on {@link Membership}). It then keeps
     * entry bodies only while the drop rule requires. The reverse, a witness becoming a data member, needs the bodies
     * it dropped: {@link #promoteWitness}.
     *
     * @return ACCEPTED with the configuration entry's index; INVALID_CONFIG_CHANGE when {@code peer} is not a data
     *         member, is this leader, or when afterwards the data members would not outnumber the witnesses (a
     *         majority of witnesses could acknowledge an entry whose only full copy is on one disk);
     *         CONFIG_CHANGE_IN_PROGRESS, NOT_LEADER, TRANSFERRING as {@link #addVoter}
     */
    public ProposeResult makeWitness(String peer) {
        Objects.requireNonNull(peer, "peer");
        ProposeResult refused = proposalRefusal();
        if (refused != null) {
            return refused;
        }
        if (commitIndex < noopIndex || lastConfigIndex() > commitIndex) {
            return new ProposeResult(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, -1, term, null);
        }
        if (!membership.contains(peer) || membership.isWitness(peer) || peer.equals(id)) {
            return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, term, null);
        }
        Membership next = membership.withWitness(peer, true);
        if (next.dataMembers().size() <= next.witnesses().size()) {
            return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, term, null);
        }
        long index = log.lastIndex() + 1;
        appendAsLeader(List.of(new Entry(index, term, EntryType.CONFIG, next.encode())));
        return new ProposeResult(ProposeResult.Status.ACCEPTED, index, term, null);
    }

    /**
     * Turns witness {@code peer} into a data member (issue 19), online: the leader removes it from the voters, sends it
     * a snapshot taken after that removal (which replaces its whole log, bodies dropped and all, and its state) and
     * the entries after it, then adds it back as a data member once it caught up, as {@link #stageVoter} does. Until
     * then the group's voters are its data members alone. Asked again, it reports where the promotion stands; asked of
     * a peer that is no member (a witness removed for its promotion under an earlier leader), it catches it up the
     * same way.
     *
     * <p>Safety does not rest on this leader: a node that its committed configuration does not list as a witness and
     * whose log still records dropped bodies answers no append with a success ({@code refillNeeded}), so no leader
     * counts it before it installed a data member's snapshot, and its install of one replaces its log even where it
     * holds the snapshot's last entry.
     *
     * @return CATCHING_UP while it is removed, refilled and caught up; ACCEPTED with the configuration entry's index
     *         when the entry that adds it as a data member was appended by this call; INVALID_CONFIG_CHANGE when
     *         {@code peer} is a data member or this leader; NO_QUORUM_AFTER_CHANGE when the data members this leader
     *         heard from within an election timeout are no quorum of the voters without it; CONFIG_CHANGE_IN_PROGRESS,
     *         NOT_LEADER, TRANSFERRING as {@link #stageVoter}
     */
    public ProposeResult promoteWitness(String peer) {
        Objects.requireNonNull(peer, "peer");
        ProposeResult refused = proposalRefusal();
        if (refused != null) {
            return refused;
        }
        if (peer.equals(stagedPeer) && !stagedWitness && !membership.contains(peer)) {
            ProposeResult promoted = maybePromoteStaged();
            return promoted != null ? promoted : new ProposeResult(ProposeResult.Status.CATCHING_UP, -1, term, null);
        }
        boolean witness = membership.isWitness(peer);
        if (peer.equals(id) || (membership.contains(peer) && !witness)) {
            return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, term, null);
        }
        if (commitIndex < noopIndex || lastConfigIndex() > commitIndex || stagedPeer != null) {
            return new ProposeResult(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, -1, term, null);
        }
        Membership asWitness = witness ? membership : wasWitness(peer);
        if (asWitness == null) {
            // No configuration this leader knows lists it as a witness: nothing to promote (a typo, or a removal this
            // leader's log no longer holds; such a node joins as a new member, from an empty store).
            return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, term, null);
        }
        String address = asWitness.address(peer);
        if (witness) {
            Membership next = membership.without(peer);
            if (!activeQuorumOf(next)) {
                return new ProposeResult(ProposeResult.Status.NO_QUORUM_AFTER_CHANGE, -1, term, null);
            }
            if (!dataMembersHoldCommitted(next)) {
                return new ProposeResult(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, -1, term, null);
            }
            out.info("promoting witness " + peer + ": removed from the voters until it holds the whole log");
            appendAsLeader(List.of(new Entry(log.lastIndex() + 1, term, EntryType.CONFIG, next.encode())));
        } else {
            out.info("promoting " + peer + ", a witness removed for its promotion: catching it up from a snapshot");
        }
        stagedAddress = address;
        stagedWitness = false;
        // Every body it dropped precedes its removal: it drops only as a witness, and no more once it appended the
        // entry that removed it, at or before the last configuration entry here (the removal is committed or is that
        // entry).
        stage(peer, lastConfigIndex());
        return new ProposeResult(ProposeResult.Status.CATCHING_UP, -1, term, null);
    }

    /**
     * Starts catching {@code peer} up as the staged peer: its first round ends at this leader's last index, and its
     * answers count only once it installed a snapshot at or above {@code refillFloor} (-1: at once).
     */
    private void stage(String peer, long refillFloor) {
        stagedPeer = peer;
        stagedRoundTarget = log.lastIndex();
        stagedRoundStartTick = now;
        Progress pr = new Progress(log.lastIndex() + 1, now, stoodStill);
        pr.refillFloor = refillFloor;
        progress.put(peer, pr);
        sendAppend(peer, pr);
    }

    /**
     * The index at or above which the driver should take a snapshot now, for a witness being promoted that needs one
     * ({@link #promoteWitness}); -1 when none is wanted. A driver that cannot take one leaves the promotion waiting.
     */
    public long snapshotWanted() {
        return snapshotWantedAt >= 0 && role == Role.LEADER && log.storage().snapshot().index() < snapshotWantedAt
            ? snapshotWantedAt : -1;
    }

    /** The last configuration this node knows that lists {@code peer} as a witness, or null. */
    private Membership wasWitness(String peer) {
        for (int i = configHistory.size() - 1; i >= 0; i--) {
            if (configHistory.get(i).membership().isWitness(peer)) {
                return configHistory.get(i).membership();
            }
        }
        return null;
    }

    /**
     * As {@link #stageVoter}, but the peer joins as a witness (issue 19): it is caught up like any new voter, then
     * added with the witness flag, and drops bodies by the drop rule from then on. Refused with
     * INVALID_CONFIG_CHANGE when afterwards the data members would not outnumber the witnesses.
     */
    public ProposeResult stageWitness(String peer, String address) {
        Objects.requireNonNull(peer, "peer");
        if (role == Role.LEADER && !membership.contains(peer)
            && membership.dataMembers().size() <= membership.witnesses().size() + 1) {
            return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, term, null);
        }
        if (stagedPeer == null || stagedPeer.equals(peer)) {
            stagedWitness = true;
        }
        ProposeResult r = stageVoter(peer, address);
        if (stagedPeer == null && r.status() != ProposeResult.Status.ACCEPTED) {
            stagedWitness = false;
        }
        return r;
    }

    /** Proposes removing {@code peer} from the voters; removing the leader itself is allowed. */
    public ProposeResult removeVoter(String peer) {
        return proposeMembership(peer, false);
    }

    private ProposeResult proposeMembership(String peer, boolean add) {
        Objects.requireNonNull(peer, "peer");
        ProposeResult refused = proposalRefusal();
        if (refused != null) {
            return refused;
        }
        // One change at a time, and only once this leader has committed an entry of its own term: without the
        // latter, a change could be decided on a configuration a new leader does not know (the single-server change
        // bug Ongaro described in 2015, fixed this way).
        if (commitIndex < noopIndex || lastConfigIndex() > commitIndex) {
            return new ProposeResult(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, -1, term, null);
        }
        Membership next;
        if (add) {
            if (membership.contains(peer) || !membership.witnesses().isEmpty()) {
                // With a witness, an empty data member added at once would make a quorum (it and the witness) that
                // holds none of the bodies the witness dropped: it joins through stageVoter, caught up first (issue 19).
                return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, term, null);
            }
            next = membership.with(peer);
        } else {
            if (!membership.contains(peer) || membership.voters().size() == 1) {
                return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, term, null);
            }
            next = membership.without(peer);
            if (!dataMembersHoldCommitted(next)) {
                // With a witness, the data members left must hold everything committed: the witness keeps no body
                // they all had, and a witness leader sends neither dropped bodies nor snapshots (issue 19).
                return new ProposeResult(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, -1, term, null);
            }
        }
        long index = log.lastIndex() + 1;
        appendAsLeader(List.of(new Entry(index, term, EntryType.CONFIG, next.encode())));
        return new ProposeResult(ProposeResult.Status.ACCEPTED, index, term, null);
    }

    /** In a configuration with witnesses, whether its data members (one at least) all hold the commit index. */
    private boolean dataMembersHoldCommitted(Membership next) {
        if (next.witnesses().isEmpty()) {
            return true;
        }
        if (next.dataMembers().isEmpty()) {
            return false;
        }
        for (String v : next.dataMembers()) {
            Progress pr = progress.get(v);
            long end = v.equals(id) ? Math.min(log.persistedLastIndex(), durableIndex) : pr == null ? -1 : pr.match;
            if (end < commitIndex) {
                return false;
            }
        }
        return true;
    }

    /**
     * Starts handing leadership to {@code target} (thesis section 3.10): proposals are refused meanwhile, the target
     * is caught up, then sent {@link TimeoutNow}. The transfer is abandoned after an election timeout,
     * or, once TimeoutNow was sent, an election timeout after that (the target's election).
     */
    public ProposeResult transferLeadership(String target) {
        return handOver(target, false);
    }

    /**
     * Hands leadership to {@code target} as {@link #transferLeadership} does, announced first: for a heartbeat
     * interval {@link #leadTransferee()} names the target while proposals are still taken, so that a driver's clients
     * stop sending here before any proposal of theirs is refused. Then the transfer starts. Asked while a transfer
     * runs (proposals are refused already), or on a witness leader (it takes none), the transfer starts at once.
     */
    public ProposeResult announceTransfer(String target) {
        return handOver(target, true);
    }

    private ProposeResult handOver(String target, boolean announce) {
        Objects.requireNonNull(target, "target");
        if (role != Role.LEADER) {
            return new ProposeResult(ProposeResult.Status.NOT_LEADER, -1, term, leaderId);
        }
        if (target.equals(id)) {
            return new ProposeResult(ProposeResult.Status.ACCEPTED, -1, term, id);
        }
        Progress pr = progress.get(target);
        if (pr == null || !membership.contains(target)) {
            return new ProposeResult(ProposeResult.Status.UNKNOWN_PEER, -1, term, id);
        }
        if (membership.isWitness(target)) {
            // It would only hand leadership back: a witness never serves clients.
            return new ProposeResult(ProposeResult.Status.INVALID_CONFIG_CHANGE, -1, term, id);
        }
        if (announce && leadTransferee == null && !isWitness()) {
            if (!target.equals(handOverAnnounced)) {
                out.info("handing leadership over to " + target + " in " + config.heartbeatTicks() + " ticks");
                handOverAnnounced = target;
                handOverAnnouncedTick = now;
            }
        } else {
            startTransfer(target, pr);
        }
        return new ProposeResult(ProposeResult.Status.ACCEPTED, -1, term, target);
    }

    private void startTransfer(String target, Progress pr) {
        handOverAnnounced = null;
        if (!target.equals(leadTransferee)) {
            out.info("transferring leadership to " + target);
            leadTransferee = target;
            transferElapsed = 0;
            transferTimeoutNowSent = false;
        }
        if (pr.match == log.lastIndex()) {
            sendTimeoutNow(target);
        } else {
            sendAppend(target, pr);
        }
    }

    /** Starts the transfer announced a heartbeat interval ago, checked again as it is asked for (members may change). */
    private void maybeStartAnnouncedTransfer() {
        String target = handOverAnnounced;
        if (target == null || now - handOverAnnouncedTick < config.heartbeatTicks()
            || (handOverHeld && now - handOverAnnouncedTick < config.electionTimeoutTicks())) {
            return;
        }
        handOverAnnounced = null;
        handOver(target, false);
    }

    /**
     * Asks for a linearizable read (thesis section 6.4). A {@link ReadState} with {@code requestId} appears in a
     * later Ready once the read is safe; reads of a leader that loses leadership meanwhile never complete (the
     * driver times them out).
     *
     * @param requestId the caller's id for the read
     * @param lease     serve at once while the leader lease holds (a quorum acknowledged this leader within
     *                  {@code leaseTicks}); this relies on bounded clock drift. Otherwise, or when the lease lapsed,
     *                  the leader confirms its leadership with a round of heartbeats first
     * @return ACCEPTED when the read was registered, NOT_LEADER otherwise
     */
    public ProposeResult readIndex(long requestId, boolean lease) {
        if (role != Role.LEADER || isWitness()) {
            return new ProposeResult(ProposeResult.Status.NOT_LEADER, -1, term, leaderId);
        }
        if (commitIndex < noopIndex) {
            // A new leader does not know the commit index of the group until an entry of its term commits.
            readsAwaitingNoop.add(new AwaitingRead(requestId, lease));
        } else {
            registerRead(requestId, lease);
        }
        return new ProposeResult(ProposeResult.Status.ACCEPTED, commitIndex, term, id);
    }

    private void registerRead(long requestId, boolean lease) {
        boolean alone = membership.voters().size() == 1 && membership.contains(id);
        if (alone || (lease && leaseValid())) {
            readStates.add(new ReadState(requestId, commitIndex));
            return;
        }
        long readSeq = nextSeq();
        pendingReads.addLast(new PendingRead(requestId, commitIndex, readSeq));
        for (Map.Entry<String, Progress> e : progress.entrySet()) {
            sendHeartbeat(e.getKey(), e.getValue());
        }
    }

    /**
     * Tells a follower that the driver has strong evidence that {@code leader} is gone: its process no longer
     * accepts connections (a connection to it closed and its port then refused a new one), as happens when it is
     * killed. Without this, a follower notices only when an election timeout passes without a heartbeat, and with
     * leader stickiness (thesis section 4.2.3) it refuses every pre-vote until then.
     *
     * <p>If {@code leader} is this follower's leader, the follower forgets it: it grants pre-votes and votes at once
     * (a node without a leader is not in the leader's lease), and campaigns itself after a short random delay, at most
     * half an election timeout, so that the followers that all saw the leader go rarely campaign in the same tick
     * (the etcd-raft "ForgetLeader" idea, with the campaign brought forward). Anything else is ignored: a stale
     * report, a report about another peer, or one reaching a candidate or a leader.
     *
     * <p>Safety does not rest on the evidence being right: votes and terms follow the usual rules, so a wrong report
     * costs at most an election. What does rest on it is the leader lease: a leader that is still alive and serves
     * lease reads must not be deposed within its lease, which is why only a refused connection (no process listening)
     * counts as evidence, never a timeout or a reset.
     *
     * @param leader the id of the peer that is gone
     */
    public void forgetLeader(String leader) {
        Objects.requireNonNull(leader, "leader");
        if (role != Role.FOLLOWER || !leader.equals(leaderId)) {
            return;
        }
        out.info("forgot leader " + leader + ": its process is gone; campaigning soon");
        leaderId = null;
        int delay = 1 + random.nextInt(Math.max(1, config.electionTimeoutTicks() / 2));
        electionElapsed = Math.max(electionElapsed, randomizedElectionTimeout - delay);
    }

    /** Tells the leader that sending a snapshot to {@code peer} failed; replication to it starts over. */
    public void reportSnapshotFailed(String peer) {
        Progress pr = progress.get(peer);
        if (role == Role.LEADER && pr != null && pr.state == Progress.State.SNAPSHOT) {
            pr.becomeProbe(pr.match + 1);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Output

    /**
     * The snapshot this node accepted for installation and has not handed out in a {@link Ready} yet, or null. It is
     * the very {@link SnapshotMeta} instance of the {@link InstallSnapshotRequest} the core accepted, so a driver that
     * holds the bytes of several requests can tell which one the next Ready's snapshot is (the others were answered
     * without being installed: stale, or already covered).
     */
    public SnapshotMeta pendingSnapshot() {
        return log.unstableSnapshot();
    }

    /**
     * Whether the next {@link #ready()} holds a term or vote to persist: a driver that must not block its thread
     * (an event loop shared with other work) hands that Ready to a thread that may.
     */
    public boolean hardStateChanged() {
        return !currentHardState().equals(persistedHardState);
    }

    /** Whether {@link #ready()} has anything for the driver. */
    public boolean hasReady() {
        return broadcastPending || log.hasUnstable() || !msgs.isEmpty() || !readStates.isEmpty()
            || commitIndex > appliedIndex || !currentHardState().equals(persistedHardState);
    }

    /**
     * Collects what the driver must do now. The caller must handle it as {@link Ready} says, then call
     * {@link #advance(Ready)} before any other input.
     *
     * @throws IllegalStateException if the previous Ready was not advanced yet
     */
    public Ready ready() {
        if (readyOutstanding) {
            throw new IllegalStateException("ready() called again before advance()");
        }
        if (broadcastPending) {
            broadcastPending = false;
            broadcastAppend();
        }
        HardState hs = currentHardState();
        List<Entry> committed = List.of();
        if (commitIndex > appliedIndex) {
            committed = log.entries(appliedIndex + 1, commitIndex + 1, config.maxApplyBytes());
        }
        Ready rd = new Ready(hs.equals(persistedHardState) ? null : hs, role, leaderId, log.unstableSnapshot(),
            log.truncateFrom(), log.unstableEntries(), msgs, committed, commitIndex, readStates);
        msgs.clear();
        readStates.clear();
        readyOutstanding = true;
        return rd;
    }

    /**
     * Tells the core that the driver handled {@code rd}: it is durable, its messages were sent and its committed
     * entries applied.
     *
     * @throws IllegalStateException if {@code rd} is not the outstanding Ready or the log does not hold what it
     *                               asked to persist
     */
    public void advance(Ready rd) {
        advance(rd, true);
    }

    /**
     * Tells the core that the driver handled {@code rd}, where the log writes may not be durable yet: the driver
     * wrote them (the {@link LogView} shows them) and syncs them in the background. The term and vote, and a
     * snapshot, must be durable as with {@link #advance(Ready)}. The driver later reports what became durable through
     * {@link #logDurable(long, long)}; until then a leader does not count those entries for itself toward a quorum
     * (Raft paper section 5.3 counts an entry once it is stored, and "stored" means on stable storage, figure 2),
     * while followers count as soon as they answer, so the driver must hold back a follower's acknowledgement of an
     * index until that index is durable. This is etcd-raft's asynchronous storage writes idea: the leader's own disk
     * is one more replica that answers later.
     *
     * @param logDurable whether the log writes of {@code rd} are durable already (then as {@link #advance(Ready)})
     * @throws IllegalStateException if {@code rd} is not the outstanding Ready or the log does not hold what it
     *                               asked to persist
     */
    public void advance(Ready rd, boolean logDurable) {
        if (!readyOutstanding) {
            throw new IllegalStateException("advance() without an outstanding ready()");
        }
        readyOutstanding = false;
        if (rd.hardState() != null) {
            persistedHardState = rd.hardState();
        }
        if (rd.snapshot() != null) {
            // An installed snapshot is durable and replaces the whole log up to its index.
            durableIndex = rd.snapshot().index();
        }
        if (rd.truncateFrom() >= 0) {
            // Removed entries do not count any more, even if their bytes are still on disk.
            durableIndex = Math.min(durableIndex, rd.truncateFrom() - 1);
        }
        if (rd.mustPersist()) {
            log.stableTo(rd);
            if (logDurable) {
                durableIndex = log.lastIndex();
            }
        }
        if (!rd.committedEntries().isEmpty()) {
            appliedIndex = rd.committedEntries().get(rd.committedEntries().size() - 1).index();
        }
        if (role == Role.LEADER) {
            // The leader counts itself toward a quorum only for what is durable on its own disk.
            maybeCommit();
        }
    }

    /**
     * Reports that the log is durable through {@code index}, whose entry had {@code term} when the driver wrote it
     * (after {@link #advance(Ready, boolean) advance(rd, false)}). A report whose entry was replaced since (its term
     * differs now) is ignored: the replacing entries are reported by a later sync. A leader may commit as a result.
     *
     * @throws IllegalStateException between {@link #ready()} and {@link #advance(Ready)}
     */
    public void logDurable(long index, long term) {
        if (readyOutstanding) {
            throw new IllegalStateException("logDurable() between ready() and advance()");
        }
        // Log matching (Raft paper section 5.3): the same term at the same index means the same entries up to there,
        // so the whole prefix that the sync covered is still this log's.
        if (index <= durableIndex || index > log.persistedLastIndex() || log.term(index) != term) {
            return;
        }
        durableIndex = index;
        if (role == Role.LEADER) {
            maybeCommit();
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Elections

    private boolean promotable() {
        // A data member whose log still records bodies it dropped as a witness (added back without its promotion's
        // snapshot) never leads: it could serve neither those entries nor a state that saw them without bodies.
        return !leaving && membership.contains(id) && log.unstableSnapshot() == null
            && (isWitness() || log.storage().droppedBodiesThrough() < 0);
    }

    /**
     * This node is about to stop (its process removes it): from now on it never campaigns, neither at an election
     * timeout nor at a TimeoutNow, so a leadership it handed over is not handed back to it. A leader goes on leading
     * until it hands over or stops.
     */
    public void leave() {
        if (!leaving) {
            out.info("leaving: campaigns no more");
        }
        leaving = true;
    }

    /**
     * Whether this node is a leader, or heard from one within the minimum election timeout (only with
     * check-quorum). A leader that lost its quorum steps down by check-quorum, so this cannot block elections for
     * longer than an election timeout.
     */
    private boolean inLease() {
        // A node that restarted may have heard from a leader right before it stopped: for the quiet period the driver
        // gives it, it refuses votes as if it had, or it could help elect a new leader while that leader's lease holds.
        return config.checkQuorum() && (role == Role.LEADER || now < leaseQuietTicks
            || (leaderId != null && electionElapsed < config.electionTimeoutTicks()));
    }

    private void campaign(boolean preVote, String transferFrom) {
        this.transferFrom = transferFrom;
        campaignStartTick = now;
        long voteTerm;
        if (preVote) {
            becomePreCandidate();
            voteTerm = term + 1;
        } else {
            becomeCandidate();
            voteTerm = term;
        }
        votes.put(id, true);
        if (tallyVotes(preVote)) {
            return;
        }
        long lastIndex = log.lastIndex();
        long lastTerm = log.lastTerm();
        for (String peer : membership.voters()) {
            if (!peer.equals(id)) {
                send(new VoteRequest(id, peer, voteTerm, lastIndex, lastTerm, preVote, transferFrom != null));
            }
        }
    }

    private void handleVoteRequest(VoteRequest m) {
        // Raft paper section 5.2 and 5.4.1: one vote per term, first come first served, and only to a candidate whose
        // log is at least as up to date. A pre-vote is granted on the same terms for the next term, but changes no
        // state here.
        boolean canVote = m.from().equals(votedFor)
            || (votedFor == null && leaderId == null)
            || (m.preVote() && m.term() > term);
        boolean upToDate = log.isUpToDate(m.lastLogIndex(), m.lastLogTerm());
        boolean granted = canVote && upToDate;
        if (granted && !m.preVote()) {
            votedFor = m.from();
            electionElapsed = 0;
        } else if (!m.preVote() && upToDate && role != Role.LEADER
            && (m.lastLogTerm() != log.lastTerm() || m.lastLogIndex() != log.lastIndex())) {
            // Liveness only (no vote changes): a strictly more up-to-date candidate exists in this term and we could
            // not vote for it. Wait a full timeout before competing again, and without a leader longer than its
            // longest timeout (at least two election timeouts from now, unless a later term comes first), so that it,
            // not a node that cannot win, takes the next term and gets our vote there. Without pre-vote, a doomed
            // candidate that drew shorter timeouts or runs a faster clock otherwise keeps taking every term first:
            // after a single timeout from now it did so for over twenty terms in a row (simulation seed 733006668: a
            // voter behind, which had not yet learnt its new configuration). A follower of a leader keeps its usual
            // timeout: it would otherwise be slower to replace that leader for the rest of the term.
            electionElapsed = 0;
            if (leaderId == null) {
                resetRandomizedElectionTimeout();
                randomizedElectionTimeout += config.electionTimeoutTicks();
            }
        }
        if (out.debugEnabled()) {
            out.debug((granted ? "granted " : "rejected ") + (m.preVote() ? "pre-vote" : "vote") + " for "
                + m.from() + " at term " + m.term() + " (its log " + m.lastLogIndex() + "@" + m.lastLogTerm()
                + ", ours " + log.lastIndex() + "@" + log.lastTerm() + ", voted for " + votedFor + ")");
        }
        // The Ready carrying this response also carries the vote; the driver persists it before sending.
        send(new VoteResponse(id, m.from(), granted && m.preVote() ? m.term() : term, granted, m.preVote()));
    }

    private void handleVoteResponse(VoteResponse m) {
        boolean relevant = (role == Role.PRE_CANDIDATE && m.preVote()) || (role == Role.CANDIDATE && !m.preVote());
        if (!relevant || !membership.contains(m.from())) {
            return;
        }
        if (m.preVote() && m.granted() && m.term() != term + 1) {
            // A grant from an earlier pre-vote round (delayed): it says nothing about the term asked for now.
            return;
        }
        votes.putIfAbsent(m.from(), m.granted());
        tallyVotes(m.preVote());
    }

    /** Acts on the votes so far; returns true when the campaign is decided. */
    private boolean tallyVotes(boolean preVote) {
        int granted = 0;
        int rejected = 0;
        for (Map.Entry<String, Boolean> e : votes.entrySet()) {
            if (!membership.contains(e.getKey())) {
                continue;
            }
            if (e.getValue()) {
                granted++;
            } else {
                rejected++;
            }
        }
        int quorum = membership.quorum();
        if (granted >= quorum) {
            if (preVote) {
                campaign(false, transferFrom);
            } else {
                becomeLeader();
            }
            return true;
        }
        if (rejected >= quorum) {
            becomeFollower(term, null);
            return true;
        }
        return false;
    }

    private void becomeFollower(long newTerm, String leader) {
        if (newTerm > term) {
            term = newTerm;
            votedFor = null;
        }
        Role old = role;
        role = Role.FOLLOWER;
        String oldLeader = leaderId;
        leaderId = leader;
        reset();
        if (old != Role.FOLLOWER || !Objects.equals(oldLeader, leader)) {
            out.info("became follower at term " + term + (leader == null ? "" : " of " + leader));
        }
    }

    private void becomePreCandidate() {
        // Neither the term nor the vote changes (thesis section 9.6).
        role = Role.PRE_CANDIDATE;
        leaderId = null;
        reset();
        if (out.debugEnabled()) {
            out.debug("pre-campaigning for term " + (term + 1));
        }
    }

    private void becomeCandidate() {
        term++;
        votedFor = id;
        role = Role.CANDIDATE;
        leaderId = null;
        reset();
        out.info("became candidate at term " + term);
    }

    private void becomeLeader() {
        role = Role.LEADER;
        leaderId = id;
        reset();
        long next = log.lastIndex() + 1;
        for (String peer : membership.voters()) {
            if (!peer.equals(id)) {
                progress.put(peer, new Progress(next, now, stoodStill));
            }
        }
        seqTicks.clear();
        nextSeq();
        // Raft paper section 8: a blank entry of the new term lets the leader commit everything before it (an entry
        // of an older term never commits by counting replicas, section 5.4.2).
        noopIndex = next;
        appendAsLeader(List.of(new Entry(next, term, EntryType.NOOP, null)));
        out.info("became leader at term " + term + ", log ends at " + log.lastIndex());
    }

    private void reset() {
        // Acknowledgements of an older term not handed out yet go: the log they vouch for may be cut in this same
        // batch by the new term's leader (they would then claim entries this node no longer holds), and an
        // acknowledgement may always be lost.
        msgs.removeIf(m -> (m instanceof AppendEntriesResponse r && r.success() && r.term() < term)
            || (m instanceof InstallSnapshotResponse s && s.term() < term));
        electionElapsed = 0;
        heartbeatElapsed = 0;
        resetRandomizedElectionTimeout();
        votes.clear();
        progress.clear();
        leadTransferee = null;
        handOverAnnounced = null;
        transferElapsed = 0;
        transferTimeoutNowSent = false;
        stagedPeer = null;
        stagedAddress = null;
        stagedWitness = false;
        broadcastPending = false;
        leaseRevoked = false;
        pendingReads.clear();
        readsAwaitingNoop.clear();
    }

    private void resetRandomizedElectionTimeout() {
        randomizedElectionTimeout = config.electionTimeoutTicks() + random.nextInt(config.electionTimeoutTicks());
        if (membership != null && isWitness()) {
            // A witness that wins only hands leadership on; let the data members campaign first, so that it leads
            // only when it must (it alone holds the tail the survivor needs). Liveness only: votes are unchanged.
            randomizedElectionTimeout += config.electionTimeoutTicks();
        }
    }

    private void ensureFollowerOf(String leader) {
        if (role == Role.LEADER) {
            throw new RaftInvariantError("two leaders in term " + term + ": " + id + " and " + leader);
        }
        if (role == Role.PRE_CANDIDATE && leader.equals(transferFrom)
            && now - campaignStartTick < config.electionTimeoutTicks()) {
            // The leader that asked for this campaign heartbeats on until it sees the election: its pre-vote round goes
            // on (the entries are taken as a follower takes them; the leader accepts no proposal while it transfers).
            // Turned back into a follower here, the node would drop the round's grants and a transfer would complete
            // only if a round fits between two heartbeats. A round that outlives the transfer's timeout ends here.
            return;
        }
        if (role != Role.FOLLOWER || !leader.equals(leaderId)) {
            becomeFollower(term, leader);
        }
        electionElapsed = 0;
    }

    /**
     * Answers a message from an older term so that its sender learns the current term, where useful. The answer to a
     * request carries no seq ({@link #NO_SEQ}): it goes out in this node's term, which may be a term its sender leads
     * now in a later incarnation of its process, whose seqs started again from 0; with the request's seq it would
     * confirm reads of that leader that no quorum confirmed (simulation seed 444006116). The deposed sender needs only
     * the term.
     */
    private void answerStale(Message m) {
        if (m instanceof AppendEntriesRequest ar) {
            // A deposed leader (for example one that was partitioned) learns of the new term and steps down.
            send(new AppendEntriesResponse(id, m.from(), term, false, -1, ar.prevLogIndex(), log.lastIndex() + 1,
                -1, NO_SEQ));
        } else if (m instanceof InstallSnapshotRequest sr) {
            send(new AppendEntriesResponse(id, m.from(), term, false, -1, sr.snapshot().index(),
                log.lastIndex() + 1, -1, NO_SEQ));
        } else if (m instanceof VoteRequest vr) {
            // The candidate learns the current term from the rejection (Raft paper section 5.1). Without it, a
            // candidate that no higher-term node ever contacts (one outside their configuration, say) could
            // campaign in stale terms forever.
            send(new VoteResponse(id, m.from(), term, false, vr.preVote()));
        } else if (out.debugEnabled()) {
            out.debug("dropped stale " + m);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Replication: follower side

    private void handleAppend(AppendEntriesRequest m) {
        long prev = m.prevLogIndex();
        List<Entry> ents = m.entries();
        if (m.lastIndex() <= commitIndex) {
            // Everything the request covers is committed here, so it matches the leader's log (leader completeness).
            learnDataDurable(m.dataDurableIndex(), commitIndex, m.lastIndex());
            answerAppend(m, commitIndex);
            return;
        }
        if (prev < commitIndex) {
            // Committed entries match; only look at what follows them.
            ents = ents.subList((int) (commitIndex - prev), ents.size());
            prev = commitIndex;
        } else if (!log.matchTerm(prev, m.prevLogTerm())) {
            long conflictTerm;
            long conflictIndex;
            if (prev > log.lastIndex()) {
                conflictTerm = -1;
                conflictIndex = log.lastIndex() + 1;
            } else {
                // Fast backtracking (Raft paper section 5.3, end): report the first index of the conflicting term, so
                // that the leader skips the whole term in one round trip. Committed entries never conflict, so the
                // scan stops above the commit index.
                conflictTerm = log.term(prev);
                conflictIndex = prev;
                while (conflictIndex - 1 > commitIndex && log.term(conflictIndex - 1) == conflictTerm) {
                    conflictIndex--;
                }
            }
            if (out.debugEnabled()) {
                out.debug("rejected append at " + m.prevLogIndex() + "@" + m.prevLogTerm() + " from " + m.from()
                    + ": conflict term " + conflictTerm + " from index " + conflictIndex);
            }
            send(new AppendEntriesResponse(id, m.from(), term, false, -1, m.prevLogIndex(), conflictIndex,
                conflictTerm, m.seq()));
            return;
        }
        // Skip what we already have; replace from the first conflicting entry on (Raft paper, figure 2, steps 3-4).
        for (int i = 0; i < ents.size(); i++) {
            Entry e = ents.get(i);
            if (e.index() <= log.lastIndex() && log.term(e.index()) == e.term()) {
                continue;
            }
            if (e.index() <= commitIndex) {
                throw new RaftInvariantError("leader " + m.from() + " overwrites committed entry " + e.index()
                    + " (commit " + commitIndex + ")");
            }
            appendToLog(ents.subList(i, ents.size()));
            break;
        }
        // The commit index follows the leader's, but never past what this request proved to match.
        long newCommit = Math.min(m.leaderCommit(), m.lastIndex());
        if (newCommit > commitIndex) {
            commitIndex = newCommit;
        }
        learnDataDurable(m.dataDurableIndex(), m.lastIndex(), m.lastIndex());
        answerAppend(m, m.lastIndex());
    }

    /**
     * Answers an append this log now matches through {@code match}: a success, unless this node needs a refill
     * ({@link #refillNeeded()}), whose log then counts for nothing: a rejection, so that no leader counts it (the
     * promoting leader sends it a snapshot; another never makes it a voter).
     */
    private void answerAppend(AppendEntriesRequest m, long match) {
        if (refillNeeded()) {
            if (out.debugEnabled()) {
                out.debug("append from " + m.from() + " rejected: bodies through " + log.storage().droppedBodiesThrough()
                    + " were dropped here as a witness; a data member's snapshot replaces this log first");
            }
            send(new AppendEntriesResponse(id, m.from(), term, false, -1, m.prevLogIndex(), 0, -1, m.seq()));
            return;
        }
        send(new AppendEntriesResponse(id, m.from(), term, true, match, -1, -1, -1, m.seq(), leadReady()));
    }

    /**
     * Whether this node's log records bodies it dropped as a witness while its committed configuration no longer
     * lists it as one (it is being promoted, issue 19): such a log must not count toward anything until a data
     * member's snapshot replaced it ({@link #handleInstallSnapshot}).
     */
    private boolean refillNeeded() {
        return log.storage().droppedBodiesThrough() >= 0 && !membershipAt(commitIndex).isWitness(id);
    }

    private void handleInstallSnapshot(InstallSnapshotRequest m) {
        SnapshotMeta s = m.snapshot();
        long match;
        long dropped = log.storage().droppedBodiesThrough();
        if (dropped >= 0 && !s.membership().isWitness(id) && log.unstableSnapshot() != null) {
            // One is installed in this pass already (this one a duplicate, or older): it is answered once installed.
            return;
        }
        if (dropped >= 0 && !s.membership().isWitness(id)) {
            // A witness being promoted (issue 19): its log, even where it holds the snapshot's last entry, lacks bodies
            // it dropped, and its state may have seen entries without them. The snapshot replaces both, if it covers
            // every dropped body; else the leader is told nothing was installed, and sends a later one.
            if (s.index() < dropped) {
                out.info("snapshot " + s.index() + "@" + s.term() + " from " + m.from() + " not installed: bodies "
                    + "through " + dropped + " were dropped here");
                send(new InstallSnapshotResponse(id, m.from(), term, -1, m.seq()));
                return;
            }
            if (m.data() == null) {
                throw new IllegalArgumentException("InstallSnapshotRequest stepped without its data: " + m);
            }
            out.info("installing snapshot " + s.index() + "@" + s.term() + " from " + m.from() + " in place of a log "
                + "whose bodies through " + dropped + " were dropped (commit index was " + commitIndex + ")");
            installReplacingLog(s);
            send(new InstallSnapshotResponse(id, m.from(), term, s.index(), m.seq()));
            return;
        }
        if (s.index() <= commitIndex) {
            match = commitIndex;
        } else if (log.matchTerm(s.index(), s.term())) {
            // Our log already holds the snapshot's last entry: it is committed, nothing to install.
            commitIndex = s.index();
            match = s.index();
        } else {
            if (m.data() == null) {
                throw new IllegalArgumentException("InstallSnapshotRequest stepped without its data: " + m);
            }
            out.info("installing snapshot " + s.index() + "@" + s.term() + " from " + m.from());
            installReplacingLog(s);
            match = s.index();
        }
        send(new InstallSnapshotResponse(id, m.from(), term, match, m.seq()));
    }

    /** The log and the applied state become the snapshot's: nothing before or after it is kept. */
    private void installReplacingLog(SnapshotMeta s) {
        log.restore(s);
        commitIndex = s.index();
        appliedIndex = s.index();
        configHistory.clear();
        configHistory.add(new ConfigPoint(s.index(), s.membership()));
        setMembership(s.membership());
    }

    // ------------------------------------------------------------------------------------------------------------
    // Replication: leader side

    /**
     * Why a proposal made now would be refused ({@link ProposeResult.Status#NOT_LEADER}, or
     * {@link ProposeResult.Status#TRANSFERRING} while leadership is being handed over), or null when it would be
     * accepted. A driver asks before it builds entries whose content depends on being taken (the next proposal in
     * this state is accepted, as nothing else runs in between).
     */
    public ProposeResult proposalRefusal() {
        if (role != Role.LEADER) {
            return new ProposeResult(ProposeResult.Status.NOT_LEADER, -1, term, leaderId);
        }
        if (isWitness()) {
            // A witness leads only to hand its tail to a data member (Membership, rule 2): it takes nothing from
            // clients, whose entries it could not keep.
            return new ProposeResult(ProposeResult.Status.NOT_LEADER, -1, term, leadTransferee);
        }
        if (leadTransferee != null) {
            return new ProposeResult(ProposeResult.Status.TRANSFERRING, -1, term, leadTransferee);
        }
        return null;
    }

    private void appendAsLeader(List<Entry> ents) {
        appendToLog(ents);
        // Sent when the Ready is built, so that proposals arriving together travel in one message per follower.
        broadcastPending = true;
    }

    /** Appends to the log and tracks configuration entries: a configuration is in force once appended. */
    private void appendToLog(List<Entry> ents) {
        long first = ents.get(0).index();
        boolean changed = false;
        while (configHistory.size() > 1 && configHistory.get(configHistory.size() - 1).index() >= first) {
            // Thesis section 4.1: a truncated configuration entry no longer counts; fall back to the previous one.
            configHistory.remove(configHistory.size() - 1);
            changed = true;
        }
        for (Entry e : ents) {
            if (e.type() == EntryType.CONFIG) {
                configHistory.add(new ConfigPoint(e.index(), Membership.decode(e.data())));
                changed = true;
            }
        }
        log.append(ents);
        if (changed) {
            setMembership(configHistory.get(configHistory.size() - 1).membership());
        }
    }

    private void setMembership(Membership next) {
        if (next.equals(membership)) {
            return;
        }
        out.info("voters now " + next.voters() + (next.witnesses().isEmpty() ? "" : ", witnesses "
            + next.witnesses()) + " (were " + membership + ")");
        membership = next;
        if (!next.isWitness(id)) {
            witnessDropIndex = -1;
        } else if (witnessDropIndex > appliedIndex) {
            // What the leader allowed was judged on the data members of the configuration it knew; the driver dropped
            // at most the applied part yet. The rest waits for a data-durable index judged on this configuration.
            witnessDropIndex = appliedIndex;
        }
        if (role != Role.LEADER) {
            return;
        }
        // A removed peer keeps receiving entries until its removal commits, so that it learns of it and stops
        // campaigning; it no longer counts toward any quorum (those count voters only).
        for (String peer : next.voters()) {
            if (!peer.equals(id) && !progress.containsKey(peer)) {
                progress.put(peer, new Progress(log.lastIndex() + 1, now, stoodStill));
            }
        }
        if (leadTransferee != null && !next.contains(leadTransferee)) {
            leadTransferee = null;
        }
    }

    private long lastConfigIndex() {
        return configHistory.get(configHistory.size() - 1).index();
    }

    private void broadcastAppend() {
        for (Map.Entry<String, Progress> e : progress.entrySet()) {
            sendAppend(e.getKey(), e.getValue());
        }
    }

    /**
     * Sends what the follower's state allows: entries from {@code next}, a probe, or a snapshot.
     *
     * @return whether a message was sent
     */
    private boolean sendAppend(String peer, Progress pr) {
        if (pr.paused(config.maxInflightMessages(), config.maxInflightBytes())) {
            return false;
        }
        if (pr.refillFloor >= 0) {
            // A witness being promoted gets a snapshot taken after its removal first; heartbeats meanwhile.
            if (log.storage().snapshot().index() >= pr.refillFloor) {
                sendSnapshot(peer, pr);
                return true;
            }
            snapshotWantedAt = Math.max(snapshotWantedAt, pr.refillFloor);
            return false;
        }
        long prev = pr.next - 1;
        long prevTerm = log.term(prev);
        if (prevTerm < 0 || pr.next < log.firstIndex()) {
            if (isWitness()) {
                // A witness's state holds no application data worth sending; a data member will send its own.
                return false;
            }
            sendSnapshot(peer, pr);
            return true;
        }
        long last = log.lastIndex();
        if (pr.state == Progress.State.REPLICATE && pr.next > last) {
            return false;
        }
        if (pr.next <= last && pr.next <= droppedThrough()) {
            // Membership rule 4: a witness never sends an entry whose body it may have dropped. By the drop rule
            // every data member held it; the follower gets it once a data member leads.
            if (out.debugEnabled()) {
                out.debug(peer + " needs " + pr.next + ", whose body this witness dropped (through "
                    + droppedThrough() + ")");
            }
            return false;
        }
        List<Entry> ents = List.of();
        if (pr.next <= last) {
            long hi = Math.min(last + 1, pr.next + config.maxEntriesPerMessage());
            ents = log.entries(pr.next, hi, config.maxBytesPerMessage());
        }
        send(new AppendEntriesRequest(id, peer, term, prev, prevTerm, ents, commitIndex, seq, dataDurableIndex()));
        if (pr.state == Progress.State.REPLICATE) {
            long bytes = 0;
            for (Entry e : ents) {
                bytes += e.sizeBytes();
            }
            if (!pr.hasInflight()) {
                // The replication timeout counts from the oldest unacknowledged message.
                pr.lastProgressTick = now;
            }
            pr.next = ents.get(ents.size() - 1).index() + 1;
            pr.addInflight(pr.next - 1, bytes);
        } else {
            pr.probeSent = true;
            pr.lastProgressTick = now;
        }
        return true;
    }

    private void sendSnapshot(String peer, Progress pr) {
        SnapshotMeta snap = log.storage().snapshot();
        if (snap.index() < 0) {
            throw new RaftInvariantError("follower " + peer + " needs index " + pr.next + " but the log starts at "
                + log.firstIndex() + " with no snapshot");
        }
        out.info("sending snapshot " + snap.index() + "@" + snap.term() + " to " + peer);
        pr.becomeSnapshot(snap.index());
        pr.lastProgressTick = now;
        send(new InstallSnapshotRequest(id, peer, term, snap, seq, null));
    }

    /** An empty AppendEntries at a position the follower is known to hold: keeps its timer and confirms leadership. */
    private void sendHeartbeat(String peer, Progress pr) {
        long prev = pr.match;
        long prevTerm = log.term(prev);
        if (prevTerm < 0) {
            prev = -1;
            prevTerm = 0;
        }
        send(new AppendEntriesRequest(id, peer, term, prev, prevTerm, List.of(), Math.min(commitIndex, prev), seq,
            dataDurableIndex()));
    }

    private void heartbeat() {
        nextSeq();
        for (Map.Entry<String, Progress> e : progress.entrySet()) {
            String peer = e.getKey();
            Progress pr = e.getValue();
            switch (pr.state) {
                case PROBE:
                    pr.probeSent = false;
                    sendAppend(peer, pr);
                    if (pr.state == Progress.State.PROBE && !pr.probeSent) {
                        sendHeartbeat(peer, pr);
                    }
                    break;
                case REPLICATE:
                    if (pr.hasInflight() && now - pr.lastProgressTick >= config.replicationTimeoutTicks()) {
                        // Nothing acknowledged for a while: messages were lost. Find out where we stand again.
                        pr.becomeProbe(pr.match + 1);
                        sendAppend(peer, pr);
                    } else if (!sendAppend(peer, pr)) {
                        // Nothing new to send: a heartbeat keeps the follower's timer and confirms leadership.
                        sendHeartbeat(peer, pr);
                    }
                    break;
                default:
                    if (now - pr.lastProgressTick >= (long) SNAPSHOT_TIMEOUT_ELECTIONS * config.electionTimeoutTicks()) {
                        pr.becomeProbe(pr.match + 1);
                        sendAppend(peer, pr);
                    } else {
                        sendHeartbeat(peer, pr);
                    }
                    break;
            }
        }
    }

    private void handleAppendResponse(AppendEntriesResponse m) {
        Progress pr = progress.get(m.from());
        if (pr == null) {
            return;
        }
        answered(pr);
        boolean seqAdvanced = m.seq() > pr.ackedSeq && m.seq() <= seq;
        if (seqAdvanced) {
            pr.ackedSeq = m.seq();
        }
        if (m.success() && pr.refillFloor >= 0) {
            // A witness being promoted: what its log matches counts only once a snapshot replaced it.
            if (seqAdvanced) {
                advanceReads();
            }
            return;
        }
        if (m.success()) {
            pr.leadReady = m.leadReady();
            boolean grew = pr.maybeUpdate(m.matchIndex());
            if (grew) {
                pr.lastProgressTick = now;
            }
            switch (pr.state) {
                case PROBE:
                    if (grew || pr.match == m.matchIndex()) {
                        pr.becomeReplicate();
                    }
                    break;
                case SNAPSHOT:
                    if (pr.match >= pr.pendingSnapshot) {
                        pr.becomeReplicate();
                    }
                    break;
                default:
                    pr.freeInflightTo(m.matchIndex());
                    break;
            }
            if (grew) {
                maybeCommit();
                if (role != Role.LEADER) {
                    return;
                }
            }
            if (m.from().equals(leadTransferee) && pr.match == log.lastIndex()) {
                out.info("transferee " + m.from() + " caught up at " + pr.match + ", sending TimeoutNow");
                sendTimeoutNow(m.from());
            } else if (leadTransferee == null) {
                maybeHandOffAsWitness();
            }
            sendAppend(m.from(), pr);
        } else {
            boolean stale = m.rejectedIndex() <= pr.match || pr.state == Progress.State.SNAPSHOT
                || (pr.state == Progress.State.PROBE && m.rejectedIndex() != pr.next - 1);
            if (stale) {
                // An answer to an older request (delayed or duplicated): what it says is already known.
                if (seqAdvanced) {
                    advanceReads();
                }
                return;
            }
            long next = m.conflictIndex();
            if (m.conflictTerm() >= 0) {
                // Skip to just after our last entry of the follower's conflicting term, if we have that term.
                long i = Math.min(m.rejectedIndex(), log.lastIndex());
                while (i >= log.firstIndex() && log.term(i) > m.conflictTerm()) {
                    i--;
                }
                if (i >= log.firstIndex() - 1 && log.term(i) == m.conflictTerm()) {
                    next = i + 1;
                }
            }
            next = Math.max(pr.match + 1, Math.min(next, m.rejectedIndex()));
            if (out.debugEnabled()) {
                out.debug(m.from() + " rejected " + m.rejectedIndex() + ", probing from " + next);
            }
            pr.becomeProbe(next);
            sendAppend(m.from(), pr);
        }
        if (seqAdvanced) {
            advanceReads();
        }
    }

    private void handleSnapshotResponse(InstallSnapshotResponse m) {
        Progress pr = progress.get(m.from());
        if (pr == null) {
            return;
        }
        answered(pr);
        if (m.seq() > pr.ackedSeq && m.seq() <= seq) {
            pr.ackedSeq = m.seq();
            advanceReads();
        }
        if (pr.refillFloor >= 0) {
            if (pr.state != Progress.State.SNAPSHOT || (m.matchIndex() >= 0 && m.matchIndex() < pr.pendingSnapshot)) {
                // An answer to an earlier snapshot: this one is still on its way.
                return;
            }
            if (m.matchIndex() < 0) {
                // It holds dropped bodies the snapshot does not cover: a later snapshot is wanted.
                out.info(m.from() + " did not install snapshot " + pr.pendingSnapshot + "; waiting for a later one");
                pr.refillFloor = Math.max(pr.refillFloor, pr.pendingSnapshot + 1);
                pr.becomeProbe(pr.match + 1);
                sendAppend(m.from(), pr);
                return;
            }
            out.info(m.from() + " installed snapshot " + pr.pendingSnapshot + " in place of its witness log; catching "
                + "it up from there");
            pr.refillFloor = -1;
        }
        if (pr.maybeUpdate(m.matchIndex())) {
            pr.lastProgressTick = now;
            maybeCommit();
            if (role != Role.LEADER) {
                return;
            }
        }
        if (pr.state == Progress.State.SNAPSHOT) {
            pr.becomeProbe(pr.match + 1);
            sendAppend(m.from(), pr);
        }
    }

    /**
     * Advances the commit index to the highest index stored on a quorum of voters, but only if that entry is of the
     * current term (Raft paper section 5.4.2: an older entry commits only under a newer one).
     */
    private void maybeCommit() {
        List<String> voters = membership.voters();
        long[] matches = new long[voters.size()];
        for (int i = 0; i < matches.length; i++) {
            String v = voters.get(i);
            matches[i] = v.equals(id) ? Math.min(log.persistedLastIndex(), durableIndex) : progress.get(v).match;
        }
        Arrays.sort(matches);
        long quorumIndex = matches[matches.length - membership.quorum()];
        if (quorumIndex > commitIndex && log.term(quorumIndex) == term) {
            commitIndex = quorumIndex;
            onCommitAdvanced();
        }
    }

    private void onCommitAdvanced() {
        if (commitIndex >= noopIndex && !readsAwaitingNoop.isEmpty()) {
            List<AwaitingRead> waiting = new ArrayList<>(readsAwaitingNoop);
            readsAwaitingNoop.clear();
            for (AwaitingRead r : waiting) {
                registerRead(r.requestId(), r.lease());
            }
        }
        if (!membership.contains(id) && commitIndex >= lastConfigIndex()) {
            // Thesis section 4.2.2: a leader that removed itself leads until the change commits, then steps down,
            // handing over to the most up-to-date voter at once instead of waiting for an election timeout.
            String successor = null;
            long best = -1;
            for (Map.Entry<String, Progress> e : progress.entrySet()) {
                if (membership.contains(e.getKey()) && e.getValue().match > best) {
                    best = e.getValue().match;
                    successor = e.getKey();
                }
            }
            out.info("removed from the group at " + lastConfigIndex() + ", stepping down");
            if (successor != null && best == log.lastIndex()) {
                send(new TimeoutNow(id, successor, term));
            }
            becomeFollower(term, null);
            return;
        }
        if (commitIndex >= lastConfigIndex()) {
            progress.keySet().removeIf(p -> !membership.contains(p) && !p.equals(stagedPeer));
        }
        // Followers learn of the new commit index with the next append or heartbeat; send one now to those that
        // are idle so that they apply without waiting for a heartbeat.
        broadcastPending = true;
    }

    private boolean quorumActive() {
        int active = 0;
        for (String v : membership.voters()) {
            if (v.equals(id)) {
                active++;
            } else {
                Progress pr = progress.get(v);
                // Silence in ticks this leader ran: while it stood still it sent nothing to answer (see skipTicks).
                if (pr != null && now - pr.lastActiveTick - (stoodStill - pr.stoodStillAtActive)
                    < config.electionTimeoutTicks()) {
                    active++;
                }
            }
        }
        return active >= membership.quorum();
    }

    /**
     * The data-durable index this leader tells its followers (Membership, rule 3): the lowest durable end among the
     * data members of the configuration in force and of the last committed one, never above the commit index; -1 in a
     * group without witnesses (nobody needs it) or while a data member's end is unknown.
     */
    private long dataDurableIndex() {
        if (membership.witnesses().isEmpty()) {
            return -1;
        }
        // Every data member of the last committed configuration and of every later one: until a removal commits, the
        // removed member may still be needed for an election (Raft thesis section 4.1: either configuration can rule).
        TreeSet<String> data = new TreeSet<>();
        for (int i = configHistory.size() - 1; i >= 0; i--) {
            ConfigPoint p = configHistory.get(i);
            data.addAll(p.membership().dataMembers());
            if (p.index() <= commitIndex) {
                break;
            }
        }
        long min = commitIndex;
        for (String v : data) {
            long end;
            if (v.equals(id)) {
                end = Math.min(log.persistedLastIndex(), durableIndex);
            } else {
                Progress pr = progress.get(v);
                end = pr == null ? -1 : pr.match;
            }
            min = Math.min(min, end);
        }
        return min;
    }

    /**
     * On a witness, takes the leader's data-durable index into the drop index, bounded by {@code matched}, the end of
     * the log the request proved to match the leader's, and by the commit index: what lies beyond those might not be
     * the entry the data members hold.
     *
     * <p>A permission is judged on the data members of the configurations the leader knew when it sent the request.
     * It counts only when the request covers this node's latest configuration entry ({@code sentEnd}, the end of the
     * request, is at or past it): the leader's log then held that entry, so it judged on that configuration or a later
     * one. A request sent before a configuration change and delivered after it (the network reorders and delays) was
     * judged on the older data members only: a member added since may lack what they held, and with the witness's
     * copy gone it could only get it from them. Such a permission is ignored, as {@link #setMembership} takes back the
     * part of an earlier one not used yet (issue 19; the simulation's drop-rule check found both).
     */
    private void learnDataDurable(long dataDurable, long matched, long sentEnd) {
        if (!isWitness() || sentEnd < lastConfigIndex()) {
            return;
        }
        long drop = Math.min(dataDurable, Math.min(matched, commitIndex));
        if (drop > witnessDropIndex) {
            witnessDropIndex = drop;
        }
    }

    /** The highest index whose body this node may no longer hold: what it dropped, or may drop, as a witness. */
    private long droppedThrough() {
        return Math.max(log.storage().droppedBodiesThrough(), isWitness() ? witnessDropIndex : -1);
    }

    private boolean isWitness() {
        return membership.isWitness(id);
    }

    /**
     * A witness that leads hands leadership to the data member with the most of its log (Membership, rule 2). The
     * transfer sends TimeoutNow once that member holds the whole log, and is retried after a timed-out attempt.
     */
    private void maybeHandOffAsWitness() {
        if (role != Role.LEADER || !isWitness() || leadTransferee != null) {
            return;
        }
        String best = null;
        long bestMatch = -2;
        for (String v : membership.dataMembers()) {
            Progress pr = progress.get(v);
            if (pr != null && pr.responded && pr.match > bestMatch) {
                best = v;
                bestMatch = pr.match;
            }
        }
        if (best != null) {
            transferLeadership(best);
        }
    }

    /**
     * Records an answer of a follower. A silence of more than half an election timeout (or two heartbeats) since its
     * previous answer restarts its steady time ({@link Progress#steadySinceTick}). A stall of this leader looks the
     * same (it heard nothing while it stood still): a process that stalls that long more often than every
     * election timeout never hands its leadership to the preferred node, which then would not keep it either.
     */
    private void answered(Progress pr) {
        if (!pr.responded || now - pr.lastActiveTick > longSilenceTicks()) {
            pr.steadySinceTick = now;
        }
        pr.lastActiveTick = now;
        pr.stoodStillAtActive = stoodStill;
        pr.responded = true;
    }

    /**
     * Tells the core whether this node, were it to lead now, could serve at once: a driver whose application runs
     * behind its log (a broker still dispatching what it caught up on after a restart) says no, so that its group's
     * leader does not hand it the leadership yet (issue 18). True until said otherwise.
     */
    public void setLeadReady(boolean ready) {
        driverLeadReady = ready;
    }

    /**
     * Tells the core, before a tick, whether its driver's clients still have proposals on their way that they sent
     * before they saw a hand-over announced ({@link #announceTransfer}): a broker's send let through as master just
     * before, whose put has not reached the core yet. The announced transfer then waits for them, an election timeout
     * at most, instead of starting after a heartbeat interval and refusing them as TRANSFERRING (issue 18). False
     * until said otherwise.
     */
    public void setHandOverHeld(boolean held) {
        handOverHeld = held;
    }

    /**
     * Whether a successful append answer says this node is ready to lead: only its group's preferred leader says so
     * (the only node a leader hands its leadership to unasked), when its driver is ready and its application is at
     * most a message behind its commit index.
     */
    private boolean leadReady() {
        return driverLeadReady && id.equals(config.preferredLeader()) && !isWitness()
            && commitIndex - appliedIndex <= config.maxEntriesPerMessage();
    }

    /** A silence of a follower longer than this many ticks restarts its steady time ({@link #answered}). */
    private long longSilenceTicks() {
        return Math.max(2L * config.heartbeatTicks(), config.electionTimeoutTicks() / 2);
    }

    private void maybeTransferToPreferred() {
        String preferred = config.preferredLeader();
        if (preferred == null || preferred.equals(id) || leadTransferee != null || handOverAnnounced != null
            || now < preferredRetryTick || commitIndex < noopIndex || !membership.contains(preferred)
            || membership.isWitness(preferred)) {
            return;
        }
        Progress pr = progress.get(preferred);
        // Handed over only once it answered steadily for an election timeout and says it could serve at once: right
        // after its restart a node often stalls (its process starting, its code not compiled yet) and would lose the
        // leadership to an election, and a broker still dispatching what it caught up on would keep its clients
        // waiting before it serves as master.
        // Silent now for longer than a long silence, it is not steady, even before its next answer says so.
        if (pr != null && pr.responded && pr.leadReady && now - pr.lastActiveTick <= longSilenceTicks()
            && now - pr.steadySinceTick >= (long) PREFERRED_STEADY_ELECTIONS * config.electionTimeoutTicks()
            && log.lastIndex() - pr.match <= config.maxEntriesPerMessage()) {
            out.info("preferred leader " + preferred + " is caught up");
            announceTransfer(preferred);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Reads

    private long nextSeq() {
        seq++;
        seqTicks.put(seq, now);
        return seq;
    }

    /** The highest broadcast seq that a quorum of voters (the leader counting itself) acknowledged. */
    private long quorumAckedSeq() {
        List<String> voters = membership.voters();
        long[] acked = new long[voters.size()];
        for (int i = 0; i < acked.length; i++) {
            String v = voters.get(i);
            Progress pr = progress.get(v);
            acked[i] = v.equals(id) ? seq : (pr == null ? -1 : pr.ackedSeq);
        }
        Arrays.sort(acked);
        return acked[acked.length - membership.quorum()];
    }

    /**
     * Whether the lease holds: a quorum acknowledged a message this leader sent less than {@code leaseTicks} ago.
     * Followers with check-quorum ignore vote requests for an election timeout after they hear from the leader,
     * which is after it sent; so no other leader can exist until then, up to clock drift.
     */
    private boolean leaseValid() {
        if (!config.checkQuorum() || commitIndex < noopIndex || leaseRevoked) {
            return false;
        }
        long acked = quorumAckedSeq();
        Map.Entry<Long, Long> sent = seqTicks.floorEntry(acked);
        return sent != null && now - sent.getValue() < config.leaseTicks();
    }

    private void advanceReads() {
        long acked = quorumAckedSeq();
        while (!pendingReads.isEmpty() && pendingReads.peekFirst().seq() <= acked) {
            PendingRead r = pendingReads.removeFirst();
            readStates.add(new ReadState(r.requestId(), r.index()));
        }
        // Keep the tick of the quorum-acknowledged seq for the lease; older ones are no longer needed.
        seqTicks.headMap(acked).clear();
    }

    /** Sends the transfer's target TimeoutNow; the first one restarts the transfer's clock ({@link #transferElapsed}). */
    private void sendTimeoutNow(String target) {
        if (!transferTimeoutNowSent) {
            transferTimeoutNowSent = true;
            transferElapsed = 0;
        }
        send(new TimeoutNow(id, target, term));
    }

    private void send(Message m) {
        if (m instanceof TimeoutNow) {
            leaseRevoked = true;
        }
        if (out.debugEnabled()) {
            out.debug("send " + m);
        }
        msgs.add(m);
    }

    private HardState currentHardState() {
        return term == persistedHardState.term() && Objects.equals(votedFor, persistedHardState.votedFor())
            ? persistedHardState : new HardState(term, votedFor);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Observers (for the driver, status and tests)

    /** This node's id. */
    public String id() {
        return id;
    }

    /** The protocol settings this node runs with. */
    public RaftConfig config() {
        return config;
    }

    /** The current role. */
    public Role role() {
        return role;
    }

    /** The current term. */
    public long term() {
        return term;
    }

    /** The vote cast in the current term, or null. */
    public String votedFor() {
        return votedFor;
    }

    /** The known leader of the current term, or null. */
    public String leaderId() {
        return leaderId;
    }

    /**
     * On a leader handing its leadership over ({@link #transferLeadership}), or about to hand it to its preferred
     * leader, the node it hands it to; else null.
     */
    public String leadTransferee() {
        return role != Role.LEADER ? null : leadTransferee != null ? leadTransferee : handOverAnnounced;
    }

    /**
     * On a witness, the highest index whose entry body the driver may drop from its log (the drop rule on
     * {@link Membership}): every data member holds that entry durably and it is committed. It only grows while this
     * node is a witness; the driver drops at its leisure (dropping less is always safe). -1 on a data member.
     */
    public long witnessDropIndex() {
        return witnessDropIndex;
    }

    /** The highest index known to be committed. */
    public long commitIndex() {
        return commitIndex;
    }

    /** The highest index the driver reported applied. */
    public long appliedIndex() {
        return appliedIndex;
    }

    /** The last index of this node's log known to be durable (see {@link #logDurable(long, long)}). */
    public long durableIndex() {
        return Math.min(log.persistedLastIndex(), durableIndex);
    }

    /** The index of the last entry, persisted or not. */
    public long lastIndex() {
        return log.lastIndex();
    }

    /** The voters in force (the latest configuration in the log, committed or not). */
    public Membership membership() {
        return membership;
    }

    /**
     * The configuration in force at {@code index}, for a snapshot taken there.
     *
     * @throws IllegalArgumentException if {@code index} is before the oldest configuration this node knows
     */
    public Membership membershipAt(long index) {
        for (int i = configHistory.size() - 1; i >= 0; i--) {
            if (configHistory.get(i).index() <= index) {
                return configHistory.get(i).membership();
            }
        }
        if (configHistory.get(0).index() == -1 || index < -1) {
            return configHistory.get(0).membership();
        }
        throw new IllegalArgumentException("no configuration known at " + index);
    }

    /** The leader's view of each follower (empty unless leader), sorted by id. */
    public List<FollowerProgress> progress() {
        List<FollowerProgress> list = new ArrayList<>();
        for (Map.Entry<String, Progress> e : progress.entrySet()) {
            list.add(followerProgress(e.getKey(), e.getValue()));
        }
        return list;
    }

    /** The leader's view of {@code peer}; null unless this node leads and replicates to it. */
    public FollowerProgress progress(String peer) {
        Progress pr = progress.get(peer);
        return pr == null ? null : followerProgress(peer, pr);
    }

    private FollowerProgress followerProgress(String peer, Progress pr) {
        return new FollowerProgress(peer, pr.match, pr.next, pr.state.name(),
            pr.responded && now - pr.lastActiveTick < config.electionTimeoutTicks());
    }
}
