package dev.dledger.rocketmq;

import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.store.timer.TimerCheckpoint;
import org.apache.rocketmq.store.timer.TimerMessageStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The timer wheel's progress on the Raft log ({@link BrokerStateEntry.TimerProgress}), in place of the stock slave's
 * copy of the master's timer checkpoint every 3 s ({@code SlaveSynchronize.syncTimerCheckPoint}, which
 * {@link StateSlaveSynchronize} no longer runs): a new master read its wheel from where the old master's checkpoint
 * file was up to 4 s before (its flush writes it every second, the copy came every 3 s), and delivered the timer
 * messages of those seconds again.
 *
 * <p>What each broker has: every node's store dispatches the timer topic ({@code rmq_sys_wheel_timer}) from the log,
 * and every node's {@code TimerMessageStore} puts those messages into its own wheel and timer log (local files,
 * never replicated); a follower's enqueue stops at the checkpoint's {@code masterTimerQueueOffset}, and it does not
 * deliver: its reading position is the checkpoint's {@code lastReadTimeMs}, taken again when it becomes master
 * ({@code changeScheduleServiceStatus(true)} calls {@code syncLastReadTimeMs()}, the role check caps the enqueue
 * position at {@code masterTimerQueueOffset}).
 *
 * <p>So the master proposes, every {@link #INTERVAL_MS} while either moved, its {@code commitReadTimeMs} (every slot
 * before it is delivered, each delivery committed: the wheel moves on only after the slot's puts succeeded) and its
 * {@code commitQueueOffset} (the timer topic messages enqueued); every node moves its checkpoint's
 * {@code lastReadTimeMs} and {@code masterTimerQueueOffset} forward to them. A new master reads the wheel from at most
 * one interval and one slot before where the old one stopped; the deliveries it repeats there are in the log already
 * and {@link TimedDeliveries} answers them without appending. Nothing is lost (nothing after the committed progress
 * is skipped) and nothing comes early (the wheel delivers a slot when its second has come).
 *
 * <p>Thread-safety: {@link #apply} runs on the Raft node's apply thread; the proposer is a thread of its own.
 */
final class TimerProgressLog {

    private static final Logger LOG = LoggerFactory.getLogger(TimerProgressLog.class);
    /** How often the master proposes the timer's progress when it moved. */
    static final long INTERVAL_MS = 200;

    private final BrokerController broker;
    private final BrokerStateLog state;
    private final String name;
    private Thread proposer;
    /** The progress last proposed by this master; touched by the proposer thread only. */
    private BrokerStateEntry.TimerProgress proposed;

    TimerProgressLog(BrokerController broker, BrokerStateLog state, String name) {
        this.broker = broker;
        this.state = state;
        this.name = name;
    }

    /** Starts the proposer thread (a daemon); does nothing on a broker without the timer wheel. */
    void start(String threadName) {
        if (broker.getTimerMessageStore() == null) {
            return;
        }
        proposer = new Thread(this::proposeWhileMaster, threadName);
        proposer.setDaemon(true);
        proposer.start();
    }

    void close() {
        if (proposer != null) {
            proposer.interrupt();
        }
    }

    /**
     * The apply path: moves this node's timer checkpoint forward to {@code p} (never back). A node whose wheel
     * delivers (the master) keeps its own, which is at or ahead of what it proposed.
     */
    void apply(BrokerStateEntry.TimerProgress p) {
        TimerMessageStore timer = broker.getTimerMessageStore();
        TimerCheckpoint checkpoint = broker.getTimerCheckpoint();
        if (timer == null || checkpoint == null || timer.isShouldRunningDequeue()) {
            return;
        }
        if (checkpoint.getLastReadTimeMs() < p.readTimeMs()) {
            checkpoint.setLastReadTimeMs(p.readTimeMs());
        }
        if (checkpoint.getMasterTimerQueueOffset() < p.queueOffset()) {
            checkpoint.setMasterTimerQueueOffset(p.queueOffset());
        }
    }

    /**
     * The progress a snapshot of this node carries: what the wheel committed on the master, the checkpoint elsewhere;
     * null without a timer store.
     */
    BrokerStateEntry.TimerProgress current() {
        TimerMessageStore timer = broker.getTimerMessageStore();
        TimerCheckpoint checkpoint = broker.getTimerCheckpoint();
        if (timer == null || checkpoint == null) {
            return null;
        }
        if (timer.isShouldRunningDequeue()) {
            return new BrokerStateEntry.TimerProgress(timer.getCommitReadTimeMs(), timer.getCommitQueueOffset());
        }
        return new BrokerStateEntry.TimerProgress(checkpoint.getLastReadTimeMs(), checkpoint.getMasterTimerQueueOffset());
    }

    private void proposeWhileMaster() {
        while (!Thread.currentThread().isInterrupted()) {
            try {
                TimeUnit.MILLISECONDS.sleep(INTERVAL_MS);
            } catch (InterruptedException e) {
                return;
            }
            TimerMessageStore timer = broker.getTimerMessageStore();
            if (timer == null || !timer.isShouldRunningDequeue() || !state.throughLog()) {
                proposed = null;
                continue;
            }
            BrokerStateEntry.TimerProgress now = new BrokerStateEntry.TimerProgress(timer.getCommitReadTimeMs(),
                timer.getCommitQueueOffset());
            if (now.equals(proposed)) {
                continue;
            }
            try {
                state.propose("timer progress", List.of(now));
                proposed = now;
            } catch (RuntimeException e) {
                LOG.warn("[{}] {}", name, e.getMessage());
            }
        }
    }
}
