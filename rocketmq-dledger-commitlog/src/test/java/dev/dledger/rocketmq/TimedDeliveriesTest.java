package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.file.Path;
import java.time.Duration;
import org.apache.rocketmq.common.message.MessageAccessor;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExtBrokerInner;
import org.apache.rocketmq.common.sysflag.MessageSysFlag;
import org.apache.rocketmq.store.AppendMessageResult;
import org.apache.rocketmq.store.AppendMessageStatus;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.PutMessageResult;
import org.apache.rocketmq.store.PutMessageStatus;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A timed delivery the log holds already is answered without appending it again; every other put is appended (a real
 * store on the Raft log, one node).
 */
@Tag("in-process")
class TimedDeliveriesTest {

    @TempDir
    Path dir;

    @Test
    void aTimedDeliveryInTheLogAlreadyIsAnsweredAtItsPlaceAndNotAppendedAgain() throws Exception {
        TimedDeliveries[] deliveries = new TimedDeliveries[1];
        try (StoreGroup g = new StoreGroup(dir.resolve("group"), 1)) {
            g.beforeStart = s -> {
                deliveries[0] = new TimedDeliveries("test", s);
                s.getDispatcherList().addLast(deliveries[0]);
                StoreGroup.log(s).onPut(deliveries[0]);
            };
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            String topic = "T";
            // A timer delivery (TIMER_OUT_MS) and a delay-level delivery (its real topic is its own topic).
            PutMessageResult timer = put(s, timed(topic, "timer", "AA01", 0, "1764800000000", null));
            PutMessageResult delay = put(s, timed(topic, "delay", "AA02", 0, null, topic));
            await().atMost(Duration.ofSeconds(5)).until(() -> s.getMaxOffsetInQueue(topic, 0) == 2);

            PutMessageResult timerAgain = put(s, timed(topic, "timer", "AA01", 0, "1764800000000", null));
            PutMessageResult delayAgain = put(s, timed(topic, "delay", "AA02", 0, null, topic));
            assertEquals(timer.getAppendMessageResult().getWroteOffset(),
                timerAgain.getAppendMessageResult().getWroteOffset(), "answered at the delivery in the log");
            assertEquals(delay.getAppendMessageResult().getWroteOffset(),
                delayAgain.getAppendMessageResult().getWroteOffset(), "answered at the delivery in the log");
            assertEquals(2, deliveries[0].skipped());

            // Appended: the next retry of a message (one more reconsume), another due time, a plain message with the
            // same id, a transaction's message.
            put(s, timed(topic, "retry", "AA02", 1, null, topic));
            put(s, timed(topic, "later", "AA01", 0, "1764800001000", null));
            put(s, timed(topic, "plain", "AA01", 0, null, null));
            MessageExtBrokerInner commit = timed(topic, "commit", "AA02", 0, null, topic);
            commit.setSysFlag(MessageSysFlag.resetTransactionValue(0, MessageSysFlag.TRANSACTION_COMMIT_TYPE));
            put(s, commit);
            await().atMost(Duration.ofSeconds(5)).until(() -> s.getMaxOffsetInQueue(topic, 0) == 6);
            assertEquals(2, deliveries[0].skipped());
            assertEquals(6, s.getMaxOffsetInQueue(topic, 0));
        }
    }

    @Test
    void aSecondPutOfADeliveryBeingPutIsRefusedUntilTheFirstIsAnswered() {
        TimedDeliveries deliveries = new TimedDeliveries("test", null);
        MessageExtBrokerInner copy1 = timed("T", "timer", "AA03", 0, "1764800000000", null);
        MessageExtBrokerInner copy2 = timed("T", "timer", "AA03", 0, "1764800000000", null);
        assertNull(deliveries.check(copy1), "the first put goes on");
        assertEquals(PutMessageStatus.SERVICE_NOT_AVAILABLE, deliveries.check(copy2).getPutMessageStatus(),
            "the same delivery while the first is put");
        // The first fails (nothing appended): the next one goes on.
        deliveries.putDone(copy1, new PutMessageResult(PutMessageStatus.SERVICE_NOT_AVAILABLE, null));
        assertNull(deliveries.check(copy2));
        deliveries.putDone(copy2, new PutMessageResult(PutMessageStatus.PUT_OK,
            new AppendMessageResult(AppendMessageStatus.PUT_OK, 4096, 200, 0)));
        PutMessageResult third = deliveries.check(timed("T", "timer", "AA03", 0, "1764800000000", null));
        assertEquals(PutMessageStatus.PUT_OK, third.getPutMessageStatus(), "stored: answered as done");
        assertEquals(4096, third.getAppendMessageResult().getWroteOffset());
        assertEquals(1, deliveries.skipped());

        // A put whose commit was not known in time may still commit: its retry waits for the log to show it.
        MessageExtBrokerInner late = timed("T", "timer", "AA04", 0, "1764800000000", null);
        assertNull(deliveries.check(late));
        deliveries.putDone(late, new PutMessageResult(PutMessageStatus.IN_SYNC_REPLICAS_NOT_ENOUGH, null));
        assertEquals(PutMessageStatus.SERVICE_NOT_AVAILABLE, deliveries.check(late).getPutMessageStatus(),
            "retried while the first may still commit");
    }

    @Test
    void onlyDeliveriesOfTheTimerOrTheScheduleHaveAKey() {
        assertNotNull(TimedDeliveries.key("T", 0, "id", 0, "1000", null, 0));
        assertNotNull(TimedDeliveries.key("T", 0, "id", 0, null, "T", 0));
        assertNull(TimedDeliveries.key("T", 0, "id", 0, null, null, 0), "a plain message");
        assertNull(TimedDeliveries.key("T", 0, "id", 0, null, "Other", 0), "real topic elsewhere");
        assertNull(TimedDeliveries.key("T", 0, null, 0, "1000", null, 0), "no message id");
        assertNull(TimedDeliveries.key("rmq_sys_wheel_timer", 0, "id", 0, "1000", "T", 0), "the timer's own topic");
        assertNull(TimedDeliveries.key("SCHEDULE_TOPIC_XXXX", 2, "id", 0, null, "SCHEDULE_TOPIC_XXXX", 0));
    }

    private static PutMessageResult put(DefaultMessageStore s, MessageExtBrokerInner m) {
        PutMessageResult r = s.putMessage(m);
        assertEquals(PutMessageStatus.PUT_OK, r.getPutMessageStatus());
        return r;
    }

    private static MessageExtBrokerInner timed(String topic, String body, String uniqKey, int reconsumeTimes,
                                               String timerOutMs, String realTopic) {
        MessageExtBrokerInner m = StoreGroup.message(topic, 0, body);
        MessageAccessor.putProperty(m, MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX, uniqKey);
        if (timerOutMs != null) {
            MessageAccessor.putProperty(m, MessageConst.PROPERTY_TIMER_OUT_MS, timerOutMs);
        }
        if (realTopic != null) {
            MessageAccessor.putProperty(m, MessageConst.PROPERTY_REAL_TOPIC, realTopic);
            MessageAccessor.putProperty(m, MessageConst.PROPERTY_REAL_QUEUE_ID, "0");
        }
        m.setReconsumeTimes(reconsumeTimes);
        m.setPropertiesString(MessageDecoder.messageProperties2String(m.getProperties()));
        return m;
    }
}
