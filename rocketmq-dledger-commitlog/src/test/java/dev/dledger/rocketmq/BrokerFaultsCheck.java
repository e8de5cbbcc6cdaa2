package dev.dledger.rocketmq;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The checker of a broker fault run, on what the workload recorded and what the Raft log holds.
 *
 * <ul>
 *   <li>lost: a key acknowledged (SEND_OK) that the consumer group never got;</li>
 *   <li>duplicated: a key the group got more than once, explained one by one: the same stored message delivered
 *   again (same commit log offset; the group's consumed offset was behind after a rebalance or a failover), or the
 *   key stored twice, either by the client's own retry of one send (same message id, put on the wire more than
 *   once) or by the producer's resend after a send that failed or timed out (a new message id, and the earlier
 *   send had been stored all the same). A key stored twice that neither explains is unexplained;</li>
 *   <li>stale reads: a delivery of a key never sent, or with a body never sent with that key (recorded by the
 *   workload as it happens).</li>
 * </ul>
 */
final class BrokerFaultsCheck {

    private static final int EXAMPLES = 10;

    /** What the checker found; the examples are in words. */
    record Result(long lost, long duplicated, long redelivered, long clientRetries, long resends, long unexplained,
                  long storedTwice, long staleReads, long storedAfterFailedSend, Redeliveries redeliveries,
                  List<String> examples) {
    }

    /**
     * Deliveries of a stored message after its first: {@code explained} of them came to a member whose queue was
     * assigned to it (by a rebalance) while the group's last offset for that queue in the Raft log was at or before
     * the message, so the commit that covered it had not been acknowledged yet; {@code unexplained} came although the
     * log already held a commit past the message, or with no assignment to explain a fetch of the group's offset.
     */
    record Redeliveries(long deliveries, long explained, long unexplained) {
    }

    private BrokerFaultsCheck() {
    }

    /**
     * @param log the messages of the run's topic in the reference node's committed log, by key
     */
    static Result check(FaultWorkload w, Map<String, List<ReplicaLogs.Copy>> log,
                        List<ReplicaLogs.OffsetCommitAt> commits, PrintStream out) {
        List<String> examples = new ArrayList<>();
        Map<String, FaultWorkload.Sent> sent = w.sent();
        Map<String, List<FaultWorkload.Delivery>> delivered = w.delivered();

        List<String> lost = w.ackedNotDelivered();
        for (String key : lost.subList(0, Math.min(EXAMPLES, lost.size()))) {
            List<ReplicaLogs.Copy> copies = log.get(key);
            examples.add("lost " + key + ": sends " + sent.get(key).sends() + "; in the log: "
                + (copies == null ? "not there" : copies));
        }

        // Keys stored more than once, and why.
        long clientRetries = 0;
        long resends = 0;
        long unexplained = 0;
        long storedTwice = 0;
        for (Map.Entry<String, List<ReplicaLogs.Copy>> e : log.entrySet()) {
            List<ReplicaLogs.Copy> copies = e.getValue();
            if (copies.size() < 2) {
                continue;
            }
            storedTwice++;
            String why = whyStoredTwice(w, e.getKey(), copies, sent.get(e.getKey()));
            if (why.startsWith("client retry")) {
                clientRetries++;
            } else if (why.startsWith("resend")) {
                resends++;
            } else {
                unexplained++;
                examples.add("UNEXPLAINED " + e.getKey() + " stored " + copies.size() + " times: " + copies + "; sends "
                    + (sent.get(e.getKey()) == null ? "none" : sent.get(e.getKey()).sends()));
            }
        }

        // Keys delivered more than once.
        long duplicated = 0;
        long redelivered = 0;
        for (Map.Entry<String, List<FaultWorkload.Delivery>> e : delivered.entrySet()) {
            List<FaultWorkload.Delivery> ds;
            synchronized (e.getValue()) {
                ds = List.copyOf(e.getValue());
            }
            if (ds.size() < 2) {
                continue;
            }
            duplicated++;
            Set<Long> offsets = new HashSet<>();
            for (FaultWorkload.Delivery d : ds) {
                offsets.add(d.commitLogOffset());
            }
            if (offsets.size() < ds.size()) {
                redelivered++;
            }
        }

        // Sends that failed or timed out but were stored all the same (the client cannot know).
        long storedAfterFailedSend = 0;
        for (Map.Entry<String, List<ReplicaLogs.Copy>> e : log.entrySet()) {
            FaultWorkload.Sent s = sent.get(e.getKey());
            if (s == null) {
                continue;
            }
            Set<String> storedIds = new HashSet<>();
            for (ReplicaLogs.Copy c : e.getValue()) {
                storedIds.add(c.msgId());
            }
            for (FaultWorkload.Send send : s.sends()) {
                if (!send.ok() && storedIds.contains(send.msgId())) {
                    storedAfterFailedSend++;
                }
            }
        }

        List<String> stale = w.staleReads();
        for (String s : stale.subList(0, Math.min(EXAMPLES, stale.size()))) {
            examples.add("stale read: " + s);
        }
        Redeliveries again = redeliveries(w, log, commits, examples);
        Result r = new Result(lost.size(), duplicated, redelivered, clientRetries, resends, unexplained, storedTwice,
            stale.size(), storedAfterFailedSend, again, examples);
        print(w, r, out);
        return r;
    }

