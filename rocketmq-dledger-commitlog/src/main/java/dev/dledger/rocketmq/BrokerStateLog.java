package dev.dledger.rocketmq;

import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.AppendResult;
import dev.dledger.raft.server.RaftGroupNode;
import java.io.IOException;
import java.io.Reader;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.broker.BrokerPathConfigHelper;
import org.apache.rocketmq.broker.offset.ConsumerOffsetManager;
import org.apache.rocketmq.broker.schedule.DelayOffsetSerializeWrapper;
import org.apache.rocketmq.broker.schedule.ScheduleMessageService;
import org.apache.rocketmq.broker.subscription.SubscriptionGroupManager;
import org.apache.rocketmq.broker.topic.TopicConfigManager;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.remoting.protocol.RemotingSerializable;
import org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig;
import org.apache.rocketmq.store.config.StorePathConfigHelper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The broker's own state as entries of the group's Raft log ({@link BrokerStateEntry}): the master proposes every
 * change of consumer offsets, topics and subscription groups there (and its delay offsets every 200 ms) and
 * answers its client only once the entry is committed and applied; every node applies the entries in log order,
 * on the Raft node's apply thread, to its managers. A new leader therefore holds exactly the committed state before
 * it becomes master (the role handler
 * waits until everything committed is applied), with nothing copied from anywhere.
 *
 * <p>Hooks: the broker's three managers are replaced, before they load their files, by subclasses
 * ({@link RaftConsumerOffsetManager}, {@link RaftTopicConfigManager}, {@link RaftSubscriptionGroupManager}) whose
 * write primitives come here while this node leads; the stock code around them (processors, auto-creation, the
 * attribute merge, persistence, registration) is unchanged. The apply path calls the stock primitives.
 *
 * <p>Offset commits are batched: callers queue them, and one thread turns everything queued into one entry, waits
 * for it, and answers every caller; so one entry carries the commits that arrived during the previous entry's round.
 * Every caller, the client's {@code updateConsumerOffset}, the commit riding on a pull, and the broker's own (POP
 * revive, transaction checks) waits until its commit is applied: a pull is answered once the offset it committed is
 * durable on a majority (a pull-commit costs a pull at most one Raft round more).
 *
 * <p>Thread-safety: every method may be called from any thread. A change proposed on the apply thread itself (it
 * cannot wait for its own apply) is applied locally; none is expected there.
 */
public final class BrokerStateLog {

    private static final Logger LOG = LoggerFactory.getLogger(BrokerStateLog.class);
    /** The checkpoint's file name, next to the managers' files in {@code ${storePathRootDir}/config}. */
    static final String CHECKPOINT_FILE = "brokerState.checkpoint";
    /** How often the managers' files and the checkpoint are written while state entries are applied. */
    static final long CHECKPOINT_INTERVAL_MS = 5000;
    /** How often the master proposes the delay offsets that moved (at most this much delivery is repeated after a
     * failover). */
    static final long DELAY_OFFSET_INTERVAL_MS = 200;
    /** Offset commits carried by one entry at most. */
    static final int MAX_OFFSETS_PER_ENTRY = 4096;

    private final String name;
    private final LinkedBlockingQueue<PendingOffset> offsets = new LinkedBlockingQueue<>();
    private volatile RaftCommitLog log;
    private volatile Thread applyThread;
    private volatile RaftConsumerOffsetManager offsetManager;
    private volatile RaftTopicConfigManager topicManager;
    private volatile RaftSubscriptionGroupManager groupManager;
    private Thread batcher;
    /** Set when a snapshot replaced state entries this node never applied: see {@link #fullCopyNeeded()}. */
    private volatile boolean fullCopyNeeded;
    /** The checkpoint file: the last state entry whose effect the managers' files hold. */
    private final Path checkpointFile;
    /** The checkpoint read at start: entries up to it are in the files and are not applied again; -1 for none. */
    private long checkpointIndex = -1;
    private long checkpointTerm;
    private boolean checkpointChecked;
    private long skippedAtStart;
    /** The last state entry applied (index, term), for the next checkpoint. */
    private volatile long[] lastApplied = {-1, 0};
    /** Written under {@link #checkpointLock}; read by {@link #keepFromIndex()} on the Raft thread. */
    private volatile long checkpointWritten = -1;
    /** The marker file: the state of this node's config files went into the log once (see {@link #importOnce()}). */
    static final String IMPORT_MARKER_FILE = "brokerState.imported";
    /** Ops per entry of the import at most (and {@link #IMPORT_ENTRY_BYTES} bytes). */
    static final int IMPORT_OPS_PER_ENTRY = 500;
    static final int IMPORT_ENTRY_BYTES = 64 * 1024;
    /** Whether this node's config files were written without the log (stock) and are not imported yet. */
    private volatile boolean importPending;
    /**
     * The checkpoint says {@code importPending=true}: written by a conversion ({@code dledger-migrate}, whose log holds
     * no state entry through the checkpoint's), the config files still go into the log ({@link #checkImport}).
     */
    private boolean convertedCheckpoint;
    /** The tables a snapshot's image holds, by name (in name order): see {@link #registerTable}. */
    private final Map<String, StateTable> tables = new java.util.concurrent.ConcurrentSkipListMap<>();
    private final java.util.concurrent.locks.ReentrantLock checkpointLock = new java.util.concurrent.locks.ReentrantLock();
    private Thread checkpointer;
    private Thread delayReplicator;
    /** The timer wheel's progress on the log (issue 15); set by {@link #attach} when the state rides the log. */
    private volatile TimerProgressLog timerProgress;
    private final BrokerController broker;
    /** The delay offsets last proposed by this master (level to offset); touched by the replicator thread only. */
    private final Map<Integer, Long> delayProposed = new java.util.HashMap<>();

