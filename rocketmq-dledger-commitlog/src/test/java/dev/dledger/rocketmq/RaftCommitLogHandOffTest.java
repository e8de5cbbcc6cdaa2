package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.NodeStatus;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A leader about to stop for good (its broker removed from a container, review finding C3) hands its leadership to
 * another node first ({@link RaftCommitLog#handOffLeadership}), so that its group has a leader when it stops.
 */
class RaftCommitLogHandOffTest {

    @TempDir
    Path dir;

    @Test
    void aLeaderAboutToStopHandsItsLeadershipToAFollowerFirst() throws Exception {
        try (StoreGroup g = new StoreGroup(dir, 3)) {
            for (String id : List.of("n0", "n1", "n2")) {
                g.start(id, false);
            }
            DefaultMessageStore leader = g.awaitLeader();
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
}
