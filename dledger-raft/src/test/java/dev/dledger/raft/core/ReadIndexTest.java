package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ReadIndexTest {

    @Test
    void readIndexWaitsForAQuorumToConfirmLeadership() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        c.propose(leader, "w");
        long committed = leader.commitIndex();
        c.drop = m -> m instanceof AppendEntriesResponse;
        assertTrue(leader.readIndex(7, false).accepted());
        c.deliverAll();
        assertTrue(c.reads.get(leader.id()).isEmpty(), "no quorum acknowledged: no read");
        c.drop = m -> false;
        c.tick(3);
        assertEquals(List.of(new ReadState(7, committed)), c.reads.get(leader.id()));
    }

    @Test
    void leaseReadIsServedAtOnceWhileTheLeaseHolds() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        c.tick(2);
        int before = c.delivered.size();
        leader.readIndex(1, true);
        c.flush();
        assertEquals(1, c.reads.get(leader.id()).size());
        assertEquals(before, c.delivered.size(), "no round trip");
    }

    @Test
    void leaseReadFallsBackToReadIndexWhenTheLeaseLapsed() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        c.drop = m -> m instanceof AppendEntriesResponse;
        for (int i = 0; i < 6; i++) {
            leader.tick();
            c.deliverAll();
        }
        leader.readIndex(2, true);
        c.deliverAll();
        assertTrue(c.reads.get(leader.id()).isEmpty(), "lease of 5 ticks lapsed: a quorum must confirm first");
        c.drop = m -> false;
        c.tick(3);
        assertEquals(1, c.reads.get(leader.id()).size());
    }

    @Test
    void leaseDoesNotOutliveTicksTheDriverSkipped() {
        // A leader whose process stood still (SIGSTOP, a long GC) for longer than an election timeout may have been
        // replaced meanwhile; the driver skips those ticks rather than replaying them, and says so. The lease, still
        // fresh in ticks before, must have lapsed: a lease read then waits for a heartbeat round.
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        c.tick(2);
        leader.skipTicks(40);
        int before = c.delivered.size();
        leader.readIndex(5, true);
        c.flush();
        assertTrue(c.reads.get(leader.id()).isEmpty(), "the lease lapsed while the leader stood still");
        c.deliverAll();
        assertEquals(1, c.reads.get(leader.id()).size(), "confirmed by a heartbeat round sent after the pause");
        assertTrue(c.delivered.size() > before, "a round trip");
        assertEquals(Role.LEADER, leader.role());
    }

    @Test
    void skippedTicksDoNotFireTheTimers() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode follower = c.followersOf(leader).get(0);
        long term = leader.term();
        follower.skipTicks(1_000);
        leader.skipTicks(1_000);
        c.flush();
        assertEquals(Role.FOLLOWER, follower.role(), "no election from skipped ticks");
        assertEquals(Role.LEADER, leader.role());
        assertEquals(term, follower.term());
        assertThrows(IllegalArgumentException.class, () -> leader.skipTicks(-1));
    }

    @Test
    void deposedLeaderThatStillThinksItLeadsCannotConfirmAnyRead() {
        // Without check-quorum nothing makes the cut-off leader step down, and it must not grant itself a lease.
        CoreCluster c = new CoreCluster(id -> RaftConfig.defaults(id).withTimeouts(10, 2)
            .withElectionSafety(true, false), "a", "b", "c");
        RaftNode old = c.electLeader();
        c.isolated.add(old.id());
        c.tickUntil(() -> c.nodes.values().stream().anyMatch(n -> n != old && n.role() == Role.LEADER), 200);
        assertEquals(Role.LEADER, old.role(), "the old leader does not know it was deposed");
        old.readIndex(3, false);
        old.readIndex(4, true);
        c.tick(30);
        assertTrue(c.reads.get(old.id()).isEmpty(), "a deposed leader must not answer reads");
    }

    @Test
    void answersToRequestsOfAnEarlierIncarnationConfirmNoRead() {
        // A leader's broadcast seqs start again from 0 when its process restarts. Requests its earlier incarnation
        // sent in an older term, delayed in the network, reach the followers after the restarted node leads a later
        // term: they answer in their current term, which is the leader's now, and if they echoed the old seqs (above
        // every seq of the new incarnation) a quorum would seem to have confirmed everything the leader sends (the
        // simulation, seed 444006116: a lease read served from a state 7 entries old).
        CoreCluster c = CoreCluster.ofThree();
        RaftNode first = c.electLeader();
        String restarted = first.id();
        c.tick(100);
        List<Message> delayed = new ArrayList<>();
        c.drop = m -> m.from().equals(restarted) && m instanceof AppendEntriesRequest && delayed.add(m);
        c.tick(2);
        assertTrue(delayed.size() >= 2, "heartbeats of the first incarnation held back");
        long oldSeq = ((AppendEntriesRequest) delayed.get(0)).seq();
        c.drop = m -> false;
        c.restart(restarted);
        c.tickUntil(() -> c.leader() != null && c.leader().term() > first.term(), 200);
        RaftNode current = c.leader();
        if (!current.id().equals(restarted)) {
            c.tick(2);
            assertTrue(current.transferLeadership(restarted).accepted());
            c.tickUntil(() -> c.node(restarted).role() == Role.LEADER, 100);
        }
        RaftNode leader = c.node(restarted);
        assertEquals(Role.LEADER, leader.role());
        // From now on the followers' answers to this leadership are lost (its lease lapses); a read waits for them.
        // Then the old requests arrive, and what the followers answer to them gets through.
        c.drop = m -> m instanceof AppendEntriesResponse r && r.seq() < oldSeq;
        c.tick(6);
        leader.readIndex(9, false);
        c.deliverAll();
        c.network.addAll(delayed);
        c.deliverAll();
        leader.readIndex(10, true);
        c.flush();
        assertEquals(Role.LEADER, leader.role());
        assertTrue(c.reads.get(restarted).isEmpty(), "no follower answered this leadership for 6 ticks: no read");
    }

    @Test
    void newLeaderAnswersReadsOnlyAfterItsNoopCommits() {
        CoreCluster c = CoreCluster.ofThree();
        c.drop = m -> m instanceof AppendEntriesRequest a && !a.entries().isEmpty();
        c.tickUntil(() -> c.leader() != null, 200);
        RaftNode leader = c.leader();
        assertTrue(leader.commitIndex() < leader.lastIndex());
        leader.readIndex(5, false);
        c.tick(4);
        assertTrue(c.reads.get(leader.id()).isEmpty(), "the commit index is unknown until the noop commits");
        c.drop = m -> false;
        c.tickUntil(() -> !c.reads.get(leader.id()).isEmpty(), 20);
        assertEquals(leader.lastIndex(), c.reads.get(leader.id()).get(0).index());
    }

    @Test
    void followerRefusesReads() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        ProposeResult r = c.followersOf(leader).get(0).readIndex(1, false);
        assertEquals(ProposeResult.Status.NOT_LEADER, r.status());
        assertEquals(leader.id(), r.leaderHint());
    }
}
