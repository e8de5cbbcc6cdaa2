package dev.dledger.rocketmq;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.apache.rocketmq.store.timer.TimerMessageStore;
import org.apache.rocketmq.store.timer.TimerWheel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The timer store's flush service at a fraction of its cost. RocketMQ 5.5.1's {@code TimerWheel.flush()} walks the
 * whole wheel (7 days of 1 s slots, twice, 32 bytes a slot: 38.7 MB) byte by byte against its mapped file every
 * {@code timerFlushIntervalMs} (1 s), changed or not: 60-70 ms of a core every second on this machine, the largest
 * single item of an idle broker's CPU, paid by every broker of a process (nine brokers: more than half a core).
 *
 * <p>This service writes the same bytes in the same order of steps as the stock one in its default mode (no
 * {@code timerWheelSnapshotFlush}): the checkpoint prepared, the timer log flushed, every byte of the wheel that
 * differs from its file copied into the mapping and the mapping forced, the checkpoint flushed, the timer metrics
 * persisted. Only the search for changed bytes differs: {@link ByteBuffer#mismatch} compares many bytes at a time,
 * and each difference copies its 32-byte slot in one bulk put; and the wheel is compared only when the timer log grew
 * since the flush before the last one, or every {@value ChangeGate#COMPARE_EVERY}th flush regardless ({@link
 * ChangeGate}: a running store writes the wheel only when it enqueues a message, right after appending it to the timer
 * log). With {@code timerWheelSnapshotFlush=true} the stock
 * flush runs unchanged; the stock flush also runs once more when the timer store shuts down. Left out: the stock
 * service's progress line in the log every {@code timerProgressLogIntervalMs}.
 *
 * <p>Installed by {@link #install} between the timer store's load (which builds the stock service) and its start
 * (which starts whichever service the store holds then); when RocketMQ's classes are not as expected, the stock
 * service is kept and one line says so.
 *
 * <p>Thread-safety: the flush runs on the service's thread; the wheel's writers (the timer store's threads) go on
 * meanwhile, as with the stock flush: a slot copied while it changes is copied again by the next flush.
 */
final class TimerWheelFlush extends TimerMessageStore.TimerFlushService {

    private static final Logger LOG = LoggerFactory.getLogger(TimerWheelFlush.class);
    /** Bytes of one wheel slot: a difference copies the slot it falls in. */
    static final int SLOT_BYTES = 32;

    private final TimerMessageStore timer;
    private final MessageStoreConfig config;
    private final ByteBuffer memory;
    private final MappedByteBuffer file;
    private final ChangeGate gate = new ChangeGate();

    /**
     * Whether a flush compares the wheel with its file, from the end of the timer log at each flush. In RocketMQ 5.5.1 a
     * running timer store writes its wheel in one place, {@code doEnqueue}, which appends the message to the timer log
     * first and then puts its slot (the other writer, {@code recoverAndRevise}, runs before the service starts). So a
     * flush at which the log's end is the one of the flush before saw every slot put since, except one whose put lagged
     * its append across a flush: the first flush after the end stopped moving compares once more for those, and every
     * {@value #COMPARE_EVERY}th flush compares regardless. An idle or timer-free broker thus skips 38.7 MB of
     * comparison nine seconds out of ten. Not thread-safe: the flush's thread only.
     */
    static final class ChangeGate {
        /** A quiet wheel is compared at least this often, in flushes. */
        static final int COMPARE_EVERY = 10;
        private long lastEnd = Long.MIN_VALUE;
        private int quiet;

        /** Whether the flush that sees the timer log end at {@code logEnd} compares the wheel. */
        boolean compareNow(long logEnd) {
            if (logEnd != lastEnd) {
                lastEnd = logEnd;
                quiet = 0;
                return true;
            }
            quiet++;
            return quiet == 1 || quiet % COMPARE_EVERY == 0;
        }
    }

    private TimerWheelFlush(TimerMessageStore timer, MessageStoreConfig config, TimerWheel wheel) {
        timer.super();
        this.timer = timer;
        this.config = config;
        this.memory = field(wheel, "byteBuffer", ByteBuffer.class).duplicate();
        this.file = field(wheel, "mappedByteBuffer", MappedByteBuffer.class);
    }

    /**
     * Puts this service in place of the stock one in {@code broker}'s timer store; call after the store loaded and
     * before it starts. Does nothing without a timer store; keeps the stock service (and says so) when RocketMQ's
     * classes are not as expected.
     */
    static void install(BrokerController broker, String name) {
        TimerMessageStore timer = broker.getTimerMessageStore();
        if (timer == null || timer.getTimerWheel() == null) {
            return;
        }
        try {
            Field f = TimerMessageStore.class.getDeclaredField("timerFlushService");
            f.setAccessible(true);
            if (f.get(timer) == null) {
                LOG.warn("[{}] the timer store has no flush service yet (not loaded?): its stock flush is kept", name);
                return;
            }
            f.set(timer, new TimerWheelFlush(timer, broker.getMessageStoreConfig(), timer.getTimerWheel()));
            LOG.info("[{}] the timer store's flush writes the wheel's changed slots only", name);
        } catch (ReflectiveOperationException | RuntimeException e) {
            LOG.warn("[{}] the timer store keeps its stock flush (RocketMQ {} expected): {}", name,
                RaftBrokerStartup.SUPPORTED_ROCKETMQ, e.toString());
        }
    }

    @Override
    public void flush() throws IOException {
        if (config.isTimerWheelSnapshotFlush()) {
            super.flush();
            return;
        }
        timer.prepareTimerCheckPoint();
        timer.getTimerLog().getMappedFileQueue().flush(0);
        if (gate.compareNow(timer.getTimerLog().getMappedFileQueue().getMaxOffset())) {
            flushWheel(memory, file);
        }
        timer.getTimerCheckpoint().flush();
        timer.getTimerMetrics().persist();
    }

    /** Writes {@code wheel}'s changed bytes to its file and forces it, as {@code TimerWheel.flush()} does. */
    static void flushWheel(TimerWheel wheel) {
        flushWheel(field(wheel, "byteBuffer", ByteBuffer.class).duplicate(),
            field(wheel, "mappedByteBuffer", MappedByteBuffer.class));
    }

    private static void flushWheel(ByteBuffer memory, MappedByteBuffer file) {
        copyChanges(memory, file);
        file.force();
    }

    /**
     * Makes {@code to} hold the bytes of {@code from} (both from index 0 to {@code from}'s capacity), writing only the
     * {@link #SLOT_BYTES}-byte slots that differ.
     *
     * @return the slots written
     */
    static int copyChanges(ByteBuffer from, ByteBuffer to) {
        int length = from.capacity();
        if (to.capacity() < length) {
            throw new IllegalArgumentException("the wheel's file holds " + to.capacity() + " bytes, its memory "
                + length);
        }
        int slots = 0;
        int at = 0;
        while (at < length) {
            int m = from.slice(at, length - at).mismatch(to.slice(at, length - at));
            if (m < 0) {
                break;
            }
            int start = at + m;
            int end = Math.min(length, (start / SLOT_BYTES + 1) * SLOT_BYTES);
            to.put(start, from, start, end - start);
            slots++;
            at = end;
        }
        return slots;
    }

    private static <T> T field(TimerWheel wheel, String name, Class<T> type) {
        try {
            Field f = TimerWheel.class.getDeclaredField(name);
            f.setAccessible(true);
            return type.cast(f.get(wheel));
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("TimerWheel." + name + " cannot be read: " + e, e);
        }
    }
}
