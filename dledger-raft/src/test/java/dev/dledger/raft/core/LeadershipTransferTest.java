package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LeadershipTransferTest {

    @Test
    void caughtUpTargetGetsTimeoutNowAndWinsTheNextTerm() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode target = c.followersOf(leader).get(1);
        long term = leader.term();
        assertTrue(leader.transferLeadership(target.id()).accepted());
        c.deliverAll();
        assertEquals(Role.LEADER, target.role());
        assertEquals(term + 1, target.term());
        assertEquals(Role.FOLLOWER, leader.role());
        assertEquals(1, c.countDelivered(TimeoutNow.class, target.id()));
    }

    /**
     * The driver's transfer (an operator's, a broker's before it stops, the preferred leader's) is announced first:
     * a proposal sent before its client saw the announcement is taken, not refused as TRANSFERRING.
     */
    @Test
    void anAnnouncedTransferTakesProposalsForAHeartbeatIntervalThenHandsOver() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode target = c.followersOf(leader).get(1);
        long term = leader.term();
        assertTrue(leader.announceTransfer(target.id()).accepted());
        assertEquals(target.id(), leader.leadTransferee(), "announced at once");
        ProposeResult late = leader.propose("sent before the announcement was seen".getBytes());
        assertEquals(ProposeResult.Status.ACCEPTED, late.status());
        c.deliverAll();
        assertEquals(0, c.countDelivered(TimeoutNow.class, target.id()), "no TimeoutNow before a heartbeat interval");
        assertEquals(Role.LEADER, leader.role());

        c.tickUntil(() -> target.role() == Role.LEADER, 20);
        assertEquals(term + 1, target.term());
        assertTrue(c.countDelivered(TimeoutNow.class, target.id()) >= 1, "handed over by TimeoutNow");
        assertTrue(target.lastIndex() > late.index(), "the proposal taken meanwhile is in the new leader's log");
    }

    /**
     * Proposals still on their way from clients let through before the announcement (a broker's sends being put):
     * the transfer waits while the driver says so, and starts once it no longer does.
     */
    @Test
    void anAnnouncedTransferWaitsWhileTheDriverHoldsItForProposalsOnTheirWay() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode target = c.followersOf(leader).get(1);
        assertTrue(leader.announceTransfer(target.id()).accepted());
        leader.setHandOverHeld(true);
        c.tick(6);
        assertEquals(0, c.countDelivered(TimeoutNow.class, target.id()), "held past the heartbeat interval");
        ProposeResult onItsWay = leader.propose("let through before the announcement".getBytes());
        assertEquals(ProposeResult.Status.ACCEPTED, onItsWay.status());
        leader.setHandOverHeld(false);
        c.tickUntil(() -> target.role() == Role.LEADER, 20);
        assertTrue(c.countDelivered(TimeoutNow.class, target.id()) >= 1, "handed over once no longer held");
        assertTrue(target.lastIndex() > onItsWay.index(), "the proposal taken meanwhile is in the new leader's log");
    }

    /** A hold that never ends (a client stuck before its proposal) delays the transfer an election timeout at most. */
    @Test
    void aHeldTransferStartsAfterAnElectionTimeoutAnyway() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode target = c.followersOf(leader).get(1);
        long term = leader.term();
        assertTrue(leader.announceTransfer(target.id()).accepted());
        leader.setHandOverHeld(true);
        c.tick(9);
        assertEquals(0, c.countDelivered(TimeoutNow.class, target.id()), "held within the election timeout");
        c.tickUntil(() -> target.role() == Role.LEADER, 10);
        assertEquals(term + 1, target.term());
    }

    @Test
    void laggingTargetIsCaughtUpBeforeTimeoutNowAndProposalsWaitMeanwhile() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode target = c.followersOf(leader).get(0);
        c.isolated.add(target.id());
        for (int i = 0; i < 5; i++) {
            c.propose(leader, "e" + i);
        }
        assertTrue(target.lastIndex() < leader.lastIndex());
        assertTrue(leader.transferLeadership(target.id()).accepted());
        assertEquals(ProposeResult.Status.TRANSFERRING, leader.propose("late".getBytes()).status());
        c.deliverAll();
        assertEquals(0, c.countDelivered(TimeoutNow.class, target.id()), "not before it caught up");
        c.isolated.clear();
        c.tickUntil(() -> target.role() == Role.LEADER, 20);
        assertEquals(1, c.countDelivered(TimeoutNow.class, target.id()));
        assertEquals(6, target.lastIndex(), "the noop of term 1, five entries, then its own noop");
    }

    @Test
    void transferIsAbandonedAfterAnElectionTimeout() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode target = c.followersOf(leader).get(0);
        c.isolated.add(target.id());
        c.propose(leader, "x");
        leader.transferLeadership(target.id());
        c.tick(11);
        assertEquals(Role.LEADER, leader.role());
        assertTrue(leader.propose("again".getBytes()).accepted(), "proposals are taken again");
    }

    @Test
    void transferToAStrangerIsRefused() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        assertEquals(ProposeResult.Status.UNKNOWN_PEER, leader.transferLeadership("zz").status());
        assertEquals(ProposeResult.Status.NOT_LEADER,
            c.followersOf(leader).get(0).transferLeadership(leader.id()).status());
    }
}
