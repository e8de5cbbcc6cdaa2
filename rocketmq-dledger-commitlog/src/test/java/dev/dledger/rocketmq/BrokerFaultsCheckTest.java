package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The fault run's explanation of redeliveries, on records made up for the purpose. */
class BrokerFaultsCheckTest {

    /** The group committed offset 10 of queue 0 at log entry 5; a send stored at entry 6 was acknowledged at t=100. */
    private static final List<ReplicaLogs.OffsetCommitAt> COMMITS = List.of(
        new ReplicaLogs.OffsetCommitAt(3, 0, 4), new ReplicaLogs.OffsetCommitAt(5, 0, 10),
        new ReplicaLogs.OffsetCommitAt(9, 0, 20));
    private static final List<long[]> ACKS = List.of(new long[] {100, 6}, new long[] {400, 9});

    private static FaultWorkload.Delivery delivery(long queueOffset, int member, long at) {
        return new FaultWorkload.Delivery("id-" + queueOffset, 1000 + queueOffset, 0, queueOffset, 0, member, at);
    }

    private static BrokerFaultsCheck.Redeliveries check(long redeliveredOffset, List<String> examples) {
        // Member 0 held queue 0 from the start; member 1 was given it at t=200, after the commit of offset 10 was
        // acknowledged (entry 5 < entry 6, acknowledged at t=100) and before the commit of 20.
        List<FaultWorkload.Assignment> assignments = List.of(
            new FaultWorkload.Assignment(0, 10, Set.of(0)), new FaultWorkload.Assignment(1, 10, Set.of()),
            new FaultWorkload.Assignment(0, 200, Set.of()), new FaultWorkload.Assignment(1, 200, Set.of(0)));
        Map<String, List<FaultWorkload.Delivery>> delivered = Map.of("k", List.of(
            delivery(redeliveredOffset, 0, 50), delivery(redeliveredOffset, 1, 300)));
        return BrokerFaultsCheck.redeliveries(ACKS, assignments, delivered, COMMITS, examples);
    }

    @Test
    void aRedeliveryAtOrPastTheOffsetAcknowledgedWhenTheQueueMovedIsExplained() {
        List<String> examples = new ArrayList<>();
        assertEquals(new BrokerFaultsCheck.Redeliveries(1, 1, 0), check(10, examples));
        assertEquals(new BrokerFaultsCheck.Redeliveries(1, 1, 0), check(15, examples));
        assertEquals(List.of(), examples);
    }

    @Test
    void aRedeliveryBelowAnAcknowledgedCommitIsUnexplained() {
        List<String> examples = new ArrayList<>();
        assertEquals(new BrokerFaultsCheck.Redeliveries(1, 0, 1), check(9, examples));
        assertEquals(1, examples.size(), examples.toString());
    }

    @Test
    void aRedeliveryToAMemberThatWasNeverGivenTheQueueIsUnexplained() {
        List<String> examples = new ArrayList<>();
        Map<String, List<FaultWorkload.Delivery>> delivered = Map.of("k", List.of(
            delivery(12, 0, 50), delivery(12, 2, 300)));
        assertEquals(new BrokerFaultsCheck.Redeliveries(1, 0, 1),
            BrokerFaultsCheck.redeliveries(ACKS, List.of(), delivered, COMMITS, examples));
    }
}