    BrokerStateLog(BrokerController broker, String name, Path checkpointFile) {
        this.broker = broker;
        this.name = name;
        this.checkpointFile = checkpointFile;
    }

    /**
     * Replaces {@code broker}'s consumer offset, topic config and subscription group managers by ones whose changes
     * go through the Raft log, and returns the log of broker state; call before {@code initializeMetadata()} (which
     * loads them) and {@code initializeMessageStore()} (which takes the topic table). Brokers whose managers are not
     * the stock JSON-file ones (LMQ, RocksDB or V2 config storage) keep them: their state is not carried by the log,
     * which the broker log says.
     */
    public static BrokerStateLog install(BrokerController broker) {
        BrokerStateLog state = new BrokerStateLog(broker, broker.getBrokerConfig().getBrokerName(), Path.of(
            BrokerPathConfigHelper.getConsumerOffsetPath(broker.getMessageStoreConfig().getStorePathRootDir()))
            .resolveSibling(CHECKPOINT_FILE));
        if (broker.getConsumerOffsetManager().getClass() == ConsumerOffsetManager.class
            && broker.getTopicConfigManager().getClass() == TopicConfigManager.class
            && broker.getSubscriptionGroupManager().getClass() == SubscriptionGroupManager.class) {
            state.offsetManager = new RaftConsumerOffsetManager(broker, state);
            state.topicManager = new RaftTopicConfigManager(broker, state);
            state.groupManager = new RaftSubscriptionGroupManager(broker, state);
            broker.setConsumerOffsetManager(state.offsetManager);
            broker.setTopicConfigManager(state.topicManager);
            broker.setSubscriptionGroupManager(state.groupManager);
            state.registerStockTables();
            // The slave no longer copies what the log carries.
            replaceSlaveSynchronize(broker, new StateSlaveSynchronize(broker, state));
        } else {
            LOG.warn("[{}] the broker's config managers are {}, {}, {} (LMQ, RocksDB or V2 storage): consumer offsets, "
                    + "topics and subscription groups are not carried by the raft log", state.name,
                broker.getConsumerOffsetManager().getClass().getSimpleName(),
                broker.getTopicConfigManager().getClass().getSimpleName(),
                broker.getSubscriptionGroupManager().getClass().getSimpleName());
        }
        return state;
    }

    private static void replaceSlaveSynchronize(BrokerController broker, StateSlaveSynchronize sync) {
        try {
            java.lang.reflect.Field f = BrokerController.class.getDeclaredField("slaveSynchronize");
            f.setAccessible(true);
            f.set(broker, sync);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("cannot replace BrokerController.slaveSynchronize (is this RocketMQ "
                + "5.5.1?): " + e, e);
        }
        if (broker.getSlaveSynchronize() != sync) {
            throw new IllegalStateException("BrokerController.slaveSynchronize was not replaced");
        }
    }

    /**
     * Whether this node must copy topics, groups and offsets from its master once, as stock slaves do: it was caught
     * up by a snapshot without a state image (from a leader of a version before images), so it never applied the
     * state entries the snapshot replaced. Cleared by {@link #fullCopyDone()}.
     */
    boolean fullCopyNeeded() {
        return fullCopyNeeded;
    }

    void fullCopyDone() {
        fullCopyNeeded = false;
    }

    /** Whether the managers were replaced (the state rides the log). */
    public boolean covers() {
        return offsetManager != null;
    }

    /**
     * Connects to the commit log, whose apply path hands every state entry here; starts the offset batcher. Call
     * once, after {@link RaftInstaller#install} and before the store starts.
     */
    public void attach(RaftCommitLog commitLog) {
        if (log != null) {
            throw new IllegalStateException("the broker state log is already attached");
        }
        log = commitLog;
        commitLog.onStateEntry(new RaftCommitLog.StateApplier() {
            @Override
            public void apply(long index, long term, byte[] body) {
                BrokerStateLog.this.apply(index, term, body);
            }

            @Override
            public void snapshotInstalled(long lastIndex, byte[] image, boolean atStart) {
                BrokerStateLog.this.snapshotInstalled(lastIndex, image, atStart);
            }

            @Override
            public byte[] image() {
                return BrokerStateLog.this.image();
            }

            @Override
            public long keepFromIndex() {
                return BrokerStateLog.this.keepFromIndex();
            }

            @Override
            public long durableThrough() {
                return BrokerStateLog.this.durableThrough();
            }
        });
        if (covers()) {
            readCheckpoint();
            checkImport();
            commitLog.beforeMaster(this::importOnce);
            broker.getBrokerAttachedPlugins().add(new StateRuntimeInfo());
            batcher = new Thread(this::batchOffsets, "BrokerStateOffsets-" + commitLog.settings().selfId());
            batcher.setDaemon(true);
            batcher.start();
            checkpointer = new Thread(this::writeCheckpoints, "BrokerStateCheckpoint-" + commitLog.settings().selfId());
            checkpointer.setDaemon(true);
            checkpointer.start();
            delayReplicator = new Thread(this::replicateDelayOffsets, "BrokerStateDelay-" + commitLog.settings().selfId());
            delayReplicator.setDaemon(true);
            delayReplicator.start();
            attachTimed(commitLog);
            // The commit log closes its role listeners first when it shuts down, while the node still runs.
            commitLog.onRoleChange(new ShutdownHook());
        }
    }