    /**
     * Explains each delivery of a stored message after its first. The member that got it again fetched the group's
     * offset of that queue when a rebalance gave it the queue (the start of the member's latest unbroken run of
     * assignments holding the queue). Every send acknowledged before that moment is in the log at or before some
     * index; the group's last offset commit for the queue up to that index was acknowledged by then, so a correct
     * broker could not have answered with less. The delivery is explained when that commit is at or before the
     * message (or there is none): the commit covering the message was not yet acknowledged.
     */
    private static Redeliveries redeliveries(FaultWorkload w, Map<String, List<ReplicaLogs.Copy>> log,
                                             List<ReplicaLogs.OffsetCommitAt> commits, List<String> examples) {
        // When each acknowledged send was answered, and where it is in the log.
        Map<String, Long> indexOfMsgId = new HashMap<>();
        for (List<ReplicaLogs.Copy> copies : log.values()) {
            for (ReplicaLogs.Copy c : copies) {
                indexOfMsgId.merge(String.valueOf(c.msgId()), c.index(), Math::min);
            }
        }
        List<long[]> acks = new ArrayList<>();
        for (FaultWorkload.Sent s : w.sent().values()) {
            for (FaultWorkload.Send send : s.sends()) {
                Long index = send.ok() ? indexOfMsgId.get(send.msgId()) : null;
                if (index != null) {
                    acks.add(new long[] {send.answeredNanos(), index});
                }
            }
        }
        Map<String, List<FaultWorkload.Delivery>> delivered = new HashMap<>();
        for (Map.Entry<String, List<FaultWorkload.Delivery>> e : w.delivered().entrySet()) {
            synchronized (e.getValue()) {
                delivered.put(e.getKey(), new ArrayList<>(e.getValue()));
            }
        }
        return redeliveries(acks, w.assignments(), delivered, commits, examples);
    }

    /**
     * The analysis of {@link #redeliveries(FaultWorkload, Map, List, List)} on plain records.
     *
     * @param acks        each acknowledged send as {answered at (nanos), its index in the log}
     * @param assignments the rebalances of the group's members, in the order they happened
     * @param delivered   the deliveries of each key
     * @param commits     the group's offset commits in the log, in log order
     * @param examples    where to add a line for each of the first unexplained redeliveries
     */
    static Redeliveries redeliveries(List<long[]> acks, List<FaultWorkload.Assignment> assignments,
                                     Map<String, List<FaultWorkload.Delivery>> delivered,
                                     List<ReplicaLogs.OffsetCommitAt> commits, List<String> examples) {
        List<long[]> byTime = new ArrayList<>(acks);
        byTime.sort(Comparator.comparingLong(a -> a[0]));
        long[] ackNanos = new long[byTime.size()];
        long[] ackedUpTo = new long[byTime.size()];
        long max = 0;
        for (int i = 0; i < byTime.size(); i++) {
            ackNanos[i] = byTime.get(i)[0];
            max = Math.max(max, byTime.get(i)[1]);
            ackedUpTo[i] = max;
        }
        Map<Integer, List<FaultWorkload.Assignment>> byMember = new HashMap<>();
        for (FaultWorkload.Assignment a : assignments) {
            byMember.computeIfAbsent(a.member(), m -> new ArrayList<>()).add(a);
        }

        long deliveries = 0;
        long explained = 0;
        long unexplained = 0;
        for (Map.Entry<String, List<FaultWorkload.Delivery>> e : delivered.entrySet()) {
            List<FaultWorkload.Delivery> ds = new ArrayList<>(e.getValue());
            ds.sort(Comparator.comparingLong(FaultWorkload.Delivery::atNanos));
            Set<Long> seen = new HashSet<>();
            for (FaultWorkload.Delivery d : ds) {
                if (seen.add(d.commitLogOffset())) {
                    continue;
                }
                deliveries++;
                String why = unexplainedRedelivery(d, byMember.getOrDefault(d.member(), List.of()), ackNanos,
                    ackedUpTo, commits);
                if (why == null) {
                    explained++;
                } else {
                    unexplained++;
                    if (unexplained <= EXAMPLES) {
                        examples.add("UNEXPLAINED redelivery of " + e.getKey() + " " + d + ": " + why);
                    }
                }
            }
        }
        return new Redeliveries(deliveries, explained, unexplained);
    }

