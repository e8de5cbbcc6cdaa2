package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class CheckQuorumTest {

    @Test
    void leaderCutOffFromTheMajorityStepsDownWithinAnElectionTimeout() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        long term = leader.term();
        for (RaftNode f : c.followersOf(leader)) {
            c.isolated.add(f.id());
        }
        int ticks = 0;
        while (leader.role() == Role.LEADER && ticks < 100) {
            leader.tick();
            c.deliverAll();
            ticks++;
        }
        assertEquals(Role.FOLLOWER, leader.role());
        assertTrue(ticks <= 10, "stepped down after " + ticks + " ticks, election timeout is 10");
        assertEquals(term, leader.term(), "stepping down does not change the term");
    }

    @Test
    void aLeaderThatStoodStillShorterThanAnElectionTimeoutLeadsOn() {
        // Its process stood still for 9 ticks (a GC pause) right after a heartbeat round; the followers, which heard
        // that round, ran 9 ticks without news, short of their election timeout (10). Counting the pause as silence,
        // the leader stepped down at its first tick after it.
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        long term = leader.term();
        c.tick(3);
        leader.skipTicks(9);
        for (RaftNode f : c.followersOf(leader)) {
            for (int i = 0; i < 9; i++) {
                f.tick();
            }
        }
        c.tick();
        assertEquals(Role.LEADER, leader.role(), "stepped down at its first tick after the pause");
        c.tick(30);
        assertEquals(Role.LEADER, leader.role());
        assertEquals(term, leader.term());
    }

    @Test
    void aLeaderThatStoodStillAndHearsNothingAfterStepsDownAnElectionTimeoutLater() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        c.tick(3);
        leader.skipTicks(40);
        for (RaftNode f : c.followersOf(leader)) {
            c.isolated.add(f.id());
        }
        int ticks = 0;
        while (leader.role() == Role.LEADER && ticks < 100) {
            leader.tick();
            c.deliverAll();
            ticks++;
        }
        assertEquals(Role.FOLLOWER, leader.role());
        assertTrue(ticks > 1 && ticks <= 10, "stepped down " + ticks + " ticks after the pause, election timeout 10");
    }

    @Test
    void followerThatHearsFromItsLeaderIgnoresVoteRequests() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode f = c.followersOf(leader).get(0);
        long term = f.term();
        int before = c.readies.get(f.id()).size();
        f.step(new VoteRequest("c".equals(f.id()) ? "b" : "c", f.id(), term + 5, 1000, term + 4, false, false));
        c.flush();
        assertEquals(term, f.term(), "a vote request in the lease must not raise the term");
        List<Ready> after = c.readies.get(f.id()).subList(before, c.readies.get(f.id()).size());
        assertTrue(after.stream().allMatch(r -> r.messages().isEmpty()), "ignored, not answered");
    }

    @Test
    void leadershipTransferVoteIsHonouredInsideTheLease() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode f = c.followersOf(leader).get(0);
        long term = f.term();
        f.step(new VoteRequest(c.followersOf(leader).get(1).id(), f.id(), term + 1, 1000, term, false, true));
        assertEquals(term + 1, f.term());
    }
}
