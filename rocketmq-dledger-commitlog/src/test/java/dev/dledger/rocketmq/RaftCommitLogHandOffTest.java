package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.NodeStatus;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.PutMessageResult;
import org.apache.rocketmq.store.PutMessageStatus;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A leader about to stop for good (its broker removed from a container, review finding C3) hands its leadership to
 * another node first ({@link RaftCommitLog#handOffLeadership}), so that its group has a leader when it stops.
 */
class RaftCommitLogHandOffTest {

    @TempDir
    Path dir;

    /**
     * A send let through as master is counted until its put is proposed, not until the put commits: the Raft node
     * holds an announced hand-over meanwhile ({@code RaftGroupNode.handOverHold}), and a synchronous send that waits for
     * its commit must not hold it that long. A refused put ends the count too, and a count ends once.
     */
    @Test
    void aSendLetThroughAsMasterIsCountedUntilItsPutIsProposed() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 3)) {
            DefaultMessageStore leader = startedLeader(g);
            RaftCommitLog log = StoreGroup.log(leader);
            assertFalse(log.sendsOnTheirWay());

            log.sendLetThrough();
            RaftCommitLog.ServedSend served = log.servingCountedSend();
            assertTrue(log.sendsOnTheirWay(), "counted from the moment it is let through");
            CompletableFuture<PutMessageResult> put = log.asyncPutMessage(StoreGroup.message("Counted", 0, "m0"));
            assertFalse(log.sendsOnTheirWay(), "the put is proposed: no longer counted, though not committed yet");
            assertEquals(PutMessageStatus.PUT_OK, put.get(30, TimeUnit.SECONDS).getPutMessageStatus());
            assertTrue(served.proposed(), "its message went into the log");
            RaftCommitLog.endCountedSend();
            assertFalse(log.sendsOnTheirWay(), "the handler's own end after the put's changes nothing");

            // Puts closed in the leader's term (as when it stops leading): refused on the Raft thread, before any entry
            // is built. Nothing stored, so the send guard may give the send to the next master.
            long term = log.putTerm();
            log.closeForPuts();
            RaftCommitLog.ServedSend closed = refusedUnstored(log, "m-closed");
            log.openForPuts(term);

            RaftCommitLog follower = null;
            for (DefaultMessageStore s : g.stores.values()) {
                if (s != leader) {
                    follower = StoreGroup.log(s);
                }
            }
            refusedUnstored(follower, "m1");

            // A put of no counted send (the timer's, a transaction's check) is not told to any send.
            assertEquals(PutMessageStatus.PUT_OK, log.asyncPutMessage(StoreGroup.message("Counted", 0, "m2"))
                .get(30, TimeUnit.SECONDS).getPutMessageStatus());
            assertTrue(served.proposed() && !closed.proposed(), "earlier sends' records unchanged");

            log.sendLetThrough();
            log.sendNotServed();
            assertFalse(log.sendsOnTheirWay(), "a send not served after all");
        }
    }

    /**
     * Serves a send let through on {@code log} whose put must be refused (SERVICE_NOT_AVAILABLE) before its entry was
     * built: not proposed, so not stored, and no longer counted.
     */
    private static RaftCommitLog.ServedSend refusedUnstored(RaftCommitLog log, String key) throws Exception {
        log.sendLetThrough();
        RaftCommitLog.ServedSend served = log.servingCountedSend();
        assertEquals(PutMessageStatus.SERVICE_NOT_AVAILABLE, log.asyncPutMessage(StoreGroup.message("Counted", 0, key))
            .get(30, TimeUnit.SECONDS).getPutMessageStatus(), key);
        assertFalse(served.proposed(), key + ": refused before its entry was built, not stored");
        assertFalse(log.sendsOnTheirWay(), key + ": a refused put ends the count");
        return served;
    }

    @Test
    void aLeaderAboutToStopHandsItsLeadershipToAFollowerFirst() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 3)) {
            DefaultMessageStore leader = startedLeader(g);
            RaftCommitLog log = StoreGroup.log(leader);
            NodeStatus before = log.node().status();

            assertTrue(log.handOffLeadership(10_000), "the leader stepped down within the wait");

            assertNotEquals(Role.LEADER, log.node().status().role());
            String self = before.id();
            String[] next = new String[1];
            await("another node leads").atMost(Duration.ofSeconds(10)).until(() -> {
                for (String id : List.of("n0", "n1", "n2")) {
                    NodeStatus s = StoreGroup.log(g.stores.get(id)).node().status();
                    if (!id.equals(self) && s.role() == Role.LEADER && s.term() > before.term()) {
                        next[0] = id;
                        return true;
                    }
                }
                return false;
            });
            System.out.printf("leader %s (term %d) handed over to %s (term %d)%n", self, before.term(), next[0],
                StoreGroup.log(g.stores.get(next[0])).node().status().term());
            // Once the old leader stops, its group goes on with a leader that takes puts.
            g.stop(self);
            DefaultMessageStore now = g.awaitLeader();
            assertNotEquals(self, StoreGroup.log(now).node().id());
            // A node that does not lead has nothing to hand over.
            assertTrue(StoreGroup.log(g.stores.get(otherThan(self, next[0]))).handOffLeadership(10_000));
        }
    }

    private static String otherThan(String a, String b) {
        for (String id : List.of("n0", "n1", "n2")) {
            if (!id.equals(a) && !id.equals(b)) {
                return id;
            }
        }
        throw new IllegalStateException();
    }

    /** Starts n0, n1 and n2 and returns the store of the one that leads. */
    private static DefaultMessageStore startedLeader(StoreGroup g) throws Exception {
        for (String id : List.of("n0", "n1", "n2")) {
            g.start(id, false);
        }
        return g.awaitLeader();
    }
}
