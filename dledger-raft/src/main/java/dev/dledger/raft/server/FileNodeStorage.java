package dev.dledger.raft.server;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.store.AtomicFiles;
import dev.dledger.raft.store.ConfigIndexFile;
import dev.dledger.raft.store.LogRetention;
import dev.dledger.raft.store.MetaFiles;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.store.StoreCorruptedException;
import dev.dledger.raft.store.StoreIoException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A node's durable state in one folder laid out as DLedger lays out {@code dledger-<selfId>}: {@code data/},
 * {@code index/}, {@code currterm}, plus our {@code checkpoint} and {@code snapshot/}. With {@link FlushMode#ASYNC}
 * a background thread (its own, or one of {@link FlushThreads} shared by the groups of a process) fsyncs the log
 * every {@code flushIntervalMs}. With a {@link LogRetention}, {@link #retain} deletes old data files as its policy
 * says, never past what the node has committed and says it no longer needs.
 */
public final class FileNodeStorage implements NodeStorage {

    private static final Logger LOG = LoggerFactory.getLogger(FileNodeStorage.class);
    /** A commit checkpoint covers at least this many more commits than the last ({@link #checkpointCommit}). */
    static final long CHECKPOINT_ENTRIES = 1024;
    /** Commit checkpoints are at least this far apart ({@link #checkpointCommit}). */
    static final long CHECKPOINT_GAP_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private final Path dir;
    private final SegmentedLogStore log;
    private final MetaFiles meta;
    private HardState hardState;
    private final List<Entry> configEntries = new ArrayList<>();
    /** What {@link ConfigIndexFile} last written says; null before the first write. */
    private ConfigIndexFile configIndex;
    /** The lowest index a truncation cut since the last completed sync, or Long.MAX_VALUE; guarded by lock. */
    private long unsyncedTruncation = Long.MAX_VALUE;
    /** Truncations so far; guarded by lock. */
    private long truncations;
    /** The periodic flush of {@link FlushMode#ASYNC} on a thread of its own, or null. */
    private final ScheduledExecutorService flusher;
    /** The periodic flush of {@link FlushMode#ASYNC} on shared {@link FlushThreads}, or null. */
    private final FlushThreads.Periodic sharedFlush;
    private final Object lock = new Object();
    /** Held across a sync's prepare and force: see {@link #sync()}. Taken before {@link #lock}, never inside it. */
    private final Object syncLock = new Object();
    private long lastCheckpoint = -1;
    /** When the last commit checkpoint was written ({@link #clock}), once {@link #lastCheckpoint} is set. */
    private long lastCheckpointNanos;
    private LongSupplier clock = System::nanoTime;
    private final LogRetention retention;
    private final int maxEntryBytes;
    private final FileChannel folderLock;
    /** The file in the node folder that an open storage holds a lock on. */
    public static final String LOCK_FILE = "lock";
    /** The highest commit index known: the checkpoint at open, then every one the driver reports. */
    private long commitIndex;
    /** See {@link #betweenSnapshotSteps(Runnable)}. */
    private Runnable betweenSnapshotSteps = () -> { };

    /**
     * Opens the node folder {@code dir}, without retention: the log is only compacted by snapshots.
     *
     * @param flushIntervalMs with {@link FlushMode#ASYNC}, how often the log is fsynced (DLedger's default is 10)
     * @throws StorageException if the folder cannot be opened or is corrupted, with the reason
     */
    public FileNodeStorage(Path dir, StoreConfig config, FlushMode flush, long flushIntervalMs) {
        this(dir, config, flush, flushIntervalMs, null);
    }

    /**
     * Opens the node folder {@code dir} with retention: {@link #retain}, which the node calls about once a second,
     * deletes old data files as {@code retention}'s policy says (DLedger's {@code fileReservedHours},
     * {@code deleteWhen} and disk ratios), never an entry above the commit index or above the index the node passes
     * (its last snapshot when it takes snapshots). Without snapshots the deleted entries are gone for good: a state
     * machine that must see every entry after a restart needs snapshots, or no retention.
     *
     * @param flushIntervalMs with {@link FlushMode#ASYNC}, how often the log is fsynced (DLedger's default is 10)
     * @param retention       what to delete when, or null for no retention
     * @throws StorageException if the folder cannot be opened or is corrupted, with the reason
     */
    public FileNodeStorage(Path dir, StoreConfig config, FlushMode flush, long flushIntervalMs,
                           LogRetention retention) {
        this(dir, config, flush, flushIntervalMs, retention, null);
    }

    /**
     * Opens the node folder {@code dir} as {@link #FileNodeStorage(Path, StoreConfig, FlushMode, long, LogRetention)}
     * does; with {@link FlushMode#ASYNC} its periodic flush runs on {@code flushThreads}, shared with other groups of
     * the process, instead of on a thread of its own (issue 18).
     *
     * @param flushThreads the shared fsync threads (not closed with this storage), or null for a thread of its own
     * @throws StorageException if the folder cannot be opened or is corrupted, with the reason
     */
    public FileNodeStorage(Path dir, StoreConfig config, FlushMode flush, long flushIntervalMs,
                           LogRetention retention, FlushThreads flushThreads) {
        this.dir = dir;
        this.retention = retention;
        this.folderLock = lockFolder(dir);
        try {
            this.log = SegmentedLogStore.open(dir, config);
            // Room for the payload whether or not the entry carries a request id in front of it.
            this.maxEntryBytes = log.maxBodyBytes() - RequestId.BYTES;
            reconcileSnapshot();
            this.meta = new MetaFiles(dir);
            this.commitIndex = meta.readCommitCheckpoint();
            this.hardState = meta.readHardState();
            recoverConfigEntries();
        } catch (StoreCorruptedException | StoreIoException e) {
            release(folderLock);
            throw new StorageException(e.getMessage(), e);
        } catch (RuntimeException e) {
            release(folderLock);
            throw e;
        }
        if (flush == FlushMode.ASYNC && flushIntervalMs > 0 && flushThreads != null) {
            sharedFlush = flushThreads.every(flushIntervalMs, dir.toString(), this::sync);
            flusher = null;
        } else if (flush == FlushMode.ASYNC && flushIntervalMs > 0) {
            sharedFlush = null;
            flusher = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "flush-" + dir.getFileName());
                t.setDaemon(true);
                return t;
            });
            flusher.scheduleWithFixedDelay(this::sync, flushIntervalMs, flushIntervalMs, TimeUnit.MILLISECONDS);
        } else {
            sharedFlush = null;
            flusher = null;
        }
    }

    /** A data file holds one entry of at most its size minus the header and the smallest BLANK record. */
    @Override
    public int maxEntryBytes() {
        return maxEntryBytes;
    }

    @Override
    public LogView log() {
        return log;
    }

    /** The underlying store. */
    public SegmentedLogStore store() {
        return log;
    }

    @Override
    public HardState hardState() {
        return hardState;
    }

    @Override
    public void saveHardState(HardState hs) {
        try {
            meta.writeHardState(hs);
            hardState = hs;
        } catch (StoreIoException e) {
            throw new StorageException(e.getMessage(), e);
        }
    }

    @Override
    public void truncateSuffix(long fromIndex) {
        synchronized (lock) {
            guard(() -> log.truncateSuffix(fromIndex));
        }
        // Until a sync makes the truncation durable, a power loss may bring back the entries it cut, and their CONFIG
        // entries, which the record below no longer lists: no record covers past it before then (recordConfigEntries).
        synchronized (lock) {
            unsyncedTruncation = Math.min(unsyncedTruncation, fromIndex);
            truncations++;
        }
        configEntries.removeIf(e -> e.index() >= fromIndex);
        // After the log's truncation: a crash in between leaves listed entries the log no longer has, told apart
        // at start. Covering no more than the log now holds keeps the record true when the log grows again.
        if (configIndex != null && (configIndex.coveredIndex() >= fromIndex
            || lastPoint(configIndex) >= fromIndex)) {
            guard(() -> recordConfigEntries(configEntries, fromIndex - 1, log.term(fromIndex - 1), true));
        }
    }

    @Override
    public long[] append(List<Entry> entries) {
        long[] pos;
        List<Entry> configs = null;
        for (Entry e : entries) {
            if (e.type() == EntryType.CONFIG) {
                configs = configs == null ? new ArrayList<>(configEntries) : configs;
                configs.add(e);
            }
        }
        if (configs != null) {
            // Recorded durably before the entry reaches the log: every CONFIG entry in the log is in the record.
            Entry lastEntry = entries.get(entries.size() - 1);
            List<Entry> recorded = configs;
            guard(() -> recordConfigEntries(recorded, lastEntry.index(), lastEntry.term(), true));
        }
        synchronized (lock) {
            try {
                pos = log.append(entries);
            } catch (StoreIoException | StoreCorruptedException e) {
                throw new StorageException(e.getMessage(), e);
            }
        }
        for (Entry e : entries) {
            if (e.type() == EntryType.CONFIG) {
                configEntries.add(e);
            }
        }
        return pos;
    }

    /**
     * Deletes the data files whose entries are all at or below {@code index} ({@link SegmentedLogStore#dropBodiesThrough},
     * issue 19): the index files stay, so the log keeps every entry's index and term.
     */
    @Override
    public void dropBodiesThrough(long index) {
        synchronized (lock) {
            guard(() -> log.dropBodiesThrough(index));
        }
    }

    /**
     * Makes everything written before the call durable. Syncs run one at a time: a sync that another thread (the
     * flusher, the log syncer) prepared takes the files written so far with it, so a sync started meanwhile would find
     * nothing left to force and return before that one's force finished.
     */
    @Override
    public void sync() {
        synchronized (syncLock) {
            Runnable force;
            long truncationsBefore;
            synchronized (lock) {
                force = log.prepareSync();
                truncationsBefore = truncations;
            }
            // The fsync itself runs outside the lock: the driver goes on appending while the flusher waits for the disk.
            guard(force);
            synchronized (lock) {
                // Every truncation before prepareSync is durable now; one after it waits for the next sync.
                if (truncations == truncationsBefore) {
                    unsyncedTruncation = Long.MAX_VALUE;
                }
            }
        }
    }

    /**
     * At open: finds the CONFIG entries of the log from {@link ConfigIndexFile}, reading the header at each recorded
     * index (to drop those the log no longer holds) and every header past the recorded point only. Without a usable
     * record (a store written before it existed, or a log rewritten under it) every header is read, once: the record
     * is written at the end.
     */
    private void recoverConfigEntries() {
        long first = log.firstIndex();
        long last = log.lastIndex();
        ConfigIndexFile recorded;
        try {
            recorded = ConfigIndexFile.read(dir);
        } catch (StoreCorruptedException e) {
            LOG.warn("store {}: {}; reading every entry header to find the membership", dir, e.getMessage());
            recorded = null;
        }
        long scanFrom = first;
        if (recorded == null) {
            if (last >= first) {
                LOG.info("store {}: no membership record ({}); reading the headers of entries {}..{} once", dir,
                    ConfigIndexFile.FILE, first, last);
            }
        } else if (recorded.coveredIndex() >= first && recorded.coveredIndex() <= last
            && log.term(recorded.coveredIndex()) != recorded.coveredTerm()) {
            LOG.warn("store {}: the log holds term {} at {} where {} recorded term {}: the log was rewritten; reading "
                + "every entry header to find the membership", dir, log.term(recorded.coveredIndex()),
                recorded.coveredIndex(), ConfigIndexFile.FILE, recorded.coveredTerm());
        } else {
            configIndex = recorded;
            scanFrom = Math.max(first, Math.min(last, recorded.coveredIndex()) + 1);
            for (ConfigIndexFile.Point c : recorded.configs()) {
                if (c.index() < first || c.index() >= scanFrom) {
                    continue;
                }
                SegmentedLogStore.EntryInfo h = log.info(c.index());
                if (h.type() == EntryType.CONFIG && h.term() == c.term()) {
                    configEntries.add(log.entries(c.index(), c.index() + 1, Long.MAX_VALUE).get(0));
                }
            }
        }
        for (long i = scanFrom; i <= last; i++) {
            // Only the header is read for every entry; the body only for the config ones.
            if (log.info(i).type() == EntryType.CONFIG) {
                configEntries.add(log.entries(i, i + 1, Long.MAX_VALUE).get(0));
            }
        }
        LOG.info("store {}: {} CONFIG entries found, {} entry headers read past the membership record", dir,
            configEntries.size(), last - scanFrom + 1);
        recordConfigEntries(configEntries, last, log.term(last), true);
    }

    /** Writes {@link ConfigIndexFile} with {@code configs} (those still in the log), complete up to {@code covered}. */
    private void recordConfigEntries(List<Entry> configs, long covered, long coveredTerm, boolean durable) {
        long truncation;
        synchronized (lock) {
            truncation = unsyncedTruncation;
        }
        if (covered >= truncation) {
            // A truncation at or below what the record is to cover is not durable yet (rare: the flush usually came
            // first): made durable now, so that the record never hides entries a power loss could bring back.
            sync();
        }
        List<ConfigIndexFile.Point> points = new ArrayList<>();
        long first = log.firstIndex();
        for (Entry e : configs) {
            if (e.index() >= first && e.index() <= covered) {
                points.add(new ConfigIndexFile.Point(e.index(), e.term()));
            }
        }
        ConfigIndexFile next = new ConfigIndexFile(points, Math.max(-1, covered), covered < 0 ? 0 : coveredTerm);
        if (next.equals(configIndex)) {
            return;
        }
        if (durable) {
            next.write(dir);
        } else {
            next.writeLazily(dir);
        }
        configIndex = next;
    }

    /**
     * After a snapshot's compaction, which may have emptied the log: forgets the CONFIG entries no longer in it, and
     * makes the record cover no more than the log holds, so that later entries past it are read at start.
     */
    private void afterCompaction() {
        long first = log.firstIndex();
        long last = log.lastIndex();
        configEntries.removeIf(e -> e.index() < first || e.index() > last);
        if (configIndex != null && configIndex.coveredIndex() > last) {
            guard(() -> recordConfigEntries(configEntries, last, log.term(last), true));
        }
    }

    private static long lastPoint(ConfigIndexFile f) {
        return f.configs().isEmpty() ? -1 : f.configs().get(f.configs().size() - 1).index();
    }

    @Override
    public List<Entry> configEntries() {
        return List.copyOf(configEntries);
    }

    /** The snapshot file, or null when there is none. */
    private SnapshotFile readSnapshotFile() {
        Path file = dir.resolve("snapshot").resolve("data");
        try {
            return SnapshotFile.decode(Files.readAllBytes(file), file.toString());
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new StorageException("cannot read the snapshot " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new StorageException(e.getMessage(), e);
        }
    }

    /**
     * At open: makes the log's compaction and the snapshot file agree, whichever step a crash interrupted. A file
     * newer than the compaction (the crash came after the file was written) finishes the compaction to it; a file
     * older than the compaction (a position-only snapshot was installed, or retention went past it) no longer
     * stands for anything and is deleted; a file at the compaction's index in another term is corruption.
     */
    private void reconcileSnapshot() {
        SnapshotFile f = readSnapshotFile();
        if (f == null || f.meta() == null) {
            return;
        }
        SnapshotMeta compacted = log.snapshot();
        Path file = dir.resolve("snapshot").resolve("data");
        if (f.meta().index() > compacted.index()) {
            LOG.info("store {}: snapshot {}@{} was written but the log not compacted to it (a crash in between); "
                + "compacting now", dir, f.meta().index(), f.meta().term());
            long at = f.meta().index();
            if (log.lastIndex() > at && at >= log.firstIndex() && log.term(at) != f.meta().term()) {
                // A received snapshot over another leader's entries (a store written before their removal was
                // made to come first): the compaction would keep them after it.
                LOG.warn("store {}: the log holds {}@{} where snapshot {}@{} ends; removing entries {}..{}", dir, at,
                    log.term(at), at, f.meta().term(), at + 1, log.lastIndex());
                log.truncateSuffix(at + 1);
                log.prepareSync().run();
            }
            if (SnapshotPosition.isPosition(f.data())) {
                compactToPosition(f.meta(), SnapshotPosition.decode(f.data()));
            } else {
                log.compactPrefix(f.meta());
            }
        } else if (f.meta().index() < compacted.index()) {
            LOG.warn("store {}: snapshot {}@{} is older than the log's compaction to {}; deleting it", dir,
                f.meta().index(), f.meta().term(), compacted.index());
            try {
                Files.delete(file);
                AtomicFiles.syncFolder(file.getParent());
            } catch (IOException e) {
                throw new StorageException("cannot delete the stale snapshot " + file + ": " + e.getMessage(), e);
            }
        } else if (f.meta().term() != compacted.term()) {
            throw new StorageException(file + " holds snapshot " + f.meta().index() + "@" + f.meta().term()
                + " but the log was compacted to " + compacted.index() + "@" + compacted.term());
        }
    }

    @Override
    public byte[] snapshotData() {
        SnapshotFile f = readSnapshotFile();
        if (f != null) {
            return f.data();
        }
        // Compacted by retention, with no state-machine snapshot: a follower installing this starts its log at the
        // position where this log goes on, so that positions stay equal on every node.
        synchronized (lock) {
            if (log.snapshot().index() < 0) {
                return null;
            }
            long first = log.firstIndex();
            return SnapshotPosition.encode(first <= log.lastIndex() ? log.position(first) : log.writePosition());
        }
    }

    /**
     * Tests only: runs between the two steps of saving a snapshot (its file, then the compaction) or of installing a
     * position-only one (the compaction, then the deletion of the old file), where a crash test throws to stop this
     * storage as a crash would.
     */
    void betweenSnapshotSteps(Runnable hook) {
        this.betweenSnapshotSteps = hook;
    }

    /**
     * Saves a snapshot: one atomic write of a file that holds its metadata and bytes, then the log's compaction to
     * it. A crash in between is finished at the next open (see {@link #reconcileSnapshot()}).
     */
    @Override
    public void saveSnapshot(SnapshotMeta snap, byte[] data) {
        writeSnapshot(SnapshotFile.encode(snap, data == null ? new byte[0] : data));
        betweenSnapshotSteps.run();
        synchronized (lock) {
            guard(() -> log.compactPrefix(snap));
        }
        afterCompaction();
    }

    /**
     * Installs a snapshot from the leader. When it holds only the position at which the leader's log goes on (the
     * leader's log was compacted by retention), the log here starts at that position too, if it is a data-file
     * boundary (retention deletes whole files, so it is) and nothing is left in the data files. When such a record
     * also carries the state machine's image, the file (metadata and bytes in one atomic write) is written first and
     * kept, so that a restart restores the image with the position: a crash before the compaction is finished at the
     * next open ({@link #reconcileSnapshot()}).
     */
    @Override
    public void installSnapshot(SnapshotMeta snap, byte[] data) {
        installReplacingLog(snap, data);
        // Every entry a witness dropped the body of is gone now: a witness being promoted installs a snapshot that
        // covers them all (issue 19), and any other install replaces a log that does not hold the snapshot's entry,
        // whose committed prefix (all a witness drops) ends before it.
        synchronized (lock) {
            guard(log::clearDropped);
        }
    }

    private void installReplacingLog(SnapshotMeta snap, byte[] data) {
        // The log becomes empty after the snapshot. The core installs one where this log does not hold its last entry
        // (entries after it are a deposed leader's, never committed) or in place of the log of a witness being
        // promoted (issue 19; entries after it are the group's, the leader sends them again). Their removal is synced
        // before the snapshot file is written: a power loss must not bring them back behind a snapshot they
        // contradict.
        long last;
        synchronized (lock) {
            last = log.lastIndex();
        }
        if (last > snap.index()) {
            LOG.info("store {}: installing snapshot {}@{} removes entries {}..{}", dir, snap.index(), snap.term(),
                snap.index() + 1, last);
            truncateSuffix(snap.index() + 1);
            sync();
        }
        if (!SnapshotPosition.isPosition(data)) {
            saveSnapshot(snap, data);
            return;
        }
        long pos = SnapshotPosition.decode(data);
        boolean image = SnapshotPosition.image(data).length > 0;
        if (image) {
            writeSnapshot(SnapshotFile.encode(snap, data));
            betweenSnapshotSteps.run();
        }
        // Without an image: the compaction first, then the old snapshot file goes: a crash in between leaves a file
        // older than the compaction, which the next open deletes (the node then starts empty at the new snapshot, as
        // it would now).
        synchronized (lock) {
            guard(() -> compactToPosition(snap, pos));
        }
        if (!image) {
            betweenSnapshotSteps.run();
            try {
                Files.deleteIfExists(dir.resolve("snapshot").resolve("data"));
            } catch (IOException e) {
                throw new StorageException("cannot delete the old snapshot in " + dir + ": " + e.getMessage(), e);
            }
        }
        afterCompaction();
    }

    /**
     * Compacts the log to {@code snap} and, when it is left with no entry, makes it go on at the leader's position
     * {@code pos}. Data files may be left that hold nothing after the snapshot: the one an earlier position-only install
     * started the log with, when a later one (a transfer of the leader's, retention having gone on meanwhile) comes
     * before any entry was written there; they go ({@link SegmentedLogStore#moveStartTo}).
     */
    private void compactToPosition(SnapshotMeta snap, long pos) {
        log.compactPrefix(snap);
        List<SegmentedLogStore.DataFile> files = log.dataFiles();
        boolean noEntry = log.lastIndex() < log.firstIndex();
        boolean movable = files.isEmpty() || files.get(files.size() - 1).start() < pos;
        if (noEntry && movable && pos >= 0 && pos % log.config().dataFileSizeBytes() == 0) {
            log.moveStartTo(pos);
        } else if (log.writePosition() != pos) {
            LOG.warn("store {}: the leader's log goes on at position {} after snapshot {}, this one at {}; "
                + "positions of later entries will differ", dir, pos, snap.index(), log.writePosition());
        }
    }

    private void writeSnapshot(byte[] data) {
        try {
            Files.createDirectories(dir.resolve("snapshot"));
            AtomicFiles.write(dir.resolve("snapshot").resolve("data"), data == null ? new byte[0] : data);
        } catch (IOException e) {
            throw new StorageException("cannot write the snapshot in " + dir + ": " + e.getMessage(), e);
        }
    }

    @Override
    public long committedCheckpoint() {
        return meta.readCommitCheckpoint();
    }

    /** The clock the commit checkpoints are spaced by ({@link System#nanoTime} unless a test sets another). */
    void clock(LongSupplier nanoTime) {
        this.clock = nanoTime;
    }

    @Override
    public void checkpointCommit(long commitIndex) {
        this.commitIndex = Math.max(this.commitIndex, commitIndex);
        // The checkpoint is a restart hint (a restarted node learns later commits from its leader): written at most
        // every CHECKPOINT_ENTRIES commits and CHECKPOINT_GAP_NANOS apart. Each write replaces a file, and at the
        // library's rates (a log synced every few milliseconds, 100,000 appends/s and more) every 1,024 commits alone
        // took 8 % of the leader's event loop.
        if (commitIndex - lastCheckpoint < CHECKPOINT_ENTRIES) {
            return;
        }
        // The clock only once enough commits came (this runs at every pass of the driver).
        long now = clock.getAsLong();
        if (lastCheckpoint < 0 || now - lastCheckpointNanos >= CHECKPOINT_GAP_NANOS) {
            guard(() -> meta.writeCommitCheckpoint(commitIndex));
            lastCheckpoint = commitIndex;
            lastCheckpointNanos = now;
            // The membership record covers the log up to the checkpoint (committed and durable here), so that a start
            // after a crash reads few headers. Never past it: entries above may be truncated, or lost with their
            // truncation in a power loss, and a record covering them would hide a CONFIG entry the log holds again.
            long last = Math.min(log.lastIndex(), commitIndex);
            if (configIndex != null && last > configIndex.coveredIndex()) {
                guard(() -> recordConfigEntries(configEntries, last, log.term(last), false));
            }
        }
    }

    /**
     * Runs the retention once, if there is one: deletes the old data files its policy allows, none holding an entry
     * above {@code safeIndex} or above the commit index. On the node's driver thread.
     */
    @Override
    public void retain(long safeIndex, LongFunction<Membership> membershipAt) {
        if (retention == null) {
            return;
        }
        long limit = Math.min(safeIndex, commitIndex);
        synchronized (lock) {
            guard(() -> retention.run(log, limit, membershipAt));
        }
        configEntries.removeIf(e -> e.index() < log.firstIndex());
    }

    /** The retention's last verdict on disk use ({@link LogRetention#diskFull()}); null without retention. */
    @Override
    public String diskFull() {
        return retention == null ? null : retention.diskFull();
    }

    private static void guard(Runnable r) {
        try {
            r.run();
        } catch (StoreIoException | StoreCorruptedException e) {
            throw new StorageException(e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        if (flusher != null) {
            // Not interrupted: an interrupt inside force() closes the file channel, and the sync below (with the
            // commit checkpoint and the membership record of a clean stop) would then fail.
            flusher.shutdown();
            try {
                if (!flusher.awaitTermination(30, TimeUnit.SECONDS)) {
                    LOG.warn("store {}: the periodic flush is still in a sync after 30 s; closing anyway", dir);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (sharedFlush != null) {
            // Waits for a flush under way on the shared threads, which go on serving the other groups.
            sharedFlush.close();
        }
        // The sync lock first, as sync() takes them: the record below may sync, and a flush still under way (one that
        // outlasted the wait above) holds the sync lock while it waits for the other.
        synchronized (syncLock) {
            synchronized (lock) {
                try {
                    log.sync();
                    if (commitIndex > lastCheckpoint) {
                        // A clean stop records the commit index it knows: export and the next start read it.
                        meta.writeCommitCheckpoint(commitIndex);
                    }
                    // A clean stop: the membership record covers the whole log, so the next start reads no header past
                    // it.
                    long last = log.lastIndex();
                    if (configIndex != null && last > configIndex.coveredIndex()) {
                        recordConfigEntries(configEntries, last, log.term(last), true);
                    }
                } catch (StoreIoException | StoreCorruptedException ignored) {
                    // the node is closing after a failure; what was synced stays, and the record stays true
                }
                log.close();
            }
        }
        release(folderLock);
    }

    /**
     * Takes the lock that keeps a second node (in this process or another) off the folder: two writers would corrupt
     * the log. Readers such as {@code dledger log verify} open the store without it.
     */
    private static FileChannel lockFolder(Path dir) {
        try {
            Files.createDirectories(dir);
            FileChannel ch = FileChannel.open(dir.resolve(LOCK_FILE), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE);
            FileLock l;
            try {
                l = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                l = null;
            }
            if (l == null) {
                ch.close();
                throw new StorageException("store folder " + dir + " is in use by another node (it holds "
                    + dir.resolve(LOCK_FILE) + "); stop that node or give this one another store folder");
            }
            return ch;
        } catch (IOException e) {
            throw new StorageException("cannot lock store folder " + dir + ": " + e.getMessage(), e);
        }
    }

    private static void release(FileChannel lock) {
        try {
            lock.close();
        } catch (IOException ignored) {
            // closing releases the lock; a failure here leaves nothing to undo
        }
    }
}
