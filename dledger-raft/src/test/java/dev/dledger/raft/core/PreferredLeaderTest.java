package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class PreferredLeaderTest {

    @Test
    void leaderHandsOverToThePreferredNodeOnceItIsCaughtUp() {
        CoreCluster c = new CoreCluster(id -> RaftConfig.defaults(id).withTimeouts(10, 2).withPreferredLeader("c"),
            "a", "b", "c");
        c.isolated.add("c");
        RaftNode first = c.electLeader();
        assertEquals(false, first.id().equals("c"));
        c.isolated.clear();
        c.tickUntil(() -> c.node("c").role() == Role.LEADER, 100);
        c.tick(30);
        assertEquals(Role.LEADER, c.node("c").role(), "the preferred leader keeps leading");
    }

    @Test
    void preferredLeaderThatCannotBeReachedLeavesTheLeaderInPlace() {
        CoreCluster c = new CoreCluster(id -> RaftConfig.defaults(id).withTimeouts(10, 2).withPreferredLeader("c"),
            "a", "b", "c");
        c.isolated.add("c");
        RaftNode leader = c.electLeader();
        c.tick(100);
        assertEquals(Role.LEADER, leader.role());
    }
}