    /**
     * Whether a change made now must go through the log: this node leads the Raft group (a follower's managers change
     * only by applying entries) and the caller is not the apply thread.
     */
    boolean throughLog() {
        RaftGroupNode n = log == null ? null : log.node();
        return n != null && n.status().role() == Role.LEADER && Thread.currentThread() != applyThread;
    }

    /** Whether this node runs a Raft node that does not lead (changes from clients are refused here). */
    boolean following() {
        RaftGroupNode n = log == null ? null : log.node();
        return n != null && n.status().role() != Role.LEADER && Thread.currentThread() != applyThread;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Proposing

    /**
     * Appends one entry of {@code ops} and waits until it is committed and applied here.
     *
     * @throws IllegalStateException in one line naming the change when it was not committed (not leader any more,
     *                               no quorum in time, stopped); the change may still commit later, as any request
     *                               whose answer was lost
     */
    void propose(String what, List<BrokerStateEntry.Op> ops) {
        RaftGroupNode n = log.node();
        if (n == null) {
            // A broker of a container whose node waits for the container's boot (ContainerRaft#startNode).
            throw new IllegalStateException(what + " not committed: the raft node of " + log.settings().group()
                + " has not started yet");
        }
        AppendResult r = await(what, n.append(List.of(new BrokerStateEntry(ops).encode())));
        if (r.status() != AppendResult.Status.OK) {
            throw new IllegalStateException(what + " not committed by the raft group: " + r.status());
        }
    }

    private AppendResult await(String what, CompletableFuture<AppendResult> f) {
        long timeoutMs = log.settings().appendTimeoutMs() + 2000L;
        try {
            return f.get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(what + " interrupted while waiting for the raft group", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException(what + " failed in the raft group: " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException(what + " not committed by the raft group within " + timeoutMs + " ms", e);
        }
    }

    /** A queued offset commit and its caller's answer. */
    private record PendingOffset(BrokerStateEntry.OffsetCommit commit, CompletableFuture<AppendResult> done) {
    }

    /**
     * Queues an offset commit for the next entry and waits until that entry is committed and applied here.
     *
     * @throws IllegalStateException in one line naming the queue when it was not committed
     */
    void commitOffset(String group, String topic, int queueId, long offset) {
        CompletableFuture<AppendResult> done = new CompletableFuture<>();
        offsets.add(new PendingOffset(new BrokerStateEntry.OffsetCommit(group, topic, queueId, offset), done));
        String what = "offset commit of group " + group + " on " + topic + "/" + queueId;
        AppendResult r = await(what, done);
        if (r.status() != AppendResult.Status.OK) {
            throw new IllegalStateException(what + " not committed by the raft group: " + r.status());
        }
    }

    /** The batcher: everything queued goes into one entry; the next entry takes what queued meanwhile. */
    private void batchOffsets() {
        List<PendingOffset> batch = new ArrayList<>();
        while (!Thread.currentThread().isInterrupted()) {
            try {
                batch.add(offsets.take());
            } catch (InterruptedException e) {
                return;
            }
            offsets.drainTo(batch, MAX_OFFSETS_PER_ENTRY - 1);
            // The last commit of a queue wins, as it would when applied one after another.
            Map<String, BrokerStateEntry.OffsetCommit> latest = new LinkedHashMap<>();
            for (PendingOffset p : batch) {
                BrokerStateEntry.OffsetCommit c = p.commit();
                latest.put(c.topic() + '@' + c.group() + '#' + c.queueId(), c);
            }
            AppendResult r;
            try {
                RaftGroupNode n = log.node();
                if (n == null) {
                    r = AppendResult.of(AppendResult.Status.STOPPED, null);
                } else {
                    byte[] body = new BrokerStateEntry(new ArrayList<>(latest.values())).encode();
                    r = n.append(List.of(body)).get(log.settings().appendTimeoutMs() + 1000L, TimeUnit.MILLISECONDS);
                }
            } catch (InterruptedException e) {
                fail(batch, new IllegalStateException("the broker is stopping"));
                return;
            } catch (ExecutionException | TimeoutException | RuntimeException e) {
                fail(batch, e instanceof ExecutionException ? e.getCause() : e);
                batch.clear();
                continue;
            }
            for (PendingOffset p : batch) {
                p.done().complete(r);
            }
            batch.clear();
        }
    }

    private static void fail(List<PendingOffset> batch, Throwable error) {
        for (PendingOffset p : batch) {
            p.done().completeExceptionally(error);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Applying

    /**
     * Applies one committed state entry to the managers, on the Raft node's apply thread, in log order. An entry this
     * broker cannot read is logged and skipped (it changes nothing here); it never stops the apply path.
     */
    void apply(long index, long term, byte[] body) {
        applyThread = Thread.currentThread();
        if (!checkpointChecked) {
            checkpointChecked = true;
            if (checkpointIndex >= 0 && log != null && !log.holdsEntry(checkpointIndex, checkpointTerm)) {
                LOG.warn("[{}] {} names entry {} of term {}, which this raft log does not hold: the whole log is "
                    + "applied again", name, checkpointFile, checkpointIndex, checkpointTerm);
                checkpointIndex = -1;
            }
        }
        if (index <= checkpointIndex) {
            // Its effect is in the managers' files already (written after it was applied).
            if (++skippedAtStart % 100_000 == 1) {
                LOG.info("[{}] state entries up to {} are in the config files; skipping them", name, checkpointIndex);
            }
            return;
        }
        applyEntry(index, body);
        lastApplied = new long[] {index, term};
    }

    private void applyEntry(long index, byte[] body) {
        BrokerStateEntry entry;
        try {
            entry = BrokerStateEntry.decode(body);
        } catch (IllegalArgumentException e) {
            LOG.error("[{}] raft entry {} skipped: {}", name, index, e.getMessage());
            return;
        }
        if (!covers()) {
            LOG.warn("[{}] raft entry {} holds broker state this broker does not keep in the log; skipped", name,
                index);
            return;
        }
        countApplied(entry);
        for (BrokerStateEntry.Op op : entry.ops()) {
            try {
                applyOne(op);
            } catch (RuntimeException e) {
                LOG.error("[{}] raft entry {}: {} could not be applied: {}", name, index, op, e.toString());
            }
        }
    }

    private void applyOne(BrokerStateEntry.Op op) {
        if (op instanceof BrokerStateEntry.OffsetCommit o) {
            offsetManager.applyCommit(o.group(), o.topic(), o.queueId(), o.offset());
        } else if (op instanceof BrokerStateEntry.TopicPut t) {
            TopicConfig config = RemotingSerializable.fromJson(t.json(), TopicConfig.class);
            if (config == null || !t.topic().equals(config.getTopicName())) {
                throw new IllegalArgumentException("the config of topic " + t.topic() + " names "
                    + (config == null ? "nothing" : config.getTopicName()));
            }
            topicManager.applyPut(config);
        } else if (op instanceof BrokerStateEntry.TopicDelete t) {
            topicManager.applyDelete(t.topic());
        } else if (op instanceof BrokerStateEntry.GroupPut g) {
            SubscriptionGroupConfig config = RemotingSerializable.fromJson(g.json(), SubscriptionGroupConfig.class);
            if (config == null || !g.group().equals(config.getGroupName())) {
                throw new IllegalArgumentException("the config of group " + g.group() + " names "
                    + (config == null ? "nothing" : config.getGroupName()));
            }
            groupManager.applyPut(config, g.ifAbsent());
        } else if (op instanceof BrokerStateEntry.GroupDelete g) {
            groupManager.applyDelete(g.group());
        } else if (op instanceof BrokerStateEntry.OffsetsRemoveGroup g) {
            offsetManager.applyRemoveGroup(g.group());
        } else if (op instanceof BrokerStateEntry.OffsetsRemoveTopic t) {
            offsetManager.applyRemoveTopic(t.topic());
        } else if (op instanceof BrokerStateEntry.DelayOffset d) {
            applyDelayOffset(d);
        } else if (op instanceof BrokerStateEntry.TimerProgress t) {
            applyTimerProgress(t);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Import of config files written without the log

    /**
     * At start: the config files were written without the log (a store of stock DLedger or master/slave mode, whose
     * slaves copied them from the master) when one of them exists but neither the checkpoint nor the import marker
     * does; then this node imports its tables when it first leads ({@link #importOnce()}). Otherwise the marker is
     * written now, if missing: there is nothing to import, now or later.
     */
    private void checkImport() {
        Path marker = checkpointFile.resolveSibling(IMPORT_MARKER_FILE);
        if (Files.exists(marker)) {
            return;
        }
        String root = broker.getMessageStoreConfig().getStorePathRootDir();
        boolean files = Files.exists(Path.of(BrokerPathConfigHelper.getTopicConfigPath(root)))
            || Files.exists(Path.of(BrokerPathConfigHelper.getSubscriptionGroupPath(root)))
            || Files.exists(Path.of(BrokerPathConfigHelper.getConsumerOffsetPath(root)));
        if (files && (!Files.exists(checkpointFile) || convertedCheckpoint)) {
            importPending = true;
            LOG.info("[{}] the config files in {} were written without the raft log: their topics, groups and offsets "
                + "go into the log when this node first leads", name, checkpointFile.getParent());
        } else {
            writeImportMarker("nothing to import: " + (files ? "the files follow the raft log" : "no config files"));
        }
    }

    /**
     * Before this node first becomes master (it leads and applied everything committed): when its config files were
     * written without the log, proposes its whole tables (topics, subscription groups, consumer offsets, delay
     * offsets) as state entries, so that every node holds them, and writes the marker. The tables are the files plus
     * every state entry applied since, so nothing the log changed meanwhile is undone. On the role handler's thread;
     * a failed proposal (leadership lost) leaves the import pending for the next time this node leads.
     */
    void importOnce() {
        if (!importPending || !throughLog()) {
            return;
        }
        List<BrokerStateEntry.Op> ops = new ArrayList<>();
        int topics = 0;
        int groups = 0;
        int offsets = 0;
        for (TopicConfig t : topicManager.getTopicConfigTable().values()) {
            ops.add(new BrokerStateEntry.TopicPut(t.getTopicName(), json(t)));
            topics++;
        }
        for (SubscriptionGroupConfig g : groupManager.getSubscriptionGroupTable().values()) {
            ops.add(new BrokerStateEntry.GroupPut(g.getGroupName(), json(g), false));
            groups++;
        }
        for (Map.Entry<String, java.util.concurrent.ConcurrentMap<Integer, Long>> e
            : offsetManager.getOffsetTable().entrySet()) {
            int at = e.getKey().indexOf(TOPIC_GROUP_SEPARATOR);
            if (at <= 0) {
                continue;
            }
            String topic = e.getKey().substring(0, at);
            String group = e.getKey().substring(at + 1);
            for (Map.Entry<Integer, Long> q : e.getValue().entrySet()) {
                ops.add(new BrokerStateEntry.OffsetCommit(group, topic, q.getKey(), q.getValue()));
                offsets++;
            }
        }
        for (Map.Entry<Integer, Long> d : delayOffsets().entrySet()) {
            ops.add(new BrokerStateEntry.DelayOffset(d.getKey(), d.getValue()));
        }
        try {
            List<BrokerStateEntry.Op> chunk = new ArrayList<>();
            int bytes = 0;
            for (BrokerStateEntry.Op op : ops) {
                int size = new BrokerStateEntry(List.of(op)).encode().length;
                if (!chunk.isEmpty() && (chunk.size() >= IMPORT_OPS_PER_ENTRY || bytes + size > IMPORT_ENTRY_BYTES)) {
                    propose("import of the config files", chunk);
                    chunk = new ArrayList<>();
                    bytes = 0;
                }
                chunk.add(op);
                bytes += size;
            }
            if (!chunk.isEmpty()) {
                propose("import of the config files", chunk);
            }
        } catch (RuntimeException e) {
            LOG.warn("[{}] {}; the import is tried again when this node leads next", name, e.getMessage());
            return;
        }
        importPending = false;
        String what = "imported " + topics + " topics, " + groups + " subscription groups, " + offsets
            + " consumer offsets and " + delayOffsets().size() + " delay offsets into the raft log";
        writeImportMarker(what);
        LOG.info("[{}] the config files' state {}", name, what);
    }

    private static final char TOPIC_GROUP_SEPARATOR = '@';

    private void writeImportMarker(String what) {
        Path marker = checkpointFile.resolveSibling(IMPORT_MARKER_FILE);
        try {
            Files.createDirectories(marker.getParent());
            Path tmp = marker.resolveSibling(IMPORT_MARKER_FILE + ".tmp");
            Files.writeString(tmp, what + "\n");
            Files.move(tmp, marker, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            LOG.warn("[{}] {} not written ({}): {}", name, marker, what, e.toString());
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Counters

    private final java.util.concurrent.atomic.AtomicLong offsetEntriesApplied = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicLong offsetCommitsApplied = new java.util.concurrent.atomic.AtomicLong();

    /** Counts an applied entry that carries offset commits, and its commits. */
    private void countApplied(BrokerStateEntry entry) {
        long commits = entry.ops().stream().filter(op -> op instanceof BrokerStateEntry.OffsetCommit).count();
        if (commits > 0) {
            offsetEntriesApplied.incrementAndGet();
            offsetCommitsApplied.addAndGet(commits);
        }
    }

    /**
     * Adds to the broker's runtime info ({@code mqadmin brokerStatus}): {@code brokerStateOffsetEntries}, the log
     * entries carrying offset commits this node applied since it started, and {@code brokerStateOffsetCommits}, the
     * offset commits they carried (so their rate over a window is the cost of committing consumers).
     */
    private final class StateRuntimeInfo implements org.apache.rocketmq.broker.plugin.BrokerAttachedPlugin {
        @Override
        public String pluginName() {
            return "raft-broker-state";
        }

        @Override
        public boolean load() {
            return true;
        }

        @Override
        public void start() {
        }

        @Override
        public void shutdown() {
        }

        @Override
        public void syncMetadata() {
        }

        @Override
        public void syncMetadataReverse(String brokerAddr) {
        }

        @Override
        public void statusChanged(boolean shouldStart) {
        }

        @Override
        public void buildRuntimeInfo(Map<String, String> info) {
            info.put("brokerStateOffsetEntries", Long.toString(offsetEntriesApplied.get()));
            info.put("brokerStateOffsetCommits", Long.toString(offsetCommitsApplied.get()));
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Snapshot images

    /**
     * One table of broker state as a snapshot's image carries it ({@link BrokerStateImage}): its whole content as
     * text, and the replacement of its whole content by such a text. Register every table the state entries change
     * ({@link #registerTable}); then a node caught up by a snapshot gets it without further change.
     */
    public interface StateTable {
        /** The table's whole content (e.g. its config file's JSON); null when there is nothing to carry. */
        String encode();

        /**
         * Replaces the table's whole content by {@code text} from {@link #encode()} on the leader: entries it lacks
         * are removed. On the Raft node's apply thread.
         */
        void restore(String text);

        /** Writes the table's file, if it has one (called before the checkpoint that says the file holds it). */
        void persist();
    }

    /**
     * Registers a table whose content a snapshot carries under {@code name} (unique, stable across versions: a node
     * that gets an image with a name it does not know logs it and keeps its own table). Call before the store starts.
     */
    public void registerTable(String name, StateTable table) {
        if (tables.putIfAbsent(Objects.requireNonNull(name, "name"), Objects.requireNonNull(table, "table")) != null) {
            throw new IllegalArgumentException("a broker state table named " + name + " is registered already");
        }
    }

    private void registerStockTables() {
        registerTable("topics", new StateTable() {
            @Override
            public String encode() {
                return topicManager.encode();
            }

            @Override
            public void restore(String text) {
                topicManager.applyImage(text);
            }

            @Override
            public void persist() {
                topicManager.persist();
            }
        });
        registerTable("subscriptionGroups", new StateTable() {
            @Override
            public String encode() {
                return groupManager.encode();
            }

            @Override
            public void restore(String text) {
                groupManager.applyImage(text);
            }

            @Override
            public void persist() {
                groupManager.persist();
            }
        });
        registerTable("consumerOffsets", new StateTable() {
            @Override
            public String encode() {
                return offsetManager.encode();
            }

            @Override
            public void restore(String text) {
                offsetManager.decode(text);
            }

            @Override
            public void persist() {
                offsetManager.persist();
            }
        });
        registerTable("delayOffsets", new StateTable() {
            @Override
            public String encode() {
                ScheduleMessageService s = broker.getScheduleMessageService();
                return s == null ? null : s.encode();
            }

            @Override
            public void restore(String text) {
                ScheduleMessageService s = broker.getScheduleMessageService();
                if (s != null) {
                    // The levels are fixed by the config: every level's offset is set.
                    s.decode(text);
                }
            }

            @Override
            public void persist() {
                ScheduleMessageService s = broker.getScheduleMessageService();
                if (s != null) {
                    s.persist();
                }
            }
        });
    }

    /** The state entry whose effect the tables hold now (index, term): the last applied, or the checkpoint's. */
    private long[] stateIndex() {
        long[] applied = lastApplied;
        return applied[0] >= checkpointIndex ? applied : new long[] {checkpointIndex, checkpointTerm};
    }

    /**
     * The image of every registered table after what was applied, on the Raft node's apply thread (so no entry is
     * half applied); empty when the managers are not replaced. A table that cannot be encoded is left out, logged.
     */
    byte[] image() {
        if (!covers()) {
            return new byte[0];
        }
        long[] at = stateIndex();
        Map<String, String> texts = new LinkedHashMap<>();
        for (Map.Entry<String, StateTable> t : tables.entrySet()) {
            try {
                String text = t.getValue().encode();
                if (text != null) {
                    texts.put(t.getKey(), text);
                }
            } catch (RuntimeException e) {
                LOG.error("[{}] broker state table {} left out of the snapshot image: {}", name, t.getKey(),
                    e.toString());
            }
        }
        byte[] bytes = new BrokerStateImage(at[0], at[1], texts).encode();
        LOG.info("[{}] snapshot image of the broker state after entry {}: {} tables, {} bytes", name, at[0],
            texts.size(), bytes.length);
        return bytes;
    }

    /**
     * A snapshot was installed (or found at start): with an image, the tables are replaced by it and the state entries
     * it holds are not applied again; the files and the checkpoint are written at once, so a restart finds the image
     * there (the snapshot file keeps it too, until retention goes past it). At start, an image older than the
     * checkpoint is ignored (the files are newer). Without an image from a leader (one of a version before images),
     * the slave copies the state once from its master.
     */
    void snapshotInstalled(long lastIndex, byte[] bytes, boolean atStart) {
        if (!covers()) {
            return;
        }
        if (bytes.length == 0) {
            if (!atStart) {
                LOG.warn("[{}] the raft log starts after snapshot {}, which carries no broker state (a leader of an "
                    + "older version): topics, groups and offsets are copied once from the master", name, lastIndex);
                fullCopyNeeded = true;
            }
            return;
        }
        BrokerStateImage image;
        try {
            image = BrokerStateImage.decode(bytes);
        } catch (IllegalArgumentException e) {
            LOG.error("[{}] snapshot {} carries a broker state image this broker cannot read ({}): topics, groups and "
                + "offsets are copied once from the master", name, lastIndex, e.getMessage());
            fullCopyNeeded = !atStart;
            return;
        }
        if (atStart && image.index() <= checkpointIndex) {
            LOG.info("[{}] snapshot {} holds the broker state after entry {}; the config files hold {}: kept", name,
                lastIndex, image.index(), checkpointIndex);
            return;
        }
        for (Map.Entry<String, String> t : image.tables().entrySet()) {
            StateTable table = tables.get(t.getKey());
            if (table == null) {
                LOG.warn("[{}] snapshot {} carries broker state table {}, which this broker does not know; skipped",
                    name, lastIndex, t.getKey());
                continue;
            }
            try {
                table.restore(t.getValue());
            } catch (RuntimeException e) {
                LOG.error("[{}] broker state table {} of snapshot {} could not be restored: {}", name, t.getKey(),
                    lastIndex, e.toString());
            }
        }
        checkpointIndex = image.index();
        checkpointTerm = image.term();
        checkpointChecked = true;
        lastApplied = new long[] {image.index(), image.term()};
        fullCopyNeeded = false;
        LOG.info("[{}] broker state restored from snapshot {}: {} tables, after entry {} (term {}); state entries up to "
            + "there are not applied again", name, lastIndex, image.tables().size(), image.index(), image.term());
        checkpointLock.lock();
        try {
            writeCheckpointOf(new long[] {image.index(), image.term()});
        } catch (IOException | RuntimeException e) {
            LOG.warn("[{}] broker state checkpoint after snapshot {} not written: {}", name, lastIndex, e.toString());
        } finally {
            checkpointLock.unlock();
        }
    }

    /**
     * The lowest index whose state entry the config files may not hold yet (retention keeps it); {@link Long#MAX_VALUE}
     * when every applied state entry is in them. On the Raft node's thread.
     */
    long keepFromIndex() {
        if (!covers()) {
            return Long.MAX_VALUE;
        }
        long written = checkpointWritten;
        return lastApplied[0] > written ? written + 1 : Long.MAX_VALUE;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Delay offsets

    /** The schedule service's offsets (level to offset), read through its JSON (the table is private). */
    private Map<Integer, Long> delayOffsets() {
        ScheduleMessageService s = broker.getScheduleMessageService();
        DelayOffsetSerializeWrapper w = s == null ? null
            : RemotingSerializable.fromJson(s.encode(), DelayOffsetSerializeWrapper.class);
        return w == null || w.getOffsetTable() == null ? Map.of() : w.getOffsetTable();
    }

    /**
     * The apply path: moves a delay level's offset forward (never back: on the master the running service may be
     * ahead of what it proposed) and writes the delay offset file, from which the service starts when this node
     * becomes master.
     */
    private void applyDelayOffset(BrokerStateEntry.DelayOffset d) {
        ScheduleMessageService s = broker.getScheduleMessageService();
        Long current = delayOffsets().get(d.level());
        if (s == null || current != null && current >= d.offset()) {
            return;
        }
        DelayOffsetSerializeWrapper w = new DelayOffsetSerializeWrapper();
        java.util.concurrent.ConcurrentHashMap<Integer, Long> one = new java.util.concurrent.ConcurrentHashMap<>();
        one.put(d.level(), d.offset());
        w.setOffsetTable(one);
        s.decode(w.toJson(false));
        String file = StorePathConfigHelper.getDelayOffsetStorePath(broker.getMessageStoreConfig().getStorePathRootDir());
        try {
            MixAll.string2File(s.encode(), file);
        } catch (IOException e) {
            LOG.warn("[{}] cannot write {}: {}", name, file, e.toString());
        }
    }

    /**
     * On the master, every {@link #DELAY_OFFSET_INTERVAL_MS}: the delay levels whose offset moved since the last
     * proposal go into one entry (the schedule service updates its private table itself, so it is read, not
     * intercepted). A new master keeps delivering from at most one interval before where the old one stopped.
     */
    private void replicateDelayOffsets() {
        while (!Thread.currentThread().isInterrupted()) {
            try {
                TimeUnit.MILLISECONDS.sleep(DELAY_OFFSET_INTERVAL_MS);
            } catch (InterruptedException e) {
                return;
            }
            ScheduleMessageService s = broker.getScheduleMessageService();
            if (s == null || !s.isStarted() || !throughLog()) {
                delayProposed.clear();
                continue;
            }
            List<BrokerStateEntry.Op> moved = new ArrayList<>();
            for (Map.Entry<Integer, Long> e : delayOffsets().entrySet()) {
                if (!e.getValue().equals(delayProposed.get(e.getKey()))) {
                    moved.add(new BrokerStateEntry.DelayOffset(e.getKey(), e.getValue()));
                }
            }
            if (moved.isEmpty()) {
                continue;
            }
            try {
                propose("delay offsets", moved);
                for (BrokerStateEntry.Op op : moved) {
                    BrokerStateEntry.DelayOffset d = (BrokerStateEntry.DelayOffset) op;
                    delayProposed.put(d.level(), d.offset());
                }
            } catch (RuntimeException e) {
                LOG.warn("[{}] {}", name, e.getMessage());
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Timed messages: the timer wheel's progress, and no timed delivery twice

    /**
     * Starts proposing the timer wheel's progress ({@link TimerProgressLog}) and lets the commit log answer the timed
     * deliveries the log holds already ({@link TimedDeliveries}); called by {@link #attach}, before the store starts.
     */
    private void attachTimed(RaftCommitLog commitLog) {
        // The store the commit log was installed in (under the broker's plugin wrappers); it dispatches the log.
        if (broker.getMessageStore() != null) {
            org.apache.rocketmq.store.DefaultMessageStore store = RaftInstaller.unwrap(broker.getMessageStore());
            TimedDeliveries deliveries = new TimedDeliveries(name, store);
            store.getDispatcherList().addLast(deliveries);
            commitLog.onPut(deliveries);
        }
        timerProgress = new TimerProgressLog(broker, this, name);
        timerProgress.start("BrokerStateTimer-" + commitLog.settings().selfId());
        TimerProgressLog progress = timerProgress;
        // A snapshot carries the timer progress too, so a node caught up by one reads its wheel from where the
        // master had delivered, as one that applied the TimerProgress entries would.
        registerTable("timerProgress", new StateTable() {
            @Override
            public String encode() {
                BrokerStateEntry.TimerProgress p = progress.current();
                return p == null ? null : p.readTimeMs() + "," + p.queueOffset();
            }

            @Override
            public void restore(String text) {
                String[] parts = text.split(",", 2);
                try {
                    progress.apply(new BrokerStateEntry.TimerProgress(Long.parseLong(parts[0].trim()),
                        Long.parseLong(parts[1].trim())));
                } catch (RuntimeException e) {
                    LOG.error("[{}] the snapshot's timer progress '{}' is not two numbers; kept this node's", name,
                        text);
                }
            }

            @Override
            public void persist() {
                // The timer store flushes its checkpoint itself.
            }
        });
    }

    private void applyTimerProgress(BrokerStateEntry.TimerProgress t) {
        TimerProgressLog p = timerProgress;
        if (p != null) {
            p.apply(t);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Checkpoint

    /** Closed with the commit log: writes a last checkpoint, so that a clean restart applies nothing again. */
    private final class ShutdownHook implements java.util.function.Consumer<dev.dledger.raft.server.NodeStatus>,
        AutoCloseable {
        @Override
        public void accept(dev.dledger.raft.server.NodeStatus status) {
        }

        @Override
        public void close() {
            BrokerStateLog.this.close();
            try {
                checkpoint();
            } catch (IOException | RuntimeException e) {
                LOG.warn("[{}] last broker state checkpoint not written: {}", name, e.toString());
            }
        }
    }

    /** Stops the batcher and the checkpoint writer (queued commits fail); the threads are daemons otherwise. */
    void close() {
        for (Thread t : new Thread[] {batcher, checkpointer, delayReplicator}) {
            if (t != null) {
                t.interrupt();
            }
        }
        if (timerProgress != null) {
            timerProgress.close();
        }
        fail(new ArrayList<>(offsets), new IllegalStateException("the broker state log is closed"));
    }

    void readCheckpoint() {
        if (!Files.exists(checkpointFile)) {
            return;
        }
        try {
            Properties p = new Properties();
            try (Reader r = Files.newBufferedReader(checkpointFile)) {
                p.load(r);
            }
            checkpointIndex = Long.parseLong(p.getProperty("index", "-1").trim());
            checkpointTerm = Long.parseLong(p.getProperty("term", "0").trim());
            convertedCheckpoint = Boolean.parseBoolean(p.getProperty("importPending", "false").trim());
            checkpointWritten = checkpointIndex;
            LOG.info("[{}] broker state checkpoint: entries up to {} (term {}) are in the config files", name,
                checkpointIndex, checkpointTerm);
        } catch (IOException | RuntimeException e) {
            checkpointIndex = -1;
            LOG.warn("[{}] {} cannot be read ({}): the whole log is applied again", name, checkpointFile,
                e.toString());
        }
    }

    /**
     * Every {@link #CHECKPOINT_INTERVAL_MS} while state entries are applied: takes the last applied entry, writes
     * the three managers' files (which then hold its effect and everything before it), then records that entry in
     * the checkpoint file (written to a temporary file and moved over it). A restart applies only the entries after.
     */
    private void writeCheckpoints() {
        while (!Thread.currentThread().isInterrupted()) {
            try {
                TimeUnit.MILLISECONDS.sleep(CHECKPOINT_INTERVAL_MS);
            } catch (InterruptedException e) {
                return;
            }
            try {
                checkpoint();
            } catch (IOException | RuntimeException e) {
                LOG.warn("[{}] broker state checkpoint not written: {}", name, e.toString());
            }
        }
    }

    /** Writes the managers' files and the checkpoint when entries were applied since the last one. */
    void checkpoint() throws IOException {
        checkpointLock.lock();
        try {
            writeCheckpoint();
        } finally {
            checkpointLock.unlock();
        }
    }

    private void writeCheckpoint() throws IOException {
        long[] applied = lastApplied;
        if (applied[0] <= checkpointWritten) {
            return;
        }
        writeCheckpointOf(applied);
    }

    /** Writes every table's file, then the checkpoint naming {@code applied} (index, term). */
    private void writeCheckpointOf(long[] applied) throws IOException {
        for (Map.Entry<String, StateTable> t : tables.entrySet()) {
            t.getValue().persist();
        }
        Path tmp = checkpointFile.resolveSibling(CHECKPOINT_FILE + ".tmp");
        Files.createDirectories(checkpointFile.getParent());
        Files.writeString(tmp, "index=" + applied[0] + "\nterm=" + applied[1] + "\n");
        try (FileChannel c = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
            c.force(true);
        }
        Files.move(tmp, checkpointFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        checkpointWritten = applied[0];
    }

    /**
     * Through which index the config files hold the effect of every state entry, asked once as the Raft node starts
     * (it replays the log after it): the checkpoint's entry when this log holds it; -1 when there is no checkpoint or
     * it names an entry this log does not hold (the whole log is applied again); {@link Long#MAX_VALUE} when the
     * state does not ride the log (no state entry is applied here).
     */
    long durableThrough() {
        if (!covers()) {
            return Long.MAX_VALUE;
        }
        if (checkpointIndex < 0 || log == null || !log.holdsEntry(checkpointIndex, checkpointTerm)) {
            return -1;
        }
        return checkpointIndex;
    }

    /** The JSON a config travels as (RocketMQ's own serialization of it). */
    static String json(Object config) {
        return RemotingSerializable.toJson(config, false);
    }
}
