package dev.dledger.raft.store;

import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Deletes old data files of a {@link SegmentedLogStore} as a {@link RetentionPolicy} says, the way DLedger's
 * {@code CleanSpaceService} does, with one difference: a file is deleted only when every entry in it is at or below
 * the safe index the caller passes (committed, and covered by a snapshot when the node takes snapshots), so cleaning
 * never loses what consensus still needs. The store never asks consensus; the caller passes what it knows.
 *
 * <p>One {@link #run} looks at the hour, the disk use of the store's folder and of its writable data folders, and
 * the last-modified time of each data file, oldest first. At a {@code deleteWhen} hour, or at any hour once the disk
 * use passes {@code diskSpaceRatioToCheckExpired}, expired files are deleted; above
 * {@code diskSpaceRatioToForceClean} (with {@code enableDiskForceClean}) files are deleted expired or not. Deletion
 * stops at the first file that may not go (not expired, above the safe index, in a read-only folder), never takes the
 * newest file, and takes at most {@value #MAX_FILES_PER_RUN} files per run. The deleted files are a prefix
 * compaction of the store ({@link SegmentedLogStore#compactPrefix}): the index files they cover go too, and the log
 * starts at the first entry of the oldest file kept, also after a restart. Each deleted file is logged at INFO.
 *
 * <p>The owner of the store may change the policy at any time ({@link #policy(RetentionPolicy)}), ask for one
 * forced run ({@link #forceNextRun()}), and pass a {@link Guard} that bounds what may go by what its own readers still
 * need and hears of each deletion before and after the files go.
 *
 * <p>{@link #run} must be called on the thread that writes the store; {@link #policy(RetentionPolicy)},
 * {@link #forceNextRun()} and {@link #deletedFiles()} may be called from any thread.
 */
public final class LogRetention {

    /** Data files deleted by one run at most, as DLedger. */
    public static final int MAX_FILES_PER_RUN = 10;

    private static final Logger LOG = LoggerFactory.getLogger(LogRetention.class);

    private volatile RetentionPolicy policy;
    private final Clock clock;
    private final DiskUsageProbe probe;
    private final Guard guard;
    private final AtomicBoolean forceNext = new AtomicBoolean();
    private final AtomicLong deletedFiles = new AtomicLong();
    private boolean toldReadOnly;
    private volatile String diskFull;

    /**
     * What the owner of the store adds to retention. Every method is called on the store's writer thread, during
     * {@link #run}.
     */
    public interface Guard {

        /**
         * The data position below which the owner's readers are done with the log: a file goes only if it ends at or
         * before it. Asked once per run that would delete. The default, {@link Long#MAX_VALUE}, bounds nothing.
         */
        default long safePosition() {
            return Long.MAX_VALUE;
        }

        /**
         * The files before the one that holds entry {@code firstIndex} (at data position {@code firstPosition}) are
         * about to be deleted: readers must stop reading below {@code firstPosition} from now on.
         */
        default void beforeDelete(long firstIndex, long firstPosition) {
        }

        /** {@code files} data files were deleted; the log now starts with entry {@code firstIndex} at {@code firstPosition}. */
        default void deleted(int files, long firstIndex, long firstPosition) {
        }
    }

    /**
     * @param policy when to delete
     * @param clock  the time and time zone that file ages and {@code deleteWhen} hours are taken in
     * @param probe  the disk use of a folder ({@link DiskUsageProbe#FILE_SYSTEM} in production)
     */
    public LogRetention(RetentionPolicy policy, Clock clock, DiskUsageProbe probe) {
        this(policy, clock, probe, new Guard() {
        });
    }

    /**
     * @param policy when to delete
     * @param clock  the time and time zone that file ages and {@code deleteWhen} hours are taken in
     * @param probe  the disk use of a folder ({@link DiskUsageProbe#FILE_SYSTEM} in production)
     * @param guard  the owner's bound on what may go, told of each deletion
     */
    public LogRetention(RetentionPolicy policy, Clock clock, DiskUsageProbe probe, Guard guard) {
        this.policy = Objects.requireNonNull(policy, "policy");
        this.clock = clock;
        this.probe = probe;
        this.guard = Objects.requireNonNull(guard, "guard");
    }

    /** The policy. */
    public RetentionPolicy policy() {
        return policy;
    }

    /** Replaces the policy; the next run follows it. Any thread. */
    public void policy(RetentionPolicy newPolicy) {
        this.policy = Objects.requireNonNull(newPolicy, "policy");
    }

    /**
     * Makes the next run delete files whether or not they expired and whatever the hour, as a disk above
     * {@code diskSpaceRatioToForceClean} does (RocketMQ's "clean at once"); the safe index and position, the read-only
     * folders, the newest file and {@link #MAX_FILES_PER_RUN} still hold. Any thread.
     */
    public void forceNextRun() {
        forceNext.set(true);
    }

    /**
     * Why new appends must be refused, or null: set by a run that saw the disk use above
     * {@link RetentionPolicy#diskFullRatio()}, cleared by a run that saw it below. Any thread.
     */
    public String diskFull() {
        return diskFull;
    }

    /** Data files deleted by every run so far. Any thread. */
    public long deletedFiles() {
        return deletedFiles.get();
    }

    /**
     * What a run saw and did.
     *
     * @param deletedFiles  data files deleted
     * @param firstIndex    the store's first index after the run
     * @param diskUsedRatio the disk use that counted: the larger of the store folder's and the least full writable
     *                      data folder's
     * @param timeToDelete  whether the hour is one of {@code deleteWhen}
     * @param forced        whether files were deletable before they expired (disk use above the force ratio)
     */
    public record Result(int deletedFiles, long firstIndex, double diskUsedRatio, boolean timeToDelete,
                         boolean forced) {
    }

    /**
     * Deletes what the policy allows, never a file holding an entry above {@code safeIndex}.
     *
     * @param store        the store, on its writer thread
     * @param safeIndex    the highest index that may be deleted
     * @param membershipAt the membership in force at an index (recorded with the compaction, so that a restart
     *                     knows the voters); called at most once, with an index at or below {@code safeIndex}
     * @throws StoreIoException if the disk use cannot be read or a file cannot be deleted
     */
    public Result run(SegmentedLogStore store, long safeIndex, LongFunction<Membership> membershipAt) {
        RetentionPolicy policy = this.policy;
        long now = clock.millis();
        int hour = Instant.ofEpochMilli(now).atZone(clock.getZone()).getHour();
        double ratio = usedRatio(store, policy);
        noteDiskFull(store, ratio, policy.diskFullRatio());
        boolean timeUp = policy.deleteHours().contains(hour);
        boolean checkExpired = ratio > policy.diskSpaceRatioToCheckExpired();
        boolean asked = forceNext.getAndSet(false);
        boolean force = asked || policy.enableDiskForceClean() && ratio > policy.diskSpaceRatioToForceClean();
        if (!timeUp && !checkExpired && !force) {
            return new Result(0, store.firstIndex(), ratio, false, false);
        }
        long safePosition = guard.safePosition();
        List<SegmentedLogStore.DataFile> files = store.dataFiles();
        List<String> doomed = new ArrayList<>();
        long keepFrom = -1;
        for (int i = 0; i + 1 < files.size() && doomed.size() < MAX_FILES_PER_RUN; i++) {
            SegmentedLogStore.DataFile f = files.get(i);
            if (f.readOnly()) {
                if (!toldReadOnly) {
                    LOG.info("store {}: retention stops at {}, which is in a read-only folder", store.dir(), f.path());
                    toldReadOnly = true;
                }
                break;
            }
            long ageMs = now - lastModified(f.path());
            boolean expired = ageMs >= policy.reservedMillis();
            if (!expired && !force) {
                break;
            }
            if (files.get(i + 1).start() > safePosition) {
                break;
            }
            long nextFirst = store.firstEntryIndex(files.get(i + 1).start());
            if (nextFirst < 0 || nextFirst - 1 > safeIndex || nextFirst - 1 > store.lastIndex()) {
                break;
            }
            keepFrom = nextFirst;
            doomed.add(f.path() + " (last written " + ageMs / 3_600_000L + " h ago, "
                + (expired ? "expired" : asked ? "clean at once asked" : "disk use " + Math.round(ratio * 100)
                + "% forces cleaning") + ")");
        }
        if (keepFrom < 0) {
            return new Result(0, store.firstIndex(), ratio, timeUp, force);
        }
        long cut = keepFrom - 1;
        SnapshotMeta base = store.snapshot();
        SnapshotMeta meta = base;
        if (cut > base.index()) {
            Membership atCut = membershipAt.apply(cut);
            if (atCut.voters().isEmpty()) {
                // A node added to the group knows no configuration before the first configuration entry it received;
                // the compaction record would carry an empty membership. The files wait until a cut past that entry.
                return new Result(0, store.firstIndex(), ratio, timeUp, force);
            }
            meta = new SnapshotMeta(cut, store.term(cut), atCut);
        }
        long keepPosition = store.position(keepFrom);
        guard.beforeDelete(keepFrom, keepPosition);
        store.compactPrefix(meta);
        deletedFiles.addAndGet(doomed.size());
        for (String f : doomed) {
            LOG.info("store {}: deleted data file {}; the log starts at index {}", store.dir(), f, store.firstIndex());
        }
        guard.deleted(doomed.size(), store.firstIndex(), keepPosition);
        return new Result(doomed.size(), store.firstIndex(), ratio, timeUp, force);
    }

    private void noteDiskFull(SegmentedLogStore store, double ratio, double limit) {
        String was = diskFull;
        if (ratio > limit) {
            diskFull = String.format("disk full: the store %s is on a disk %.0f%% used, above the %.0f%% at which "
                + "appends are refused (diskSpaceRatioToForceClean + 5%%)", store.dir(), ratio * 100, limit * 100);
            if (was == null) {
                LOG.warn("store {}: {}; appends are refused until retention frees space", store.dir(), diskFull);
            }
        } else if (was != null) {
            diskFull = null;
            LOG.info("store {}: disk use {}% is below {}% again; appends are taken", store.dir(),
                Math.round(ratio * 100), Math.round(limit * 100));
        }
    }

    private double usedRatio(SegmentedLogStore store, RetentionPolicy policy) {
        try {
            double dirRatio = probe.usedRatio(store.dir());
            double dataRatio = -1;
            Set<Path> full = new HashSet<>();
            for (Path folder : store.writableDataFolders()) {
                double r = probe.usedRatio(folder);
                dataRatio = dataRatio < 0 ? r : Math.min(dataRatio, r);
                if (r > policy.diskSpaceRatioToForceClean()) {
                    full.add(folder);
                }
            }
            store.avoidFolders(full);
            return Math.max(dirRatio, dataRatio);
        } catch (IOException e) {
            throw new StoreIoException("cannot read the disk use of " + store.dir() + ": " + e.getMessage(), e);
        }
    }

    private static long lastModified(Path p) {
        try {
            return Files.getLastModifiedTime(p).toMillis();
        } catch (IOException e) {
            throw new StoreIoException("cannot read the last-modified time of " + p + ": " + e.getMessage(), e);
        }
    }
}
