package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ReplicationFlowControlTest {

    private static List<AppendEntriesRequest> appendsSent(CoreCluster c, String from, String to, int fromReady) {
        List<AppendEntriesRequest> out = new ArrayList<>();
        List<Ready> rs = c.readies.get(from);
        for (Ready r : rs.subList(fromReady, rs.size())) {
            for (Message m : r.messages()) {
                if (m instanceof AppendEntriesRequest a && a.to().equals(to) && !a.entries().isEmpty()) {
                    out.add(a);
                }
            }
        }
        return out;
    }

    private static CoreCluster cluster(int maxMsgs, long maxBytes, int perMessage) {
        return new CoreCluster(id -> RaftConfig.defaults(id).withTimeouts(10, 2)
            .withFlowControl(perMessage, 1 << 20, maxMsgs, maxBytes), "a", "b", "c");
    }

    @Test
    void followerMovesFromProbeToPipelinedReplicationOnceItMatches() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        for (FollowerProgress p : leader.progress()) {
            assertEquals("REPLICATE", p.state(), p.id());
            assertEquals(leader.lastIndex(), p.matchIndex());
        }
    }

    @Test
    void messagesInFlightAreBoundedByCount() {
        CoreCluster c = cluster(3, Long.MAX_VALUE, 1);
        RaftNode leader = c.electLeader();
        String f = c.followersOf(leader).get(0).id();
        c.drop = m -> m instanceof AppendEntriesResponse && m.from().equals(f);
        int mark = c.readies.get(leader.id()).size();
        for (int i = 0; i < 10; i++) {
            c.propose(leader, "e" + i);
        }
        assertEquals(3, appendsSent(c, leader.id(), f, mark).size(), "at most 3 unacknowledged messages");
        c.drop = m -> false;
        c.tickUntil(() -> c.node(f).lastIndex() == leader.lastIndex(), 100);
    }

    @Test
    void bytesInFlightAreBounded() {
        CoreCluster c = cluster(100, 3 * (1024 + 48), 1);
        RaftNode leader = c.electLeader();
        String f = c.followersOf(leader).get(0).id();
        c.drop = m -> m instanceof AppendEntriesResponse && m.from().equals(f);
        int mark = c.readies.get(leader.id()).size();
        for (int i = 0; i < 10; i++) {
            leader.propose(new byte[1024]);
            c.deliverAll();
        }
        assertEquals(3, appendsSent(c, leader.id(), f, mark).size(), "3 KiB of 1 KiB entries in flight");
    }

    @Test
    void proposalsArrivingTogetherShareOneMessagePerFollower() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        int mark = c.readies.get(leader.id()).size();
        for (int i = 0; i < 5; i++) {
            assertTrue(leader.propose(("e" + i).getBytes()).accepted());
        }
        c.deliverAll();
        for (RaftNode f : c.followersOf(leader)) {
            List<AppendEntriesRequest> sent = appendsSent(c, leader.id(), f.id(), mark);
            assertEquals(1, sent.size(), "one batch to " + f.id());
            assertEquals(5, sent.get(0).entries().size());
        }
    }

    @Test
    void batchesRespectTheEntriesPerMessageLimit() {
        CoreCluster c = cluster(100, Long.MAX_VALUE, 2);
        RaftNode leader = c.electLeader();
        int mark = c.readies.get(leader.id()).size();
        for (int i = 0; i < 5; i++) {
            leader.propose(("e" + i).getBytes());
        }
        c.deliverAll();
        for (AppendEntriesRequest a : appendsSent(c, leader.id(), c.followersOf(leader).get(0).id(), mark)) {
            assertTrue(a.entries().size() <= 2);
        }
    }

    @Test
    void lostMessagesAreRecoveredByProbing() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        String f = c.followersOf(leader).get(0).id();
        int[] dropped = {0};
        c.drop = m -> {
            if (dropped[0] < 3 && m instanceof AppendEntriesRequest a && a.to().equals(f) && !a.entries().isEmpty()) {
                dropped[0]++;
                return true;
            }
            return false;
        };
        for (int i = 0; i < 6; i++) {
            c.propose(leader, "e" + i);
        }
        c.tickUntil(() -> c.node(f).lastIndex() == leader.lastIndex()
            && c.node(f).commitIndex() == leader.commitIndex(), 100);
        assertEquals(3, dropped[0]);
    }
}
