package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ElectionTest {

    @Test
    void singleNodeElectsItselfAndCommitsItsNoop() {
        CoreCluster c = new CoreCluster(id -> RaftConfig.defaults(id).withTimeouts(10, 2), "solo");
        RaftNode n = c.electLeader();
        assertEquals("solo", n.id());
        assertEquals(1, n.term());
        assertEquals(0, n.commitIndex());
        assertEquals(EntryType.NOOP, c.applied.get("solo").get(0).type());
    }

    @Test
    void threeNodesElectExactlyOneLeaderAndTheOthersFollowIt() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        long leaders = c.nodes.values().stream().filter(n -> n.role() == Role.LEADER).count();
        assertEquals(1, leaders);
        for (RaftNode f : c.followersOf(leader)) {
            assertEquals(Role.FOLLOWER, f.role());
            assertEquals(leader.id(), f.leaderId());
            assertEquals(leader.term(), f.term());
        }
    }

    @Test
    void electionTimeoutIsDrawnFromTheRandomSourceWithinOneToTwoTimeouts() {
        int[] drawn = new int[1];
        RandomSource scripted = bound -> {
            drawn[0] = bound - 1;
            return bound - 1;
        };
        RaftConfig cfg = RaftConfig.defaults("a").withTimeouts(10, 2);
        RaftNode n = new RaftNode(cfg, new MemoryLog(), InitialState.bootstrap(Membership.of("a", "b", "c")),
            scripted, CoreLog.NONE);
        assertEquals(9, drawn[0]);
        for (int i = 0; i < 18; i++) {
            n.tick();
            assertEquals(Role.FOLLOWER, n.role(), "campaigned early at tick " + (i + 1));
        }
        n.tick();
        assertEquals(Role.PRE_CANDIDATE, n.role(), "must campaign at 10 + 9 ticks");
    }

    @Test
    void newLeaderAppendsANoopOfItsTermAndFollowersApplyIt() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        c.tick(3);
        for (String id : c.nodes.keySet()) {
            List<Entry> applied = c.applied.get(id);
            assertEquals(1, applied.size(), id);
            assertEquals(new Entry(0, leader.term(), EntryType.NOOP, null), applied.get(0));
        }
    }

    @Test
    void deadLeaderIsReplacedWithAHigherTerm() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode old = c.electLeader();
        c.isolated.add(old.id());
        c.tickUntil(() -> c.nodes.values().stream()
            .anyMatch(n -> n != old && n.role() == Role.LEADER), 200);
        RaftNode next = c.nodes.values().stream().filter(n -> n != old && n.role() == Role.LEADER).findFirst()
            .orElseThrow();
        assertTrue(next.term() > old.term());
        assertNotNull(next);
    }

    @Test
    void restartedFollowerKeepsTermAndVote() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        String f = c.followersOf(leader).get(0).id();
        long term = c.node(f).term();
        String vote = c.node(f).votedFor();
        c.restart(f);
        assertEquals(term, c.node(f).term());
        assertEquals(vote, c.node(f).votedFor());
    }
}