    /** Null when redelivery {@code d} is explained (see {@link #redeliveries}), otherwise why it is not. */
    private static String unexplainedRedelivery(FaultWorkload.Delivery d, List<FaultWorkload.Assignment> assignments,
                                                long[] ackNanos, long[] ackedUpTo,
                                                List<ReplicaLogs.OffsetCommitAt> commits) {
        FaultWorkload.Assignment since = null;
        for (int i = assignments.size() - 1; i >= 0; i--) {
            FaultWorkload.Assignment a = assignments.get(i);
            if (a.atNanos() > d.atNanos()) {
                continue;
            }
            if (!a.queueIds().contains(d.queueId())) {
                break;
            }
            since = a;
        }
        if (since == null) {
            return "member " + d.member() + " held no assignment of queue " + d.queueId() + " before it";
        }
        int at = Arrays.binarySearch(ackNanos, since.atNanos());
        int before = at >= 0 ? at - 1 : -at - 2;
        long upTo = before < 0 ? 0 : ackedUpTo[before];
        ReplicaLogs.OffsetCommitAt last = null;
        for (ReplicaLogs.OffsetCommitAt c : commits) {
            if (c.index() > upTo) {
                break;
            }
            if (c.queueId() == d.queueId()) {
                last = c;
            }
        }
        if (last == null || last.offset() <= d.queueOffset()) {
            return null;
        }
        return "queue " + d.queueId() + " was assigned to member " + d.member() + " when the log already held the "
            + "group's offset " + last.offset() + " (entry " + last.index() + ", acknowledged by index " + upTo + ")";
    }

    /**
     * Why {@code key} is in the log more than once: a client retry (one message id, sent on the wire at least as many
     * times as it is stored), a resend (each stored message id is a send of this key the producer made after one that
     * failed), or, failing both, a line starting with "unexplained".
     */
    private static String whyStoredTwice(FaultWorkload w, String key, List<ReplicaLogs.Copy> copies,
                                         FaultWorkload.Sent sent) {
        if (sent == null) {
            return "unexplained: never sent";
        }
        Map<String, Integer> storedPerId = new TreeMap<>();
        for (ReplicaLogs.Copy c : copies) {
            storedPerId.merge(String.valueOf(c.msgId()), 1, Integer::sum);
        }
        Set<String> sentIds = new HashSet<>();
        for (FaultWorkload.Send s : sent.sends()) {
            sentIds.add(s.msgId());
        }
        boolean retried = false;
        for (Map.Entry<String, Integer> e : storedPerId.entrySet()) {
            if (!sentIds.contains(e.getKey())) {
                return "unexplained: message id " + e.getKey() + " of " + key + " was never sent";
            }
            if (e.getValue() > 1) {
                if (w.wireAttempts(e.getKey()) < e.getValue()) {
                    return "unexplained: message id " + e.getKey() + " stored " + e.getValue() + " times but sent "
                        + w.wireAttempts(e.getKey()) + " times";
                }
                retried = true;
            }
        }
        return storedPerId.size() > 1 ? "resend" : retried ? "client retry" : "unexplained";
    }

    private static void print(FaultWorkload w, Result r, PrintStream out) {
        long keys = w.sent().size();
        long acked = w.sent().values().stream().filter(s -> s.acked).count();
        out.println("workload: " + w.sendCalls() + " sends of " + keys + " keys: " + w.sendOk() + " SEND_OK, "
            + w.sendTimeouts() + " timed out, " + w.sendFailures() + " failed; " + acked + " keys acknowledged; "
            + w.deliveries() + " deliveries of " + w.delivered().size() + " keys");
        out.println("duplicates: " + r.duplicated() + " keys delivered more than once: " + r.redelivered()
            + " with the same stored message delivered again (the group's consumed offset was behind after a "
            + "rebalance or a failover), the others stored twice; in the log " + r.storedTwice()
            + " keys are stored twice: " + r.clientRetries() + " by the client's retry of one send (same message id, "
            + "an earlier attempt timed out or failed but was stored), " + r.resends() + " by the producer's resend "
            + "after a failed send that was stored (new message id), " + r.unexplained() + " unexplained");
        out.println("sends that failed or timed out but were stored all the same: " + r.storedAfterFailedSend());
        Redeliveries again = r.redeliveries();
        out.println("redelivered: " + again.deliveries() + " deliveries of a stored message after its first ("
            + w.assignments().size() + " rebalances of the group's members): " + again.explained() + " explained (the "
            + "group's offset commit covering the message was not yet acknowledged in the Raft log when its queue was "
            + "assigned to the member that got it again), " + again.unexplained() + " unexplained");
        for (String e : r.examples()) {
            out.println("  " + e);
        }
    }
}
