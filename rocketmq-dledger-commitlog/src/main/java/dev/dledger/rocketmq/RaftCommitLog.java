package dev.dledger.rocketmq;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.RaftConfig;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.AppendResult;
import dev.dledger.raft.server.FileNodeStorage;
import dev.dledger.raft.server.NodeOptions;
import dev.dledger.raft.server.NodeStatus;
import dev.dledger.raft.server.RaftGroupNode;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.store.EntryFormat;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.NettyTransport;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.apache.rocketmq.common.UtilAll;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageExtBatch;
import org.apache.rocketmq.common.message.MessageVersion;
import org.apache.rocketmq.common.sysflag.MessageSysFlag;
import org.apache.rocketmq.store.AppendMessageResult;
import org.apache.rocketmq.store.AppendMessageStatus;
import org.apache.rocketmq.store.CommitLog;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.DispatchRequest;
import org.apache.rocketmq.store.MessageExtEncoder;
import org.apache.rocketmq.store.PutMessageContext;
import org.apache.rocketmq.store.PutMessageResult;
import org.apache.rocketmq.store.PutMessageStatus;
import org.apache.rocketmq.store.SelectMappedBufferResult;
import org.apache.rocketmq.store.logfile.MappedFile;
import org.apache.rocketmq.common.message.MessageExtBrokerInner;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * RocketMQ's CommitLog on a Raft group: every message is one entry of the group's log, in DLedger's on-disk format,
 * so a store written by stock DLedger mode opens in place.
 *
 * <p>Offsets: a message's physical offset is its entry's position plus the 48-byte entry header, written into the
 * message (PHYSICALOFFSET) just before the entry is stored on the leader, so ConsumeQueue offsets, message ids and
 * {@code wroteOffset} point at the message itself. Scanners (reput, recovery) see the headers and step over them.
 * The max and confirm offsets are the committed end: nothing beyond it is readable or dispatched.
 *
 * <p>Puts: only the leader takes them, and only in the term the role handler opened them for
 * ({@link #openForPuts}, once the queue offset table was rebuilt from everything committed); the broker also refuses
 * puts while this node is a SLAVE. A message's queue offset is taken on the Raft node's thread when its entry is
 * certain to be appended, so a refused put takes none and a queue's offsets in the log have no gap. The future
 * completes once the entry is committed by a quorum. Outcomes map to {@link PutMessageStatus}: no quorum in time is
 * {@code IN_SYNC_REPLICAS_NOT_ENOUGH}, not leader (or leadership lost meanwhile, or puts not open) is
 * {@code SERVICE_NOT_AVAILABLE}, too many puts waiting is {@code OS_PAGE_CACHE_BUSY}.
 *
 * <p>Raft NOOP and CONFIG entries are dispatched as rolled-back transaction records of no topic a consumer can see,
 * so every dispatcher skips them and reput moves over them.
 */
public class RaftCommitLog extends CommitLog {

    /** The DLedger entry header in front of every message. */
    public static final int BODY_OFFSET = EntryFormat.HEADER_SIZE;
    /** The topic given to Raft's own entries when they are dispatched (no queue is ever built for it). */
    public static final String RAFT_ENTRY_TOPIC = "RMQ_SYS_RAFT_ENTRY";

    private static final Logger LOG = LoggerFactory.getLogger(RaftCommitLog.class);
    /** A put's entries built on the raft thread for longer than this are logged. */
    private static final long SLOW_BUILD_MS = 500;

    /**
     * A follower whose dispatch is at most this far behind its committed end is ready to lead: as master it would
     * dispatch the rest in a few milliseconds.
     */
    private static final long LEAD_READY_DISPATCH_BYTES = 256 * 1024;
    /** Sends let through as master whose puts have not been proposed yet ({@link #sendLetThrough}). */
    private final AtomicInteger sendsOnTheirWay = new AtomicInteger();
    /** The send the current thread serves ({@link #servingCountedSend}) while it is counted; null when none. */
    private static final ThreadLocal<ServedSend> COUNTED_SEND = new ThreadLocal<>();

    private final DefaultMessageStore store;
    private final RaftStoreSettings settings;
    private final ThreadLocal<MessageExtEncoder> encoders;
    private final ThreadLocal<StringBuilder> keyBuilders = ThreadLocal.withInitial(StringBuilder::new);
    private final List<Consumer<NodeStatus>> roleListeners = new CopyOnWriteArrayList<>();
    private final List<Runnable> beforeMaster = new CopyOnWriteArrayList<>();
    /** Closed by {@link #shutdown()}, after the role listeners. */
    private final List<AutoCloseable> closeOnShutdown = new CopyOnWriteArrayList<>();
    /** The broker's view of its group's master at the nameserver (null for a store without a broker). */
    private volatile MasterLookup masters;
    /** Where committed broker state entries go ({@link BrokerStateLog}); none until one is set. */
    private volatile StateApplier stateApplier = new StateApplier() {
        @Override
        public void apply(long index, long term, byte[] body) {
            // No broker state here: state entries change nothing.
        }

        @Override
        public long durableThrough() {
            return Long.MAX_VALUE;
        }
    };
    /** Answers puts whose message the log holds already ({@link TimedDeliveries}); none until one is set. */
    private volatile PutFilter putFilter = msg -> null;
    private final DataFiles files;
    private FileNodeStorage storage;
    /** The log's expiry, built by {@link #load()}. */
    private RaftRetention retention;
    private NettyTransport transport;
    /** The Raft metrics' HTTP server ({@code raftMetricsPort}), or null. */
    private io.prometheus.metrics.exporter.httpserver.HTTPServer metricsServer;
    private volatile RaftGroupNode node;
    /** End of the last committed (and applied) entry: everything below is readable and dispatchable. */
    private volatile long committedEnd;
    /** Position of the first entry still in the Raft log. */
    private volatile long minOffset;
    /**
     * Where the Raft log begins when CommitLog files from before it (master/slave days) lie below: those stay
     * readable through the stock file queue; -1 when there are none.
     */
    private volatile long dividedOffset = -1;
    /** The first start on a store of old files only: their classic recovery runs, then the Raft log starts after. */
    private boolean firstStartOnOldFiles;
    private volatile long beginTimeInLock;
    /** The term puts are open for (the role handler's), -1 while they are not: see {@link #openForPuts}. */
    private volatile long putTerm = -1;
    private volatile boolean shutdown;
    /** The container's shared transport and driver threads, or null: the log has its own ({@link ContainerRaft}). */
    private final ContainerRaft container;
    /** Positions of the malformed entries logged already: each is logged once, however often it is scanned. */
    private final java.util.Set<Long> malformedLogged = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final java.util.concurrent.atomic.AtomicLong malformedSkipped = new java.util.concurrent.atomic.AtomicLong();
    /** Beyond this many malformed entries, further ones are skipped without a line (a flood must not fill the disk). */
    private static final int MAX_MALFORMED_REMEMBERED = 10_000;

    /**
     * Builds the commit log of {@code store} from the store's config and the broker properties (for our own keys).
     *
     * @throws IllegalArgumentException if the Raft settings are wrong, naming the key
     */
    public RaftCommitLog(DefaultMessageStore store, Properties brokerProperties) {
        this(store, RaftStoreSettings.from(store.getMessageStoreConfig(), brokerProperties));
    }

    /** Builds the commit log of {@code store} with settings already read and checked. */
    public RaftCommitLog(DefaultMessageStore store, RaftStoreSettings settings) {
        this(store, settings, null);
    }

    /**
     * Builds the commit log of {@code store} with settings already read and checked, on the transport and driver
     * threads of {@code container} (admitted there already), or on its own when it is null.
     */
    public RaftCommitLog(DefaultMessageStore store, RaftStoreSettings settings, ContainerRaft container) {
        super(store);
        this.container = container;
        this.store = store;
        this.settings = settings;
        this.encoders = ThreadLocal.withInitial(() -> new MessageExtEncoder(store.getMessageStoreConfig()));
        this.files = new DataFiles(settings.dataFolders(), settings.dataFileSizeBytes());
    }

    /** The settings this log runs with. */
    public RaftStoreSettings settings() {
        return settings;
    }

    /** The Raft node, or null before {@link #start()}. */
    public RaftGroupNode node() {
        return node;
    }

    /** Receives the committed broker state entries ({@link BrokerStateEntry}) on the node's apply thread. */
    @FunctionalInterface
    public interface StateApplier {
        /** Applies the state entry at {@code index} (of {@code term}); must not wait for the node. */
        void apply(long index, long term, byte[] body);

        /**
         * This node's log now starts after a snapshot up to {@code lastIndex}: installed from the leader
         * ({@code atStart} false), or found at start ({@code atStart} true). {@code image} is what the leader's
         * {@link #image()} gave when it sent the snapshot (the state after the entries it names, which may go beyond
         * {@code lastIndex}); empty when the snapshot carries no state (a snapshot of a leader before images, or a
         * log compacted by this node's own retention).
         */
        default void snapshotInstalled(long lastIndex, byte[] image, boolean atStart) {
        }

        /**
         * The image of the broker state after everything applied so far, sent with the position when a follower is
         * caught up by a snapshot; called on the apply thread. Empty by default (no state).
         */
        default byte[] image() {
            return new byte[0];
        }

        /**
         * The lowest log index whose state entry must stay in the log because the config files do not hold its effect
         * yet (retention never deletes a file holding it); {@link Long#MAX_VALUE} when every applied entry is held.
         */
        default long keepFromIndex() {
            return Long.MAX_VALUE;
        }

        /**
         * The index through which the config files hold the effect of every state entry (asked once, when the node
         * starts): the node replays the log from the entry after it, messages need no replay (recovery dispatched
         * them up to the recorded commit index). -1 (the default) when it cannot tell: the whole log is replayed;
         * {@link Long#MAX_VALUE} for no state at all.
         */
        default long durableThrough() {
            return -1;
        }
    }

    /** Closes {@code c} when this log shuts down (what a request guard of the broker holds, e.g.). */
    void closeOnShutdown(AutoCloseable c) {
        closeOnShutdown.add(c);
    }

    /**
     * The one lookup of the group's master this broker has: its role handler and its send guard both ask it (closed
     * with this log).
     */
    void masters(MasterLookup lookup) {
        masters = lookup;
        closeOnShutdown(lookup);
    }

    /**
     * Counts a send about to be served as master: the Raft node holds an announced hand-over while any is counted
     * ({@link RaftGroupNode#handOverHold}), until its put was proposed. The thread that serves it marks itself with
     * {@link #servingCountedSend}; a put this store takes on that thread ends the count once it is proposed
     * ({@link #endCountedSend}), whatever the stock handler waits for afterwards (a synchronous send waits for the
     * commit). {@link #sendNotServed} ends a count no thread took over.
     */
    void sendLetThrough() {
        sendsOnTheirWay.incrementAndGet();
    }

    /** Whether sends let through as master have puts not proposed yet: the Raft node then holds a hand-over. */
    boolean sendsOnTheirWay() {
        return sendsOnTheirWay.get() > 0;
    }

    /** Ends a count of {@link #sendLetThrough} that no thread took over: the send was not served after all. */
    void sendNotServed() {
        sendsOnTheirWay.decrementAndGet();
    }

    /**
     * The current thread serves a send counted by {@link #sendLetThrough}; its put, once proposed, ends the count. What
     * is returned tells afterwards whether the put's entries went into the Raft log.
     */
    ServedSend servingCountedSend() {
        ServedSend served = new ServedSend(sendsOnTheirWay);
        COUNTED_SEND.set(served);
        return served;
    }

    /**
     * Ends the count of the send the current thread serves, if it still holds one: once its put was proposed (or
     * refused), and when the handler returned.
     */
    static void endCountedSend() {
        ServedSend served = COUNTED_SEND.get();
        if (served != null) {
            COUNTED_SEND.remove();
            served.counter.decrementAndGet();
        }
    }

    /**
     * A send served as master ({@link #servingCountedSend}): whether the entries of its put were built and proposed to
     * the Raft log. A send answered with a refusal before that stored nothing, so it may still go to the group's next
     * master (SendForwardGuard) instead of being refused.
     */
    static final class ServedSend {
        private final AtomicInteger counter;
        private volatile boolean proposed;

        private ServedSend(AtomicInteger counter) {
            this.counter = counter;
        }

        /** Whether its put's entries were proposed (set on the Raft node's thread, read once the put completed). */
        boolean proposed() {
            return proposed;
        }
    }

    /** See {@link #masters(MasterLookup)}; null for a store without a broker. */
    MasterLookup masters() {
        return masters;
    }

    /**
     * Hands every committed broker state entry to {@code applier}, on the node's apply thread, in log order; set it
     * before {@link #start()} so that a restart replays the log's entries into it.
     */
    public void onStateEntry(StateApplier applier) {
        stateApplier = applier;
    }

    /** Answers a put, before it is appended, when the log holds its message already. */
    @FunctionalInterface
    public interface PutFilter {
        /**
         * The answer to a put of {@code msg} that must not append it (its message is in the log already), or null to
         * append it; called on the putting thread, must not block.
         */
        PutMessageResult check(MessageExtBrokerInner msg);

        /**
         * A put that {@link #check} let through has its answer ({@code result}; null when its future failed, so
         * its outcome is unknown); called on the thread that completes the put.
         */
        default void putDone(MessageExtBrokerInner msg, PutMessageResult result) {
        }
    }

    /** Lets {@code filter} answer single-message puts before they are appended (batches are never filtered). */
    public void onPut(PutFilter filter) {
        putFilter = filter;
    }

    /**
     * Whether this node's log holds, or held before it was compacted, the entry {@code index} of {@code term}: false
     * when the log ends before it or has another term there. Call on the node's apply thread (a state applier).
     */
    public boolean holdsEntry(long index, long term) {
        SegmentedLogStore log = storage.store();
        if (index > log.lastIndex()) {
            return false;
        }
        if (index < log.firstIndex() - 1) {
            // Compacted away: it was applied here before (the log only drops applied entries).
            return true;
        }
        return log.term(index) == term;
    }

    /**
     * Calls {@code listener} on every role, term or leader change of the Raft node, on the node's thread (hand real
     * work to another thread). Listeners added before {@link #start()} see the first status too.
     */
    public void onRoleChange(Consumer<NodeStatus> listener) {
        roleListeners.add(listener);
        RaftGroupNode n = node;
        if (n != null) {
            n.onRoleChange(listener);
        }
    }

    /**
     * Whether this node may act as master: it leads, has applied everything in its log, and the store has
     * dispatched all of it to the consume queues.
     */
    public boolean readyForMaster() {
        return leaderCaughtUp() && store.dispatchBehindBytes() == 0;
    }

    /**
     * Runs {@code task} each time the role handler is about to make this node master (it leads and applied
     * everything committed; not yet registered as master), on the role handler's thread, before anything else.
     */
    public void beforeMaster(Runnable task) {
        beforeMaster.add(task);
    }

    /** Runs the {@link #beforeMaster} tasks; one that throws is logged and the others run. */
    void runBeforeMaster() {
        for (Runnable r : beforeMaster) {
            try {
                r.run();
            } catch (RuntimeException e) {
                LOG.error("[{} {}] a task before becoming master failed: {}", settings.group(), settings.selfId(),
                    e.toString());
            }
        }
    }

    /** Whether this node leads and has applied everything in its log. */
    public boolean leaderCaughtUp() {
        RaftGroupNode n = node;
        if (n == null) {
            return false;
        }
        NodeStatus s = n.status();
        return s.role() == Role.LEADER && s.commitIndex() >= s.lastIndex() && s.appliedIndex() >= s.commitIndex();
    }

    /**
     * Before this node stops for good (its broker removed from a container): when it leads, hands the leadership to
     * the voter that has most of the log, and waits up to {@code waitMs} milliseconds for this node to step down, so
     * that its group elects no leader after an election timeout but has one at once (issue 18).
     *
     * @return true when this node does not lead (any more); false when it still leads after {@code waitMs}, or no
     *         other voter is there to take over (the node stops anyway, and its group elects a leader as after a crash)
     */
    public boolean handOffLeadership(long waitMs) {
        RaftGroupNode n = node;
        if (n == null || n.status().role() != Role.LEADER) {
            return true;
        }
        NodeStatus s = n.status();
        List<String> witnesses;
        try {
            witnesses = n.membership().get(waitMs, java.util.concurrent.TimeUnit.MILLISECONDS).witnesses();
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            witnesses = List.of();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
        // A witness never takes a leadership over (it holds no data to serve): the transfer would be refused.
        List<String> noTarget = witnesses;
        String target = s.followers().stream()
            .filter(f -> s.voters().contains(f.id()) && !f.id().equals(s.id()) && f.active()
                && !noTarget.contains(f.id()))
            .max(java.util.Comparator.comparingLong(dev.dledger.raft.core.FollowerProgress::matchIndex))
            .map(dev.dledger.raft.core.FollowerProgress::id).orElse(null);
        if (target == null) {
            if (s.voters().size() > 1) {
                LOG.warn("[{} {}] leads, and no other voter is reachable to take over before it stops", s.group(),
                    s.id());
            }
            return false;
        }
        CompletableFuture<NodeStatus> stepped = new CompletableFuture<>();
        n.onRoleChange(now -> {
            if (now.role() != Role.LEADER) {
                stepped.complete(now);
            }
        });
        try {
            dev.dledger.raft.core.ProposeResult r = n.transferLeadership(target)
                .get(waitMs, java.util.concurrent.TimeUnit.MILLISECONDS);
            if (!r.accepted()) {
                LOG.warn("[{} {}] leadership transfer to {} before the stop refused: {}", s.group(), s.id(), target, r);
                return stepped.isDone();
            }
            NodeStatus after = stepped.get(waitMs, java.util.concurrent.TimeUnit.MILLISECONDS);
            LOG.info("[{} {}] handed the leadership to {} before stopping (leader now {}, term {})", s.group(), s.id(),
                target, after.leaderId(), after.term());
            return true;
        } catch (java.util.concurrent.TimeoutException e) {
            LOG.warn("[{} {}] still leads {} ms after handing the leadership to {}; stopping anyway", s.group(), s.id(),
                waitMs, target);
            return false;
        } catch (java.util.concurrent.ExecutionException e) {
            LOG.warn("[{} {}] leadership transfer to {} failed: {}", s.group(), s.id(), target, e.getCause().toString());
            return stepped.isDone();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * Before this broker shuts down for good or for a restart: hands the leadership over when this node leads
     * ({@link #handOffLeadership}, waiting up to three election timeouts and at least a second), then leaves the group's
     * work ({@link #leaveGroup}). The broker's shutdown takes seconds (stock RocketMQ's alone waits 3 s for its store
     * and up to 3 s for each remoting event thread), during which its remoting port is closed and it is unregistered:
     * a leader that kept its leadership meanwhile left its group without a broker taking sends until its node stopped
     * and the others elected (11 s with a 1 s election timeout, against 1 s after a kill -9); and a follower that kept
     * its node could be elected meanwhile.
     */
    public void leaveBeforeShutdown() {
        handOffLeadership(Math.max(1000L, 3L * settings.electionTimeoutMs()));
        leaveGroup();
    }

    /**
     * Takes this broker's Raft node out of its group's work before the broker's (long) shutdown: it never campaigns
     * again and leaves the transport ({@link RaftGroupNode#leave()}), so the group neither hands it back a leadership
     * ({@link #handOffLeadership} first) nor waits for it. The node stops with {@link #shutdown()}.
     */
    public void leaveGroup() {
        RaftGroupNode n = node;
        if (n != null) {
            n.leave();
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Lifecycle

    /**
     * Opens the Raft log (recovering a torn tail) in its data folders (multi-path, read-only ones too) and learns the
     * committed end recorded by the last checkpoint, ours or stock DLedger's. The log's expiry starts with the node.
     */
    @Override
    public boolean load() {
        if (!super.load()) {
            LOG.error("cannot load the CommitLog files from before the raft log in {}",
                store.getMessageStoreConfig().getStorePathCommitLog());
            return false;
        }
        try {
            StoreConfig config = StoreConfig.detect(settings.dir(), settings.storeConfig());
            if (config.dataFileSizeBytes() != settings.dataFileSizeBytes()) {
                throw new IllegalStateException("the Raft log in " + settings.dir() + " has data files of "
                    + config.dataFileSizeBytes() + " bytes but mappedFileSizeCommitLog is "
                    + settings.dataFileSizeBytes());
            }
            // Nothing of the Raft log goes while CommitLog files from before it remain: they are older and go first,
            // so the offsets stay one unbroken range from the min offset up.
            // Nor a file holding a message reput has not dispatched, or a state entry the config files lack.
            java.util.function.LongSupplier safe =
                () -> hasOldFiles() ? Long.MIN_VALUE : Math.min(store.getReputFromOffset(), stateKeepPosition());
            retention = new RaftRetention(store.getMessageStoreConfig(), safe, start -> {
                // On the node's thread, the only writer of the min offset once the log is open.
                if (start > minOffset) {
                    minOffset = start;
                }
            }, files, Clock.systemDefaultZone());
            // In a container the periodic flush (flush=async) runs on the fsync threads its groups share.
            storage = new FileNodeStorage(settings.dir(), config, settings.flush(), 1000, retention.logRetention(),
                container != null ? container.flushThreads() : null);
            storage.store().writeHook(RaftCommitLog::stampPhysicalOffset);
            SegmentedLogStore log = storage.store();
            minOffset = log.lastIndex() >= log.firstIndex() ? log.position(log.firstIndex()) : log.writePosition();
            committedEnd = endOf(log, Math.min(storage.committedCheckpoint(), log.lastIndex()));
            if (hasOldFiles()) {
                boolean empty = log.lastIndex() < log.firstIndex() && log.writePosition() == 0;
                firstStartOnOldFiles = empty;
                if (!empty) {
                    dividedOffset = files.fileStart(minOffset);
                }
            }
            LOG.info("raft commit log {}: entries [{}, {}], checkpointed commit {}, offsets [{}, {})", settings.dir(),
                log.firstIndex(), log.lastIndex(), storage.committedCheckpoint(), minOffset, committedEnd);
            return true;
        } catch (IOException | RuntimeException e) {
            LOG.error("cannot open the raft commit log in {}: {}", settings.dir(), e.getMessage(), e);
            return false;
        }
    }

    private long endOf(SegmentedLogStore log, long index) {
        if (index < log.firstIndex() || index > log.lastIndex()) {
            return minOffset;
        }
        return log.endPosition(index);
    }

    /** Whether CommitLog files from before the Raft log are still there. */
    private boolean hasOldFiles() {
        return !mappedFileQueue.getMappedFiles().isEmpty();
    }

    /** Whether {@code offset} lies in the old CommitLog files below the Raft log. */
    private boolean inOldFiles(long offset) {
        long divided = dividedOffset;
        return divided >= 0 && offset < divided && hasOldFiles();
    }

    /** Where the Raft log begins above old CommitLog files, or -1 when it has none below it. */
    public long dividedOffset() {
        return dividedOffset;
    }

    /** Retention runs of the Raft log that would have deleted files (for tests); 0 before it opened. */
    long retentionRuns() {
        RaftRetention r = retention;
        return r == null ? 0 : r.runs();
    }

    /**
     * After the classic recovery of old files on the first start: pads the last old file with a BLANK record
     * (unless full), marks it full, and starts the Raft log at the next file boundary, so that physical offsets stay
     * one increasing address space and the old ConsumeQueues stay valid.
     */
    private void startAfterOldFiles() {
        MappedFile last = mappedFileQueue.getLastMappedFile();
        int size = last.getFileSize();
        int wrote = last.getWrotePosition();
        if (wrote < size) {
            ByteBuffer blank = ByteBuffer.allocate(8).putInt(size - wrote).putInt(BLANK_MAGIC_CODE);
            blank.flip();
            last.appendMessage(blank.array());
            last.setWrotePosition(size);
            last.setCommittedPosition(size);
            last.setFlushedPosition(size);
            last.flush(0);
        }
        long divided = last.getFileFromOffset() + size;
        storage.store().startAt(divided);
        minOffset = divided;
        committedEnd = divided;
        dividedOffset = divided;
        LOG.info("the raft log starts at {}, after the CommitLog files from before it (ending at {})", divided,
            last.getFileFromOffset() + wrote);
    }

    /**
     * The data position below which retention may delete as far as the broker state is concerned: the position of
     * the first state entry whose effect the config files do not hold yet ({@link StateApplier#keepFromIndex()}), so
     * that a restart finds it in the log. On the node's thread (retention runs there).
     */
    private long stateKeepPosition() {
        long keep = stateApplier.keepFromIndex();
        SegmentedLogStore log = storage.store();
        if (keep == Long.MAX_VALUE || keep > log.lastIndex()) {
            return Long.MAX_VALUE;
        }
        return keep < log.firstIndex() ? Long.MIN_VALUE : log.position(keep);
    }

    /** Writes the message's physical offset into the message, before the entry is stored (and replicated). */
    private static void stampPhysicalOffset(Entry e, long pos) {
        byte[] body = e.data();
        if (e.type() != EntryType.NORMAL || body.length < MessageDecoder.PHY_POS_POSITION + 8
            || BrokerStateEntry.isStateEntry(body)) {
            return;
        }
        ByteBuffer.wrap(body).putLong(MessageDecoder.PHY_POS_POSITION, pos + BODY_OFFSET);
    }

    /**
     * Starts the Raft node: it joins its group and takes part in elections. In a container the start waits until no
     * broker of the container is starting ({@link ContainerRaft#startNode}): a process busy booting brokers starves
     * its Raft threads, and a leadership handed to it then (its group's preferred leader, once caught up) is lost again
     * at once (issue 18).
     */
    @Override
    public void start() {
        if (node != null) {
            return;
        }
        if (container != null) {
            container.startNode(settings.group(), this::startNode);
            return;
        }
        startNode();
    }

    private void startNode() {
        if (node != null || shutdown) {
            return;
        }
        NodeOptions options = nodeOptions(settings);
        InetSocketAddress self = settings.selfAddress();
        transport = container != null ? container.transport()
            : new NettyTransport(listenAddress(self), settings.transportOptions());
        Membership configured = configuredMembership(settings);
        RaftGroupNode n = new RaftGroupNode(options, settings.join() ? Membership.EMPTY : configured, storage,
            new CommitTracker(), transport, container != null ? container.loops() : null);
        transport.setPeers(settings.group(), settings.peers());
        boolean[] first = {true};
        n.onPeers(m -> {
            if (first[0]) {
                first[0] = false;
                logMembershipAtStart(m, n.status().term());
            }
            transport.setPeers(settings.group(), peerAddresses(settings, m));
        });
        // The preferred leader says it is ready to lead only while its dispatch keeps up with what it committed: a
        // broker restarted behind would otherwise take the leadership back, then keep its clients waiting while it
        // dispatches before it becomes master (issue 18).
        n.leadReadiness(() -> store.dispatchBehindBytes() <= LEAD_READY_DISPATCH_BYTES);
        // A hand-over announced while sends let through as master have not proposed their puts yet waits for them
        // (SendForwardGuard counts them): they would be refused as TRANSFERRING, SERVICE_NOT_AVAILABLE to the client.
        n.handOverHold(this::sendsOnTheirWay);
        node = n;
        for (Consumer<NodeStatus> l : roleListeners) {
            n.onRoleChange(l);
        }
        if (settings.metricsPort() > 0) {
            serveMetrics(n);
        }
        LOG.info("raft commit log started: {}", settings);
    }

    /** The Raft node's options from the broker's settings (ticks, timeouts, flush mode, preferred leader). */
    static NodeOptions nodeOptions(RaftStoreSettings settings) {
        RaftConfig raft = RaftConfig.defaults(settings.selfId())
            .withTimeouts(Math.max(4, settings.electionTimeoutMs() / settings.tickMs()),
                Math.max(1, settings.electionTimeoutMs() / settings.tickMs() / 10));
        if (settings.preferredLeader() != null) {
            raft = raft.withPreferredLeader(settings.preferredLeader());
        }
        NodeOptions defaults = NodeOptions.defaults(settings.group(), settings.selfId());
        return new NodeOptions(settings.group(), raft, settings.tickMs(), settings.flush(),
            settings.appendTimeoutMs(), defaults.maxPendingAppends(), defaults.maxQueuedInputs(), 0,
            defaults.snapshotChunkBytes(), defaults.randomSeed());
    }

    /**
     * The group as {@code dLegerPeers} configures it, with the peers' addresses and {@code raftWitnessPeers}' witnesses
     * (the bootstrap of a new group).
     */
    static Membership configuredMembership(RaftStoreSettings settings) {
        Map<String, String> addresses = new java.util.TreeMap<>();
        for (Map.Entry<String, InetSocketAddress> e : settings.peers().entrySet()) {
            addresses.put(e.getKey(), e.getValue().getHostString() + ":" + e.getValue().getPort());
        }
        return new Membership(List.copyOf(settings.peers().keySet()), addresses, settings.witnesses());
    }

    /**
     * The transport's peer table for the peers the node talks to ({@code talkTo}): each one's address as the group
     * recorded it in the log, else as {@code dLegerPeers} gives it; this node always. Peers of {@code dLegerPeers} that
     * the group removed are left out, so their frames are refused and their host is no longer admitted. A node that
     * knows no membership yet (a joining one) talks to the peers of {@code dLegerPeers}.
     */
    static Map<String, InetSocketAddress> peerAddresses(RaftStoreSettings settings, Membership talkTo) {
        if (talkTo.voters().isEmpty()) {
            return settings.peers();
        }
        Map<String, InetSocketAddress> out = new java.util.LinkedHashMap<>();
        for (String id : talkTo.voters()) {
            String recorded = talkTo.address(id);
            InetSocketAddress a = recorded != null ? parseAddress(recorded) : settings.peers().get(id);
            if (a == null) {
                LOG.warn("[{} {}] no address for raft peer {}: neither the group's membership nor dLegerPeers gives one; "
                    + "it is not reached until one does", settings.group(), settings.selfId(), id);
                continue;
            }
            out.put(id, a);
        }
        out.put(settings.selfId(), settings.selfAddress());
        return out;
    }

    private static InetSocketAddress parseAddress(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        try {
            return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** One line when the membership the log holds is not the group of {@code dLegerPeers}. */
    private void logMembershipAtStart(Membership inForce, long term) {
        java.util.Set<String> configured = new java.util.TreeSet<>(settings.peers().keySet());
        java.util.Set<String> voters = new java.util.TreeSet<>(inForce.voters());
        if (inForce.voters().isEmpty()) {
            if (settings.join()) {
                LOG.info("[{} {} t{}] raftJoin=true and no membership in the raft log yet: this broker is no voter and "
                    + "does not campaign until the leader catches it up (dledger-cli member add {} --address {})",
                    settings.group(), settings.selfId(), term, settings.selfId(),
                    settings.selfAddress().getHostString() + ":" + settings.selfAddress().getPort());
            }
            return;
        }
        if (!voters.equals(configured) || !voters.contains(settings.selfId())) {
            LOG.warn("[{} {} t{}] dLegerPeers of broker.conf lists {} but the raft log's membership is {}: the log wins "
                + "(it is what the group agreed through member add/remove); broker.conf is left as it is{}",
                settings.group(), settings.selfId(), term, configured, inForce,
                voters.contains(settings.selfId()) ? "" : "; this broker is not a voter of the group");
        }
    }

    /**
     * Where the Raft port listens: on this node's host from {@code dLegerPeers} when that address belongs to this
     * machine (so several brokers of one machine, each on its own address, use the same port, and the port answers on
     * that address only), else on every address (a host named by an address of a NAT or a proxy), said in one line.
     */
    static InetSocketAddress listenAddress(InetSocketAddress self) {
        java.net.InetAddress host = self.getAddress();
        boolean own = false;
        if (host != null) {
            try {
                own = host.isLoopbackAddress() || java.net.NetworkInterface.getByInetAddress(host) != null;
            } catch (java.net.SocketException e) {
                own = false;
            }
        }
        if (own) {
            return new InetSocketAddress(host, self.getPort());
        }
        LOG.info("raft port {} listens on every address: {} is not an address of this machine", self.getPort(),
            self.getHostString());
        return new InetSocketAddress(self.getPort());
    }

    /**
     * Serves the node's and the transport's metrics at {@code /metrics} on {@code raftMetricsPort}, all interfaces, in
     * the Prometheus text format. A port that cannot be bound is logged in one line; the broker runs on without it.
     */
    private void serveMetrics(RaftGroupNode n) {
        dev.dledger.raft.server.RaftMetrics metrics = new dev.dledger.raft.server.RaftMetrics();
        metrics.add(n);
        metrics.add(transport);
        try {
            metricsServer = metrics.serve(settings.metricsPort());
            LOG.info("[{} {}] raft metrics served at http://0.0.0.0:{}/metrics", settings.group(), settings.selfId(),
                metricsServer.getPort());
        } catch (IOException | RuntimeException e) {
            LOG.error("[{} {}] raftMetricsPort={}: cannot serve the raft metrics there: {}; the broker runs without "
                + "them", settings.group(), settings.selfId(), settings.metricsPort(), e.toString());
        }
    }

    /** The port the Raft metrics are served on, or -1 when they are not. */
    public int metricsPort() {
        io.prometheus.metrics.exporter.httpserver.HTTPServer m = metricsServer;
        return m == null ? -1 : m.getPort();
    }

    /** Bytes the Raft log's files take on disk: data files (every data folder) and the index. */
    public long raftLogDiskBytes() {
        java.nio.file.Path dir = settings.dir().toAbsolutePath().normalize();
        long total = diskBytes(dir);
        for (java.nio.file.Path folder : settings.dataFolders()) {
            java.nio.file.Path f = folder.toAbsolutePath().normalize();
            if (!f.startsWith(dir)) {
                total += diskBytes(f);
            }
        }
        return total;
    }

    /** Bytes the regular files under {@code folder} take (allocated size of sparse files, where the JDK tells). */
    private static long diskBytes(java.nio.file.Path folder) {
        if (!java.nio.file.Files.isDirectory(folder)) {
            return 0;
        }
        try (java.util.stream.Stream<java.nio.file.Path> walk = java.nio.file.Files.walk(folder)) {
            return walk.filter(java.nio.file.Files::isRegularFile).mapToLong(p -> {
                try {
                    return java.nio.file.Files.size(p);
                } catch (IOException e) {
                    return 0;
                }
            }).sum();
        } catch (IOException | java.io.UncheckedIOException e) {
            return 0;
        }
    }

    @Override
    public void shutdown() {
        if (shutdown) {
            return;
        }
        shutdown = true;
        if (metricsServer != null) {
            metricsServer.close();
        }
        for (Consumer<NodeStatus> l : roleListeners) {
            if (l instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception e) {
                    LOG.warn("a role listener did not close: {}", e.toString());
                }
            }
        }
        for (AutoCloseable c : closeOnShutdown) {
            try {
                c.close();
            } catch (Exception e) {
                LOG.warn("{} did not close: {}", c, e.toString());
            }
        }
        RaftGroupNode n = node;
        if (n != null) {
            n.close();
        } else if (storage != null) {
            storage.close();
        }
        if (transport != null && container == null) {
            // A container's transport serves its other groups: the node unregistered this group from it above.
            transport.close();
        }
        files.clear();
    }

    @Override
    public void destroy() {
        shutdown();
        super.destroy();
        UtilAll.deleteFile(settings.dir().toFile());
    }

    /** Learns the committed end on the node's thread, as entries are applied. */
    private final class CommitTracker implements StateMachine {
        @Override
        public List<byte[]> apply(List<Entry> committed) {
            StateApplier applier = stateApplier;
            for (Entry e : committed) {
                if (e.type() == EntryType.NORMAL && BrokerStateEntry.isStateEntry(e.data())) {
                    applier.apply(e.index(), e.term(), e.data());
                }
            }
            long last = committed.get(committed.size() - 1).index();
            long end = storage.store().endPosition(last);
            if (end > committedEnd) {
                committedEnd = end;
            }
            return Collections.nCopies(committed.size(), null);
        }

        @Override
        public void snapshot(long lastIndex, OutputStream out) {
        }

        /**
         * Messages are in the data files and dispatched by recovery; only state entries after the config files'
         * checkpoint need applying again. Without this every start read the whole log through the node's thread
         * (347 s before the first send on 20 GB of converted history, with elections lost meanwhile).
         */
        @Override
        public long durableThrough() {
            return stateApplier.durableThrough();
        }

        /** The broker state's image, sent with the position to a follower caught up by a snapshot. */
        @Override
        public byte[] retainedImage() {
            return stateApplier.image();
        }

        /**
         * A snapshot was installed: this node fell behind what the leader's retention kept. The log now starts after
         * it, at the leader's position (the library keeps positions equal), so the offsets of later messages are the
         * leader's; messages below were expired on the leader and are not served here. Reput, below the new minimum
         * offset, moves up to it.
         */
        @Override
        public void restore(long lastIndex, InputStream in) throws IOException {
            byte[] image = in.readAllBytes();
            // In the node's constructor (this.node not set yet) this is the snapshot found at start.
            boolean atStart = node == null;
            SegmentedLogStore log = storage.store();
            long start = log.lastIndex() >= log.firstIndex() ? log.position(log.firstIndex()) : log.writePosition();
            if (atStart) {
                LOG.info("raft commit log {}: the log starts after snapshot {}, at offset {}", storage.store().dir(),
                    lastIndex, start);
            } else {
                LOG.warn("raft commit log {}: caught up by a snapshot at index {}; offsets below {} are gone here",
                    storage.store().dir(), lastIndex, start);
            }
            minOffset = start;
            committedEnd = start;
            stateApplier.snapshotInstalled(lastIndex, image, atStart);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Offsets

    @Override
    public long getMaxOffset() {
        return committedEnd;
    }

    @Override
    public long getMinOffset() {
        return dividedOffset >= 0 && hasOldFiles() ? super.getMinOffset() : minOffset;
    }

    @Override
    public long getConfirmOffset() {
        return committedEnd;
    }

    @Override
    public long getConfirmOffsetDirectly() {
        return committedEnd;
    }

    @Override
    public void setConfirmOffset(long phyOffset) {
        // The committed end is the Raft group's to decide.
    }

    @Override
    public long flush() {
        return committedEnd;
    }

    @Override
    public long getFlushedWhere() {
        return committedEnd;
    }

    @Override
    public long remainHowManyDataToCommit() {
        return 0;
    }

    @Override
    public long remainHowManyDataToFlush() {
        return 0;
    }

    @Override
    public long rollNextFile(long offset) {
        return files.fileStart(offset) + files.fileSize();
    }

    @Override
    public long getLastFileFromOffset() {
        return files.fileStart(committedEnd);
    }

    @Override
    public boolean isMappedFilesEmpty() {
        return committedEnd <= minOffset;
    }

    @Override
    public long getTotalSize() {
        return files.fileCount() * files.fileSize();
    }

    @Override
    public boolean resetOffset(long offset) {
        return false;
    }

    @Override
    public boolean appendData(long startOffset, byte[] data, int dataStart, int dataLength) {
        // The master/slave HA client must never write here: the Raft group replicates.
        return false;
    }

    @Override
    public long getBeginTimeInLock() {
        return beginTimeInLock;
    }

    @Override
    public long lockTimeMills() {
        long begin = beginTimeInLock;
        return begin <= 0 ? 0 : Math.max(0, store.now() - begin);
    }

    @Override
    public void checkSelf() {
    }

    // ------------------------------------------------------------------------------------------------------------
    // Reads

    @Override
    public SelectMappedBufferResult getData(long offset) {
        return getData(offset, offset == 0);
    }

    @Override
    public SelectMappedBufferResult getData(long offset, boolean returnFirstOnNotFound) {
        if (inOldFiles(offset)) {
            return super.getData(offset, returnFirstOnNotFound);
        }
        long end = committedEnd;
        if (offset < minOffset) {
            if (!returnFirstOnNotFound) {
                return null;
            }
            offset = minOffset;
        }
        if (offset >= end) {
            return null;
        }
        ByteBuffer b = files.slice(offset, end);
        return b == null ? null : new SelectMappedBufferResult(offset, b, b.remaining(), null);
    }

    @Override
    public boolean getData(long offset, int size, ByteBuffer byteBuffer) {
        if (inOldFiles(offset)) {
            return super.getData(offset, size, byteBuffer);
        }
        if (offset < minOffset || offset + size > committedEnd) {
            return false;
        }
        ByteBuffer b = files.slice(offset, offset + size);
        if (b == null || b.remaining() < size) {
            return false;
        }
        byteBuffer.put(b);
        return true;
    }

    @Override
    public SelectMappedBufferResult getMessage(long offset, int size) {
        if (inOldFiles(offset)) {
            return super.getMessage(offset, size);
        }
        if (offset < minOffset || size <= 0) {
            return null;
        }
        ByteBuffer b = files.slice(offset, offset + size);
        return b == null || b.remaining() < size ? null : new SelectMappedBufferResult(offset, b, size, null);
    }

    @Override
    public List<SelectMappedBufferResult> getBulkData(long offset, int size) {
        List<SelectMappedBufferResult> out = new ArrayList<>();
        long at = offset;
        long end = Math.min(committedEnd, offset + size);
        while (at < end) {
            SelectMappedBufferResult r = getData(at, false);
            if (r == null) {
                break;
            }
            int len = (int) Math.min(r.getSize(), end - at);
            r.setSize(len);
            out.add(r);
            at += len;
        }
        return out;
    }

    /** Reads the store time of the message at {@code offset}, which may be an entry's header position. */
    @Override
    public long pickupStoreTimestamp(long offset, int size) {
        if (inOldFiles(offset)) {
            // An old file holds messages without headers (stock DLedger mode adds 48 here too: its bug 7.2).
            return super.pickupStoreTimestamp(offset, size);
        }
        long at = offset;
        // At an entry's header (the log's min offset is one): the first message from there on, past Raft's own
        // entries and the BLANK ends of files.
        for (int steps = 0; steps < 10_000; steps++) {
            ByteBuffer head = files.slice(at, Math.min(committedEnd, at + 8));
            if (head == null || head.remaining() < 8) {
                return -1;
            }
            int first = head.getInt(0);
            if (first == EntryFormat.BLANK_MAGIC) {
                at = rollNextFile(at);
                continue;
            }
            if (!isEntryHeader(first, head.getInt(4))) {
                break;
            }
            ByteBuffer header = files.slice(at, at + BODY_OFFSET);
            if (header == null || header.remaining() < BODY_OFFSET) {
                return -1;
            }
            EntryFormat.Header h = EntryFormat.Header.read(header);
            ByteBuffer magic = h.type() == EntryType.NORMAL ? files.slice(at + BODY_OFFSET, at + BODY_OFFSET + 8) : null;
            if (magic != null && magic.remaining() == 8 && !BrokerStateEntry.isStateEntry(magic, magic.position())) {
                at += BODY_OFFSET;
                break;
            }
            at += h.size();
        }
        if (at < minOffset || at + size > committedEnd) {
            return -1;
        }
        SelectMappedBufferResult r = getMessage(at, size);
        if (r == null) {
            return -1;
        }
        ByteBuffer b = r.getByteBuffer();
        return b.getLong(storeTimestampPosition(b.getInt(MessageDecoder.SYSFLAG_POSITION)));
    }

    /** Where a message's store time sits: after the born host, whose length depends on its IPv6 flag. */
    private static int storeTimestampPosition(int sysFlag) {
        int bornHostLength = (sysFlag & MessageSysFlag.BORNHOST_V6_FLAG) == 0 ? 8 : 20;
        return 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + bornHostLength;
    }

    private static boolean isEntryHeader(int first, int second) {
        // An entry starts with its magic (1, 2 or 3) then its total size; a message starts with its size then its
        // magic code, which is never a small positive size.
        return first >= 1 && first <= 3 && second >= BODY_OFFSET;
    }

    /**
     * Parses the entry at the buffer's position: a message (its dispatch request, sized to cover the header too),
     * a Raft entry (a request every dispatcher skips), or the BLANK record at the end of a file (size 0).
     */
    @Override
    public DispatchRequest checkMessageAndReturnSize(ByteBuffer byteBuffer, boolean checkCRC, boolean checkDupInfo,
                                                     boolean readBody) {
        int start = byteBuffer.position();
        try {
            int magic = byteBuffer.getInt();
            // A record of an old CommitLog file: its size, then a message magic code or the old BLANK magic (an
            // entry has its size, never negative, in that place).
            int second = byteBuffer.getInt(start + 4);
            if (second == BLANK_MAGIC_CODE || second == MessageDecoder.MESSAGE_MAGIC_CODE
                || second == MessageDecoder.MESSAGE_MAGIC_CODE_V2) {
                byteBuffer.position(start);
                return super.checkMessageAndReturnSize(byteBuffer, checkCRC, checkDupInfo, readBody);
            }
            if (magic == EntryFormat.BLANK_MAGIC) {
                return new DispatchRequest(0, true);
            }
            byteBuffer.position(start);
            EntryFormat.Header h = EntryFormat.Header.read(byteBuffer);
            int size = h.size();
            EntryType type = h.type();
            if (type == null || size < BODY_OFFSET) {
                return new DispatchRequest(-1, false);
            }
            if (type != EntryType.NORMAL || BrokerStateEntry.isStateEntry(byteBuffer, start + BODY_OFFSET)) {
                // Raft's own entries and the broker's state entries: no message, no queue.
                return skipEntry(byteBuffer, start, size);
            }
            String malformed = malformedMessage(byteBuffer, start, size);
            if (malformed != null) {
                return skipMalformed(byteBuffer, start, h, malformed);
            }
            byteBuffer.position(start + BODY_OFFSET);
            DispatchRequest r = super.checkMessageAndReturnSize(byteBuffer, checkCRC, checkDupInfo, readBody);
            if (!r.isSuccess()) {
                return skipMalformed(byteBuffer, start, h, "its message does not parse");
            }
            if (r.getMsgSize() != size - BODY_OFFSET || r.getTopic() == null || r.getTopic().isEmpty()) {
                return skipMalformed(byteBuffer, start, h, r.getMsgSize() != size - BODY_OFFSET ? "its message is "
                    + r.getMsgSize() + " bytes in an entry body of " + (size - BODY_OFFSET) : "its message has no topic");
            }
            r.setBufferSize(r.getMsgSize() + BODY_OFFSET);
            return r;
        } catch (RuntimeException e) {
            LOG.warn("cannot parse the entry at buffer position {}: {}", start, e.toString());
            return new DispatchRequest(-1, false);
        }
    }

    /**
     * A request every dispatcher skips (no topic a consumer sees, a rolled-back transaction record) that moves reput
     * and recovery over the whole entry at {@code start}.
     */
    private static DispatchRequest skipEntry(ByteBuffer byteBuffer, int start, int size) {
        byteBuffer.position(start + size);
        DispatchRequest skip = new DispatchRequest(RAFT_ENTRY_TOPIC, 0, start, size - BODY_OFFSET, 0,
            System.currentTimeMillis(), 0, null, null, MessageSysFlag.TRANSACTION_ROLLBACK_TYPE, 0, null);
        skip.setBufferSize(size);
        return skip;
    }

    /**
     * Why the body of the NORMAL entry at {@code start} cannot be a broker message, checked before the stock parser
     * sees it (which would log its own lines): its total size must be the body's and its magic a message's. Null when
     * it may be one.
     */
    private static String malformedMessage(ByteBuffer b, int start, int size) {
        int body = size - BODY_OFFSET;
        if (body < 8 || start + size > b.limit()) {
            return "its body of " + body + " bytes is too short for a message or runs past its file";
        }
        int totalSize = b.getInt(start + BODY_OFFSET);
        int magic = b.getInt(start + BODY_OFFSET + 4);
        if (magic != MessageDecoder.MESSAGE_MAGIC_CODE && magic != MessageDecoder.MESSAGE_MAGIC_CODE_V2) {
            return "its body does not start with a message (magic code 0x" + Integer.toHexString(magic) + ")";
        }
        if (totalSize != body) {
            return "its message says " + totalSize + " bytes but the entry body is " + body;
        }
        int fields = messageFieldsLength(b, start + BODY_OFFSET, body, magic);
        if (fields != body) {
            return fields < 0 ? "its message's fields run past its " + body + " bytes"
                : "its message's fields take " + fields + " bytes, not its " + body;
        }
        return null;
    }

    /**
     * The length a stored message's fields add up to (the stock layout: fixed fields, born and store hosts of 8 or 20
     * bytes by the sys flag, then body, topic and properties with their lengths), or -1 when a length runs past
     * {@code size}. The stock parser checks the same and logs a line of its own when they differ.
     */
    private static int messageFieldsLength(ByteBuffer b, int at, int size, int magic) {
        int sysFlag = b.getInt(at + 36);
        int pos = 36 + 4 + 8;
        pos += (sysFlag & MessageSysFlag.BORNHOST_V6_FLAG) == 0 ? 8 : 20;
        pos += 8;
        pos += (sysFlag & MessageSysFlag.STOREHOSTADDRESS_V6_FLAG) == 0 ? 8 : 20;
        pos += 4 + 8;
        if (pos + 4 > size) {
            return -1;
        }
        int bodyLength = b.getInt(at + pos);
        pos += 4;
        if (bodyLength < 0 || bodyLength > size - pos) {
            return -1;
        }
        pos += bodyLength;
        int topicLengthSize = MessageVersion.valueOfMagicCode(magic).getTopicLengthSize();
        if (pos + topicLengthSize > size) {
            return -1;
        }
        // Signed, as the stock parser reads them: a negative length is never a message's.
        int topicLength = topicLengthSize == 1 ? b.get(at + pos) : b.getShort(at + pos);
        pos += topicLengthSize;
        if (topicLength < 0 || pos + topicLength + 2 > size) {
            return -1;
        }
        pos += topicLength;
        int propertiesLength = b.getShort(at + pos);
        pos += 2;
        return propertiesLength < 0 ? -1 : pos + propertiesLength;
    }

    /**
     * Steps over a NORMAL entry whose body is not a broker message (no entry that is not a broker's own should reach
     * the log; this is the defence behind the closed Raft port): never dispatched to a ConsumeQueue, never stopping
     * reput or recovery. Logs one ERROR line per entry, naming its index, position and why.
     */
    private DispatchRequest skipMalformed(ByteBuffer byteBuffer, int start, EntryFormat.Header h, String why) {
        if (malformedLogged.size() < MAX_MALFORMED_REMEMBERED && malformedLogged.add(h.pos())) {
            malformedSkipped.incrementAndGet();
            LOG.error("[{} {} t{}] skipped the raft log entry at index {}, position {}, term {}: not a broker message, "
                + "so never dispatched to a consume queue: {}", settings.group(), settings.selfId(),
                currentTerm(), h.index(), h.pos(), h.term(), why);
        }
        return skipEntry(byteBuffer, start, h.size());
    }

    private long currentTerm() {
        RaftGroupNode n = node;
        return n == null ? -1 : n.status().term();
    }

    /** Malformed entries skipped at dispatch (each counted once, however often it is scanned). */
    public long malformedEntriesSkipped() {
        return malformedSkipped.get();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Recovery

    @Override
    public void recoverNormally(long dispatchFromPhyOffset) {
        recover(dispatchFromPhyOffset, true);
    }

    @Override
    public void recoverAbnormally(long dispatchFromPhyOffset) {
        recover(dispatchFromPhyOffset, false);
    }

    /**
     * Makes the ConsumeQueues agree with the log: queues that ran ahead of what this node stores are truncated, and
     * everything committed (as far as the checkpoint knows) that the queues lack is dispatched again; reput takes
     * over from the committed end.
     */
    private void recover(long dispatchFromPhyOffset, boolean normally) {
        if (firstStartOnOldFiles) {
            // The old files get the stock recovery (which also repairs their queues), then the Raft log starts above.
            try {
                if (normally) {
                    super.recoverNormally(dispatchFromPhyOffset);
                } else {
                    super.recoverAbnormally(dispatchFromPhyOffset);
                }
            } catch (Exception e) {
                throw new IllegalStateException("recovery of the CommitLog files from before the raft log failed: " + e,
                    e);
            }
            startAfterOldFiles();
            firstStartOnOldFiles = false;
            return;
        }
        long stored = storage.store().writePosition();
        long end = committedEnd;
        try {
            // Queues that ran ahead of what this node stores (a tail lost in a crash) lose those entries; they come
            // back through reput once the group has them committed here again.
            store.truncateDirtyLogicFiles(stored);
            long from = messageOrEntryStart(Math.max(getMinOffset(), Math.min(dispatchFromPhyOffset, end)));
            // The message index gets what it lacks apart, from reput's first dispatch on: after a crash it may lack
            // messages before that (its last file, not full, is deleted), and hold some after it (it is not idempotent).
            RecoveryDispatch dispatch = RecoveryDispatch.install(store, from, end,
                through -> through < 0 ? getMinOffset() : messageOrEntryStart(Math.max(getMinOffset(), through)),
                this::dispatchRange);
            if (dispatch.indexCatchUp() != null) {
                // Stopped before the store's index service closes its files (the store shuts this log down first).
                closeOnShutdown(dispatch.indexCatchUp());
            }
            dispatchRange(from, end, dispatch::accept);
            LOG.info("raft commit log recovery: dispatched {} records from {} to {}; {}", dispatch.dispatched(), from,
                end, dispatch.indexPlan());
        } catch (Exception e) {
            throw new IllegalStateException("recovery of the consume queues from the raft log failed: " + e, e);
        }
    }

    /**
     * {@code offset} itself in the CommitLog files from before the Raft log (their records start at message offsets);
     * in the Raft log the start of the entry that holds it: a store's checkpoint or an index gives the offset of a
     * message (an entry's position + 48), not of an entry.
     */
    private long messageOrEntryStart(long offset) {
        return inOldFiles(offset) ? offset : entryStartAtOrBefore(offset);
    }

    /** The position of the last entry that starts at or before {@code offset}, or the log's start. */
    private long entryStartAtOrBefore(long offset) {
        SegmentedLogStore log = storage.store();
        long lo = log.firstIndex();
        long hi = log.lastIndex();
        if (hi < lo || log.position(lo) >= offset) {
            return Math.min(offset, minOffset);
        }
        while (lo < hi) {
            long mid = lo + (hi - lo + 1) / 2;
            if (log.position(mid) <= offset) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return log.position(lo);
    }

    /** Hands each record of [from, end) to {@code each} with its position, in order (recovery's scans). */
    private void dispatchRange(long from, long end, RecoveryDispatch.RecordSink each) throws Exception {
        long at = from;
        while (at < end) {
            SelectMappedBufferResult data = getData(at, false);
            if (data == null) {
                break;
            }
            ByteBuffer b = data.getByteBuffer();
            DispatchRequest r;
            try {
                r = checkMessageAndReturnSize(b, false, false, false);
            } finally {
                data.release();
            }
            int size = r.getBufferSize() == -1 ? r.getMsgSize() : r.getBufferSize();
            if (!r.isSuccess()) {
                throw new IllegalStateException("the raft log holds a record that is not a message at " + at);
            }
            if (size == 0) {
                at = rollNextFile(at);
                continue;
            }
            each.accept(at, r);
            at += size;
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Writes

    /**
     * Lets puts in for {@code term}: this node leads it, has applied and dispatched everything in its log, and its
     * queue offset table was rebuilt from the consume queues since. The role handler calls it before the broker
     * becomes master; a put is refused (SERVICE_NOT_AVAILABLE) unless the node's term is the one opened here.
     */
    public void openForPuts(long term) {
        putTerm = term;
    }

    /** Refuses puts from now on, until {@link #openForPuts} (a node that stops leading calls it first). */
    public void closeForPuts() {
        putTerm = -1;
    }

    /** The term puts are open for, or -1. */
    public long putTerm() {
        return putTerm;
    }

    /**
     * Puts one message. Its queue offset is taken on the Raft node's thread, in log order, only once the entry is
     * certain to go into the log ({@link RaftGroupNode#append(dev.dledger.raft.server.EntryBuilder)}): a put refused
     * (not leader, leadership being transferred, too many pending, puts not open for this term) takes no offset, so a
     * queue's offsets in the log have no gap, and the consume queues (which place entries one after another) agree
     * with the offsets written in the messages.
     */
    @Override
    public CompletableFuture<PutMessageResult> asyncPutMessage(MessageExtBrokerInner msg) {
        try {
            return putOne(msg);
        } finally {
            // Proposed or refused: a hand-over need not wait for this send any longer.
            endCountedSend();
        }
    }

    private CompletableFuture<PutMessageResult> putOne(MessageExtBrokerInner msg) {
        RaftGroupNode n = node;
        if (n == null || n.status().role() != Role.LEADER) {
            return done(PutMessageStatus.SERVICE_NOT_AVAILABLE);
        }
        PutFilter filter = putFilter;
        PutMessageResult known = filter.check(msg);
        if (known != null) {
            return CompletableFuture.completedFuture(known);
        }
        CompletableFuture<PutMessageResult> f;
        try {
            prepare(msg);
            msg.setBodyCRC(UtilAll.crc32(msg.getBody()));
            Put put = new Put(COUNTED_SEND.get());
            f = completion(n.append(term -> put.single(term, msg)), msg, put);
        } catch (RuntimeException e) {
            // Nothing was appended.
            filter.putDone(msg, new PutMessageResult(PutMessageStatus.UNKNOWN_ERROR, null));
            throw e;
        }
        return f.whenComplete((r, e) -> filter.putDone(msg, e == null ? r : null));
    }

    /** Puts a batch as consecutive entries, its queue offsets taken as for {@link #asyncPutMessage}. */
    @Override
    public CompletableFuture<PutMessageResult> asyncPutMessages(MessageExtBatch batch) {
        try {
            return putBatch(batch);
        } finally {
            endCountedSend();
        }
    }

    private CompletableFuture<PutMessageResult> putBatch(MessageExtBatch batch) {
        RaftGroupNode n = node;
        if (n == null || n.status().role() != Role.LEADER) {
            return done(PutMessageStatus.SERVICE_NOT_AVAILABLE);
        }
        if (MessageSysFlag.getTransactionValue(batch.getSysFlag()) != MessageSysFlag.TRANSACTION_NOT_TYPE
            || batch.getDelayTimeLevel() > 0) {
            return done(PutMessageStatus.MESSAGE_ILLEGAL);
        }
        prepare(batch);
        Put put = new Put(COUNTED_SEND.get());
        return completion(n.append(term -> put.batch(term, batch)), batch, put);
    }

    /** A put refused while its entries were being built: nothing was appended and no queue offset taken. */
    private static final class PutRefused extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final transient PutMessageResult result;

        PutRefused(PutMessageResult result) {
            super(result.getPutMessageStatus().name(), null, false, false);
            this.result = result;
        }
    }

    /**
     * One put's entries, built on the Raft node's thread when they are proposed (so every queue offset table change
     * happens there, one put at a time, in log order): the queue offsets are assigned, the messages encoded, and the
     * table moved on only when everything is right; otherwise {@link PutRefused} leaves the table as it was.
     */
    private final class Put {
        /** The send this put serves, told when its entries are built; null for a put of no counted send. */
        private final ServedSend served;
        /** Set by the builder, read once the append completed (which happens after it ran). */
        private long firstQueueOffset;
        private int bytes;

        Put(ServedSend served) {
            this.served = served;
        }

        /** The entries are built and go into the log: the send's message may be stored from now on. */
        private <T> T proposed(T entries) {
            if (served != null) {
                served.proposed = true;
            }
            return entries;
        }

        List<byte[]> single(long term, MessageExtBrokerInner msg) {
            checkOpen(term);
            beginTimeInLock = store.now();
            try {
                MessageExtEncoder encoder = encoders.get();
                assignOffset(msg);
                PutMessageResult illegal = encoder.encode(msg);
                if (illegal != null) {
                    throw new PutRefused(illegal);
                }
                ByteBuffer encoded = encoder.getEncoderBuffer();
                byte[] body = new byte[encoded.getInt(0)];
                encoded.get(0, body);
                checkSize(body);
                firstQueueOffset = msg.getQueueOffset();
                int tranType = MessageSysFlag.getTransactionValue(msg.getSysFlag());
                if (tranType == MessageSysFlag.TRANSACTION_PREPARED_TYPE
                    || tranType == MessageSysFlag.TRANSACTION_ROLLBACK_TYPE) {
                    firstQueueOffset = 0;
                    ByteBuffer.wrap(body).putLong(MessageDecoder.QUEUE_OFFSET_POSITION, 0);
                }
                store.increaseOffset(msg, getMessageNum(msg));
                bytes = body.length;
                return proposed(List.of(body));
            } finally {
                built(msg.getTopic());
            }
        }

        List<byte[]> batch(long term, MessageExtBatch batch) {
            checkOpen(term);
            beginTimeInLock = store.now();
            try {
                ByteBuffer all;
                try {
                    all = encoders.get().encode(batch, new PutMessageContext(generateKey(keyBuilders.get(), batch)));
                } catch (RuntimeException e) {
                    throw new PutRefused(new PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL, null));
                }
                assignOffset(batch);
                firstQueueOffset = batch.getQueueOffset();
                long queueOffset = firstQueueOffset;
                List<byte[]> bodies = new ArrayList<>();
                while (all.hasRemaining()) {
                    byte[] body = new byte[all.getInt(all.position())];
                    all.get(body);
                    checkSize(body);
                    ByteBuffer.wrap(body).putLong(MessageDecoder.QUEUE_OFFSET_POSITION, queueOffset++);
                    bodies.add(body);
                    bytes += body.length;
                }
                if (bodies.isEmpty()) {
                    throw new PutRefused(new PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL, null));
                }
                store.increaseOffset(batch, (short) bodies.size());
                return proposed(bodies);
            } finally {
                built(batch.getTopic());
            }
        }

        /**
         * Ends the time RocketMQ reads as "in the lock": past {@code osPageCacheBusyTimeOutMills} (1 s) the broker
         * refuses sends as busy, so a build that took over 500 ms is logged, as the stock CommitLog logs a slow lock.
         */
        private void built(String topic) {
            long took = store.now() - beginTimeInLock;
            beginTimeInLock = 0;
            if (took > SLOW_BUILD_MS) {
                LOG.warn("building a put to {} took {} ms on the raft thread; while a build takes longer than "
                    + "osPageCacheBusyTimeOutMills ({} ms) the broker refuses sends as busy", topic, took,
                    store.getMessageStoreConfig().getOsPageCacheBusyTimeOutMills());
            }
        }

        /** Reads the message's queue offset(s) from the table, which moves on only with {@code increaseOffset}. */
        private void assignOffset(MessageExtBrokerInner m) {
            try {
                store.assignOffset(m);
            } catch (Exception e) {
                LOG.error("no queue offset for a message to {}", m.getTopic(), e);
                throw new PutRefused(new PutMessageResult(PutMessageStatus.UNKNOWN_ERROR, null));
            }
        }

        /** Puts go in only in the term the role handler opened them for (its queue offset table is that term's). */
        private void checkOpen(long term) {
            if (term != putTerm) {
                throw new PutRefused(new PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, null));
            }
        }

        private void checkSize(byte[] body) {
            if (body.length > storage.maxEntryBytes()) {
                throw new PutRefused(new PutMessageResult(PutMessageStatus.MESSAGE_ILLEGAL, null));
            }
        }
    }

    /** Sets what a put sets before encoding: the store time, the message version, the IPv6 flags. */
    private void prepare(MessageExtBrokerInner m) {
        m.setStoreTimestamp(System.currentTimeMillis());
        m.setVersion(store.getMessageStoreConfig().isAutoMessageVersionOnTopicLen()
            && m.getTopic().length() > Byte.MAX_VALUE ? MessageVersion.MESSAGE_VERSION_V2 : MessageVersion.MESSAGE_VERSION_V1);
        if (((InetSocketAddress) m.getBornHost()).getAddress() instanceof Inet6Address) {
            m.setBornHostV6Flag();
        }
        if (((InetSocketAddress) m.getStoreHost()).getAddress() instanceof Inet6Address) {
            m.setStoreHostAddressV6Flag();
        }
    }

    /**
     * The put's result once the Raft group decided: on success the first message's offset, every message's id
     * (comma-joined, as stock batch puts answer), the queue offset of the first message and the bytes written.
     */
    private CompletableFuture<PutMessageResult> completion(CompletableFuture<AppendResult> appended,
                                                           MessageExtBrokerInner m, Put put) {
        long storeTimestamp = m.getStoreTimestamp();
        long started = System.currentTimeMillis();
        String topic = m.getTopic();
        InetSocketAddress storeHost = (InetSocketAddress) m.getStoreHost();
        return appended.handle((r, error) -> {
            if (error != null) {
                Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
                if (cause instanceof PutRefused refused) {
                    return refused.result;
                }
                LOG.error("put of a message to {} failed", topic, cause);
                return new PutMessageResult(PutMessageStatus.UNKNOWN_ERROR, null);
            }
            if (r.status() != AppendResult.Status.OK) {
                return new PutMessageResult(map(r.status()), null);
            }
            long[] pos = r.positions();
            // Built only when asked for, as stock does: most callers never read the ids.
            Supplier<String> msgIds = () -> {
                ByteBuffer address = MessageExt.socketAddress2ByteBuffer(storeHost);
                StringBuilder ids = new StringBuilder();
                for (int i = 0; i < pos.length; i++) {
                    ids.append(i > 0 ? "," : "").append(MessageDecoder.createMessageId(
                        ByteBuffer.allocate(address.limit() + 8), address.duplicate(), pos[i] + BODY_OFFSET));
                }
                return ids.toString();
            };
            AppendMessageResult ar = new AppendMessageResult(AppendMessageStatus.PUT_OK, pos[0] + BODY_OFFSET,
                put.bytes, msgIds, storeTimestamp, put.firstQueueOffset, System.currentTimeMillis() - started);
            ar.setMsgNum(pos.length);
            store.getStoreStatsService().getSinglePutMessageTopicTimesTotal(topic).add(pos.length);
            store.getStoreStatsService().getSinglePutMessageTopicSizeTotal(topic).add(put.bytes);
            return new PutMessageResult(PutMessageStatus.PUT_OK, ar);
        });
    }

    /** Raft outcomes as put outcomes. */
    static PutMessageStatus map(AppendResult.Status status) {
        return switch (status) {
            case OK -> PutMessageStatus.PUT_OK;
            case TIMEOUT -> PutMessageStatus.IN_SYNC_REPLICAS_NOT_ENOUGH;
            case OVERLOADED -> PutMessageStatus.OS_PAGE_CACHE_BUSY;
            case NOT_LEADER, TRANSFERRING, LOST, STOPPED, EXPIRED, DISK_FULL -> PutMessageStatus.SERVICE_NOT_AVAILABLE;
        };
    }

    private static CompletableFuture<PutMessageResult> done(PutMessageStatus status) {
        return CompletableFuture.completedFuture(new PutMessageResult(status, null));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Expiry

    /** Reaches the Raft log's expiry as the 5-argument overload does. */
    @Override
    public int deleteExpiredFile(long expiredTime, int deleteFilesInterval, long intervalForcibly,
                                 boolean cleanImmediately) {
        return deleteExpiredRaftFiles(expiredTime, deleteFilesInterval, intervalForcibly, cleanImmediately,
            Integer.MAX_VALUE);
    }

    /** The overload the broker's cleaner calls; the Raft log's retention runs from here. */
    @Override
    public int deleteExpiredFile(long expiredTime, int deleteFilesInterval, long intervalForcibly,
                                 boolean cleanImmediately, int deleteFileBatchMax) {
        if (hasOldFiles()) {
            return deleteExpiredOldFiles(expiredTime, deleteFilesInterval, intervalForcibly, cleanImmediately,
                deleteFileBatchMax);
        }
        return deleteExpiredRaftFiles(expiredTime, deleteFilesInterval, intervalForcibly, cleanImmediately,
            deleteFileBatchMax);
    }

    /**
     * Old CommitLog files expire first, oldest first, as stock does; the Raft log's files wait until they are gone.
     * The stock file queue never deletes its last file, so the last old file (full, as the Raft log started after
     * it) goes here once it expired too.
     */
    private int deleteExpiredOldFiles(long expiredTime, int deleteFilesInterval, long intervalForcibly,
                                      boolean cleanImmediately, int deleteFileBatchMax) {
        int deleted = super.deleteExpiredFile(expiredTime, deleteFilesInterval, intervalForcibly, cleanImmediately,
            deleteFileBatchMax);
        List<MappedFile> old = mappedFileQueue.getMappedFiles();
        if (old.size() == 1) {
            MappedFile last = old.get(0);
            if ((cleanImmediately || System.currentTimeMillis() >= last.getLastModifiedTimestamp() + expiredTime)
                && last.destroy(intervalForcibly)) {
                old.remove(last);
                deleted++;
                LOG.info("the last CommitLog file from before the raft log, {}, expired: the raft log alone remains",
                    last.getFileName());
            }
        }
        return deleted;
    }

    /**
     * The Raft log's expiry, for both overloads. The node deletes the files itself, about once a second, as
     * {@link RaftRetention} says; this call refreshes the policy from the live store config (so {@code fileReservedTime},
     * {@code deleteWhen}, {@code diskMaxUsedSpaceRatio} and {@code cleanFileForciblyEnable} changed at run time apply),
     * makes the next run clean at once when {@code cleanImmediately}, and returns the number of data files deleted
     * since the previous call. The expiry time comes from the config ({@code expiredTime} is the same value in ms);
     * the intervals and the batch size do not apply (the node deletes at most
     * {@value dev.dledger.raft.store.LogRetention#MAX_FILES_PER_RUN} files a run, without pauses).
     */
    private int deleteExpiredRaftFiles(long expiredTime, int deleteFilesInterval, long intervalForcibly,
                                       boolean cleanImmediately, int deleteFileBatchMax) {
        RaftRetention r = retention;
        return r == null ? 0 : r.deleteExpired(cleanImmediately);
    }

    /** The readers' view of the data files (tests look at what is mapped). */
    DataFiles dataFiles() {
        return files;
    }
}
