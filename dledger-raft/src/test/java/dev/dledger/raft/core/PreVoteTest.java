package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PreVoteTest {

    @Test
    void isolatedFollowerDoesNotRaiseTheGroupsTerm() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        long term = leader.term();
        RaftNode cut = c.followersOf(leader).get(0);
        c.isolated.add(cut.id());
        c.tick(200);
        assertEquals(term, cut.term(), "pre-vote must keep an isolated node's term");
        assertTrue(cut.role() == Role.PRE_CANDIDATE || cut.role() == Role.FOLLOWER);
        c.isolated.clear();
        c.tick(20);
        assertSame(leader, c.leader(), "the rejoining node must not depose the leader");
        assertEquals(term, leader.term());
    }

    @Test
    void withoutPreVoteAnIsolatedNodeInflatesItsTerm() {
        CoreCluster c = new CoreCluster(id -> RaftConfig.defaults(id).withTimeouts(10, 2)
            .withElectionSafety(false, false), "a", "b", "c");
        RaftNode leader = c.electLeader();
        RaftNode cut = c.followersOf(leader).get(0);
        c.isolated.add(cut.id());
        c.tick(200);
        assertTrue(cut.term() > leader.term() + 3, "control: the term grows with every timeout");
    }

    @Test
    void preVoteRequestsChangeNoReceiversTermOrVote() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode other = c.followersOf(leader).get(1);
        RaftNode asker = c.followersOf(leader).get(0);
        long term = other.term();
        String vote = other.votedFor();
        other.step(new VoteRequest(asker.id(), other.id(), term + 1, 100, term, true, false));
        c.deliverAll();
        assertEquals(term, other.term());
        assertEquals(vote, other.votedFor());
    }
}
