package dev.dledger.rocketmq;

import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageExtBrokerInner;
import org.apache.rocketmq.common.sysflag.MessageSysFlag;
import org.apache.rocketmq.common.topic.TopicValidator;
import org.apache.rocketmq.store.AppendMessageResult;
import org.apache.rocketmq.store.AppendMessageStatus;
import org.apache.rocketmq.store.CommitLogDispatcher;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.DispatchRequest;
import org.apache.rocketmq.store.PutMessageResult;
import org.apache.rocketmq.store.PutMessageStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * No timed message is delivered twice across a leader change (issue 15). The timer wheel and the schedule service
 * (delay levels) deliver a due message by putting a copy of it into its real topic; their progress reaches the log
 * only at commit points (the timer's {@link BrokerStateEntry.TimerProgress} and the delay offsets, every 200 ms), so a
 * new master starts delivering from a point at or before where the old one stopped, and the deliveries the old master
 * made after that point are in the log already. This class finds them there: every node records, as its store
 * dispatches the log, each timed delivery it holds (a dispatcher); the master answers a put of a timed delivery
 * that the log already holds as done (PUT_OK, nothing appended), so the service moves on without delivering it again.
 *
 * <p>A timed delivery is a message in a topic that is not a system topic, not part of a transaction, with a message
 * id, and either the timer's {@code TIMER_OUT_MS} property (timer wheel) or its real topic property naming its own
 * topic (the schedule service leaves it there). It is known by its topic, queue, message id, reconsume count (a
 * message sent back for retry is delivered once per retry) and due time ({@code TIMER_OUT_MS}; empty for delay
 * levels). Deliveries stay known for {@link #RETAIN_MS} of store time, far more than the timer's and the schedule's
 * commit points lag behind their deliveries. A put of a delivery that is being put right now (a wheel may hold a
 * message twice after a leader change) is refused with SERVICE_NOT_AVAILABLE; both services put it again later and
 * are then answered by the first.
 *
 * <p>Thread-safety: {@link #dispatch} runs on the store's dispatch thread, {@link #check} on putting threads.
 */
final class TimedDeliveries implements CommitLogDispatcher, RaftCommitLog.PutFilter {

    private static final Logger LOG = LoggerFactory.getLogger(TimedDeliveries.class);
    /**
     * How long (store time, ms) a timed delivery is remembered after it was stored: far more than a new master repeats
     * (the timer's slot in progress and one proposal interval, 200 ms of the delay levels).
     */
    static final long RETAIN_MS = 60_000;
    /**
     * At most this many deliveries are remembered (about 250 bytes each); older ones are forgotten first, so above
     * 3,300 timed deliveries a second the window is shorter than {@link #RETAIN_MS}.
     */
    static final int MAX_REMEMBERED = 200_000;
    /** A put of a timed delivery unanswered for this long (ms) no longer holds back another put of it. */
    static final long STALE_PUT_MS = 60_000;

    /** Where a delivery is in the log. */
    private record Delivered(long commitLogOffset, long storeTimestamp) {
    }

    /** A remembered delivery in store order, for forgetting. */
    private record Remembered(String key, long storeTimestamp) {
    }

    private final String name;
    private final DefaultMessageStore store;
    private final Map<String, Delivered> delivered = new ConcurrentHashMap<>();
    /** The remembered deliveries, oldest first; touched by the dispatch thread only. */
    private final ArrayDeque<Remembered> order = new ArrayDeque<>();
    private final AtomicLong skipped = new AtomicLong();
    /** The timed deliveries being put now (checked, not answered yet), with when (ms) their put began. */
    private final Map<String, Long> inFlight = new ConcurrentHashMap<>();

    TimedDeliveries(String name, DefaultMessageStore store) {
        this.name = name;
        this.store = store;
    }

    /** Records a timed delivery the log holds; called by the store for every message it dispatches, in log order. */
    @Override
    public void dispatch(DispatchRequest r) {
        Map<String, String> props = r.getPropertiesMap();
        if (props == null || r.getMsgSize() <= 0 || r.getUniqKey() == null
            || key(r.getTopic(), r.getQueueId(), r.getUniqKey(), 0, props.get(MessageConst.PROPERTY_TIMER_OUT_MS),
            props.get(MessageConst.PROPERTY_REAL_TOPIC), r.getSysFlag()) == null) {
            return;
        }
        // The reconsume count is not in the dispatch request: read the message's header (timed deliveries only).
        MessageExt m = store.lookMessageByOffset(r.getCommitLogOffset(), r.getMsgSize());
        if (m == null) {
            return;
        }
        String key = key(r.getTopic(), r.getQueueId(), r.getUniqKey(), m.getReconsumeTimes(),
            props.get(MessageConst.PROPERTY_TIMER_OUT_MS), props.get(MessageConst.PROPERTY_REAL_TOPIC), r.getSysFlag());
        delivered.put(key, new Delivered(r.getCommitLogOffset(), r.getStoreTimestamp()));
        order.addLast(new Remembered(key, r.getStoreTimestamp()));
        forget(r.getStoreTimestamp() - RETAIN_MS);
    }

    private void forget(long before) {
        Remembered oldest;
        while ((oldest = order.peekFirst()) != null
            && (oldest.storeTimestamp() < before || order.size() > MAX_REMEMBERED)) {
            order.pollFirst();
            Delivered d = delivered.get(oldest.key());
            if (d != null && d.storeTimestamp() == oldest.storeTimestamp()) {
                delivered.remove(oldest.key(), d);
            }
        }
    }

    /**
     * The answer to a put of a timed delivery the log holds already: PUT_OK at the delivery's place in the log, with
     * no bytes written; SERVICE_NOT_AVAILABLE (the timer and the schedule service put it again later, and are then
     * answered by the first) while the same delivery is being put (a wheel may hold a message twice after a leader
     * change: a new master enqueues the timer topic again from its checkpoint); null for every other put.
     */
    @Override
    public PutMessageResult check(MessageExtBrokerInner msg) {
        String key = key(msg);
        if (key == null) {
            return null;
        }
        // The mark first, then the log: a put answered meanwhile is known before its mark goes (putDone).
        long now = System.currentTimeMillis();
        boolean[] marked = {false};
        inFlight.compute(key, (k, since) -> {
            if (since == null || now - since > STALE_PUT_MS) {
                marked[0] = true;
                return now;
            }
            return since;
        });
        if (!marked[0]) {
            Delivered known = delivered.get(key);
            if (known != null) {
                // A put whose outcome was unknown (its mark stays) did commit: the log holds it now.
                return answered(msg, known);
            }
            LOG.info("[{}] timed message {} of {}/{} is being delivered now; this second delivery is refused", name,
                msg.getProperty(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX), msg.getTopic(), msg.getQueueId());
            return new PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, null);
        }
        Delivered d = delivered.get(key);
        if (d == null) {
            return null;
        }
        inFlight.remove(key);
        return answered(msg, d);
    }

    private PutMessageResult answered(MessageExtBrokerInner msg, Delivered d) {
        Map<String, String> props = msg.getProperties();
        long n = skipped.incrementAndGet();
        LOG.info("[{}] timed message {} of {}/{} is delivered in the log already (offset {}); not delivered again "
            + "({} so far)", name, props.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX), msg.getTopic(),
            msg.getQueueId(), d.commitLogOffset(), n);
        return new PutMessageResult(PutMessageStatus.PUT_OK, new AppendMessageResult(AppendMessageStatus.PUT_OK,
            d.commitLogOffset(), 0, 0));
    }

    /**
     * A timed delivery let through is answered: when stored, it is known from now on (before it is dispatched); when
     * its outcome is unknown (it may still commit), its mark stays for up to {@link #STALE_PUT_MS}.
     */
    @Override
    public void putDone(MessageExtBrokerInner msg, PutMessageResult result) {
        String key = key(msg);
        if (key == null) {
            return;
        }
        if (result != null && result.isOk() && result.getAppendMessageResult() != null) {
            AppendMessageResult a = result.getAppendMessageResult();
            delivered.putIfAbsent(key, new Delivered(a.getWroteOffset(), a.getStoreTimestamp()));
        } else if (result == null || result.getPutMessageStatus() == PutMessageStatus.IN_SYNC_REPLICAS_NOT_ENOUGH) {
            // Appended, commit not known in time (a raft TIMEOUT): it may still commit. The mark stays, so a retry
            // is refused until the log shows the delivery (then answered by it) or the mark is stale.
            return;
        }
        inFlight.remove(key);
    }

    private static String key(MessageExtBrokerInner msg) {
        Map<String, String> props = msg.getProperties();
        if (props == null) {
            return null;
        }
        return key(msg.getTopic(), msg.getQueueId(), props.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX),
            msg.getReconsumeTimes(), props.get(MessageConst.PROPERTY_TIMER_OUT_MS),
            props.get(MessageConst.PROPERTY_REAL_TOPIC), msg.getSysFlag());
    }

    /** Puts answered as delivered already, since start. */
    long skipped() {
        return skipped.get();
    }

    /** The key of a timed delivery, or null when the message is none. */
    static String key(String topic, int queueId, String uniqKey, int reconsumeTimes, String timerOutMs,
                      String realTopic, int sysFlag) {
        if (topic == null || uniqKey == null || topic.startsWith(TopicValidator.SYSTEM_TOPIC_PREFIX)
            || TopicValidator.RMQ_SYS_SCHEDULE_TOPIC.equals(topic)
            || MessageSysFlag.getTransactionValue(sysFlag) != MessageSysFlag.TRANSACTION_NOT_TYPE) {
            return null;
        }
        if (timerOutMs == null && !topic.equals(realTopic)) {
            return null;
        }
        return topic + '\n' + queueId + '\n' + uniqKey + '\n' + reconsumeTimes + '\n'
            + (timerOutMs == null ? "" : timerOutMs);
    }
}
