package dev.dledger.rocketmq;

import java.io.PrintStream;
import java.util.ArrayList;
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
                  long storedTwice, long staleReads, long storedAfterFailedSend, List<String> examples) {
    }

    private BrokerFaultsCheck() {
    }

    /**
     * @param log the messages of the run's topic in the reference node's committed log, by key
     */
    static Result check(FaultWorkload w, Map<String, List<ReplicaLogs.Copy>> log, PrintStream out) {
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
        Result r = new Result(lost.size(), duplicated, redelivered, clientRetries, resends, unexplained, storedTwice,
            stale.size(), storedAfterFailedSend, examples);
        print(w, r, out);
        return r;
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
        for (String e : r.examples()) {
            out.println("  " + e);
        }
    }
}
