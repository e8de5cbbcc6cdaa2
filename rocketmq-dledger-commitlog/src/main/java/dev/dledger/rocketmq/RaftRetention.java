package dev.dledger.rocketmq;

import dev.dledger.raft.store.DiskUsageProbe;
import dev.dledger.raft.store.LogRetention;
import dev.dledger.raft.store.RetentionPolicy;
import java.time.Clock;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import java.util.function.LongSupplier;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The expiry of the Raft commit log: the log's {@link LogRetention}, which the Raft node runs about once a second on
 * its own thread, with its policy taken from the broker's store config, and the link to the broker's cleaner, which
 * calls {@code deleteExpiredFile} every {@code cleanResourceInterval}.
 *
 * <p>The policy copies what stock DLedger mode copies into its DLedger config: {@code fileReservedTime + 1} hours
 * (stock adds the hour), {@code deleteWhen}, {@code diskMaxUsedSpaceRatio} (percent) as the ratio above which expired
 * files go at any hour, {@code cleanFileForciblyEnable} as force cleaning above DLedger's 85 % disk use. Each call of
 * the cleaner takes the config afresh, so changes made at run time reach the log (stock only did so through the
 * overload the cleaner does not call).
 *
 * <p>Never deleted: a file holding an entry that is not applied (the node's bound), or a message that reput has not
 * yet dispatched to the consume queues (the {@code dispatched} bound), the newest file, files in read-only folders.
 * Before files go, the commit log's min offset moves past them; after, the readers forget their mappings.
 */
final class RaftRetention implements LogRetention.Guard {

    private static final Logger LOG = LoggerFactory.getLogger(RaftRetention.class);

    private final MessageStoreConfig config;
    private final LongSupplier dispatched;
    private final LongConsumer minOffset;
    private final DataFiles files;
    private final LogRetention retention;
    private final AtomicLong reported = new AtomicLong();
    private final AtomicLong runs = new AtomicLong();
    private volatile RetentionPolicy lastPolicy;

    /**
     * @param config     the store's live config
     * @param dispatched the physical offset up to which reput has dispatched (any thread may ask)
     * @param minOffset  told the log's new start just before files are deleted (on the Raft node's thread)
     * @param files      the readers' mappings, told to forget deleted files
     * @param clock      the clock that file ages and {@code deleteWhen} hours are read with (the system's, in the
     *                   local time zone as RocketMQ's cleaner)
     * @throws IllegalArgumentException if the config holds a value the policy cannot take, naming it
     */
    RaftRetention(MessageStoreConfig config, LongSupplier dispatched, LongConsumer minOffset, DataFiles files,
                  Clock clock) {
        this.config = config;
        this.dispatched = dispatched;
        this.minOffset = minOffset;
        this.files = files;
        this.lastPolicy = policy(config);
        this.retention = new LogRetention(lastPolicy, clock, DiskUsageProbe.FILE_SYSTEM, this);
    }

    /** The retention to hand to the node's storage. */
    LogRetention logRetention() {
        return retention;
    }

    /**
     * The retention policy stock DLedger mode derives from {@code config}.
     *
     * @throws IllegalArgumentException naming the key whose value the policy refuses
     */
    static RetentionPolicy policy(MessageStoreConfig config) {
        RetentionPolicy dledger = RetentionPolicy.defaults();
        try {
            return new RetentionPolicy(Math.max(0, config.getFileReservedTime()) + 1, config.getDeleteWhen(),
                config.getDiskMaxUsedSpaceRatio() / 100.0, dledger.diskSpaceRatioToForceClean(),
                config.isCleanFileForciblyEnable());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("commit log expiry (fileReservedTime=" + config.getFileReservedTime()
                + ", deleteWhen=" + config.getDeleteWhen() + ", diskMaxUsedSpaceRatio="
                + config.getDiskMaxUsedSpaceRatio() + "): " + e.getMessage(), e);
        }
    }

    /**
     * What the broker's cleaner asks for: takes the policy afresh from the config, asks for a forced run when
     * {@code cleanImmediately} (the disk is nearly full), and returns the number of data files the log deleted since
     * the previous call. A config the policy refuses is logged and the previous policy stays. Any thread.
     */
    int deleteExpired(boolean cleanImmediately) {
        try {
            RetentionPolicy p = policy(config);
            if (!p.equals(lastPolicy)) {
                LOG.info("raft commit log expiry now follows {}", p);
                lastPolicy = p;
                retention.policy(p);
            }
        } catch (IllegalArgumentException e) {
            LOG.warn("raft commit log expiry keeps {}: {}", lastPolicy, e.getMessage());
        }
        // Counted before the forced run is asked for: its files are told by a later call.
        long total = retention.deletedFiles();
        long before = reported.getAndSet(total);
        if (cleanImmediately) {
            retention.forceNextRun();
        }
        return (int) Math.min(Integer.MAX_VALUE, total - before);
    }

    @Override
    public long safePosition() {
        runs.incrementAndGet();
        return dispatched.getAsLong();
    }

    /** The retention runs that would have deleted files (their time or disk use says so), whether or not they did. */
    long runs() {
        return runs.get();
    }

    @Override
    public void beforeDelete(long firstIndex, long firstPosition) {
        minOffset.accept(firstPosition);
    }

    @Override
    public void deleted(int count, long firstIndex, long firstPosition) {
        files.forgetBelow(firstPosition);
        LOG.info("raft commit log: {} data files expired; the log starts at index {}, offset {}", count, firstIndex,
            firstPosition);
    }
}
