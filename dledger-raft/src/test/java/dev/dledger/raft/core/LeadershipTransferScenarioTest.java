package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Leadership transfer (thesis section 3.10): catch the target up, send it TimeoutNow, let it campaign at once. */
class LeadershipTransferScenarioTest {

    private static final int E = TestCluster.ELECTION_TICKS;
    private static final int HB = TestCluster.HEARTBEAT_TICKS;

    @Test
    void caughtUpTargetGetsTimeoutNowAndWinsThroughAPreVoteRoundDespiteLeaderStickiness() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);

        ProposeResult r = c.on("a", n -> n.transferLeadership("b"));

        assertEquals(ProposeResult.Status.ACCEPTED, r.status());
        assertEquals(List.of(new TimeoutNow("a", "b", 1)), c.net().pending(TimeoutNow.class));
        int base = c.net().sent().size();
        c.deliverAll();

        assertEquals(List.of("b"), c.leaders());
        assertEquals(2, c.raft("b").term());
        List<VoteRequest> campaign = c.net().sent().subList(base, c.net().sent().size()).stream()
            .filter(m -> m instanceof VoteRequest).map(m -> (VoteRequest) m).toList();
        // A pre-vote round first, then the election; both set the voters' lease aside.
        assertEquals(List.of(new VoteRequest("b", "a", 2, 0, 1, true, true),
            new VoteRequest("b", "c", 2, 0, 1, true, true), new VoteRequest("b", "a", 2, 0, 1, false, true),
            new VoteRequest("b", "c", 2, 0, 1, false, true)), campaign);
        assertEquals(Role.FOLLOWER, c.raft("a").role());
        c.run(HB);
        assertEquals("b", c.raft("a").leaderId());
        assertEquals("b", c.raft("c").leaderId());
    }

    @Test
    void laggingTargetIsCaughtUpFirstAndProposalsAreRefusedMeanwhile() {
        TestCluster c = groupWhereBLacksX();

        ProposeResult r = c.on("a", n -> n.transferLeadership("b"));

        assertEquals(ProposeResult.Status.ACCEPTED, r.status());
        assertTrue(c.net().pending(TimeoutNow.class).isEmpty(), "b lacks x: no TimeoutNow yet");
        assertEquals(ProposeResult.Status.TRANSFERRING, c.propose("a", "y").status());
        assertEquals(1, c.raft("a").lastIndex(), "the refused proposal was not appended");

        c.net().heal();
        for (int i = 0; i < E && !c.leaders().equals(List.of("b")); i++) {
            c.run(1);
        }

        assertEquals(List.of("b"), c.leaders());
        List<Message> sent = c.net().sent();
        int timeoutNowAt = -1;
        for (int i = 0; i < sent.size(); i++) {
            if (sent.get(i) instanceof TimeoutNow) {
                timeoutNowAt = i;
                break;
            }
        }
        long lastAckedByB = -1;
        for (Message m : sent.subList(0, timeoutNowAt)) {
            if (m instanceof AppendEntriesResponse ar && ar.from().equals("b") && ar.success()) {
                lastAckedByB = Math.max(lastAckedByB, ar.matchIndex());
            }
        }
        assertEquals(1, lastAckedByB, "TimeoutNow left only once b held a's last entry");
        assertEquals(1, c.node("b").log.term(1), "x made it to the new leader");
    }

    @Test
    void transferThatCannotCompleteIsAbandonedAfterAnElectionTimeout() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.net().isolate("b");
        c.propose("a", "x");
        c.deliverAll();
        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.transferLeadership("b")).status());
        assertEquals(ProposeResult.Status.TRANSFERRING, c.propose("a", "refused").status());

        c.run(E);

        assertEquals(List.of("a"), c.leaders());
        assertEquals(1, c.raft("a").term());
        assertTrue(c.net().sent().stream().noneMatch(m -> m instanceof TimeoutNow));
        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("a", "y").status());
    }

    /**
     * A target caught up late in the transfer's election timeout gets one more for its election (a pre-vote round and
     * a vote round): the leader takes no proposal meanwhile, which would leave the target's log behind and make it
     * lose the election the leader itself started (a term spent, the group without a leader for an election timeout).
     */
    @Test
    void aTargetCaughtUpLateGetsAnElectionTimeoutForItsElection() {
        TestCluster c = groupWhereBLacksX();
        List<Message> timeoutNow = transferToBCaughtUpLate(c);
        c.tick("a", 2);
        assertEquals(ProposeResult.Status.TRANSFERRING, c.propose("a", "during b's election").status(),
            "a took a proposal while the election it handed over ran");

        c.deliver(timeoutNow.get(0));
        c.deliverAll();

        assertEquals(List.of("b"), c.leaders());
        assertEquals(2, c.raft("b").term(), "b won the term the transfer started, no other");
    }

    @Test
    void aTransferWhoseTargetWinsNoElectionIsAbandonedAnElectionTimeoutAfterItsTimeoutNow() {
        TestCluster c = groupWhereBLacksX();
        transferToBCaughtUpLate(c);
        // b never reads its TimeoutNow (its process stands still).
        c.net().isolate("b");

        c.run(E - 1);
        assertEquals(ProposeResult.Status.TRANSFERRING, c.propose("a", "refused").status());
        c.run(1);

        assertEquals(List.of("a"), c.leaders());
        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("a", "y").status(), "a leads on after the transfer");
    }

    /** a leads; b, cut off from a, lacks a's entry x. */
    private static TestCluster groupWhereBLacksX() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.net().cut("a", "b");
        c.propose("a", "x");
        c.deliverAll();
        return c;
    }

    /**
     * a starts a transfer to b; two ticks before its election timeout ends the link heals and b catches up. Returns
     * the TimeoutNow messages a sent (one per answer of b), taken from the network, nothing else left undelivered.
     */
    private static List<Message> transferToBCaughtUpLate(TestCluster c) {
        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.transferLeadership("b")).status());
        c.tick("a", E - 2);
        c.net().heal();
        c.on("a", n -> n.transferLeadership("b"));
        c.deliverWhere(m -> !(m instanceof TimeoutNow));
        List<Message> timeoutNow = c.net().take(m -> m instanceof TimeoutNow);
        assertTrue(!timeoutNow.isEmpty(), "b caught up: TimeoutNow sent");
        return timeoutNow;
    }

    @Test
    void aTimeoutNowThatArrivesAfterTheTransferWasAbandonedDoesNotDeposeTheLeader() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        // b is caught up: TimeoutNow leaves at once, but b's process stands still and reads it only much later.
        c.on("a", n -> n.transferLeadership("b"));
        List<Message> late = c.net().take(m -> m instanceof TimeoutNow);
        assertEquals(1, late.size(), "TimeoutNow sent");
        c.net().isolate("b");
        c.run(E);
        c.net().heal();
        assertEquals(List.of("a"), c.leaders(), "the transfer was given up, a leads on");
        // a appends again once it gave the transfer up; b does not have it yet when it reads the TimeoutNow.
        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("a", "after the transfer").status());
        c.deliverWhere(m -> !m.to().equals("b"));
        long term = c.raft("a").term();

        c.deliver(late.get(0));
        c.deliverWhere(m -> !(m instanceof AppendEntriesRequest) || !m.to().equals("b"));

        // Its pre-vote is rejected (a and c hold a longer log): no term is spent, a is not deposed.
        assertEquals(List.of("a"), c.leaders());
        assertEquals(term, c.raft("a").term());
        assertEquals(term, c.raft("b").term());
        c.run(HB);
        assertEquals("a", c.raft("b").leaderId(), "b follows a again");
    }

    @Test
    void aHeartbeatOfTheLeaderDuringThePreVoteRoundDoesNotEndIt() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.on("a", n -> n.transferLeadership("b"));
        Message timeoutNow = c.net().take(m -> m instanceof TimeoutNow).get(0);
        c.deliver(timeoutNow);
        // No TimeoutNow again: the round it started must complete.
        c.net().dropIf(m -> m instanceof TimeoutNow);
        assertEquals(Role.PRE_CANDIDATE, c.raft("b").role());
        // a's heartbeat reaches b before the answers to b's pre-vote do.
        c.tick("a", HB);
        c.deliverWhere(m -> m instanceof AppendEntriesRequest && m.to().equals("b"));
        assertEquals(Role.PRE_CANDIDATE, c.raft("b").role(), "the heartbeat ended the pre-vote round");

        c.deliverAll();

        assertEquals(List.of("b"), c.leaders());
        assertEquals(2, c.raft("b").term());
    }

    @Test
    void aTimeoutNowSentAgainLeavesTheCampaignItStartedAlone() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.on("a", n -> n.transferLeadership("b"));
        Message timeoutNow = c.net().take(m -> m instanceof TimeoutNow).get(0);
        c.deliver(timeoutNow);
        int asked = c.net().pending(VoteRequest.class).size();
        assertEquals(2, asked, "b asks a and c");

        c.deliver(timeoutNow);

        assertEquals(asked, c.net().pending(VoteRequest.class).size(), "the campaign was started over");
        c.deliverAll();
        assertEquals(List.of("b"), c.leaders());
    }

    @Test
    void transferToANonMemberIsRefused() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");

        ProposeResult r = c.on("a", n -> n.transferLeadership("z"));

        assertEquals(ProposeResult.Status.UNKNOWN_PEER, r.status());
        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("a", "x").status(), "no transfer is in progress");
    }

    @Test
    void followerCannotTransferAndPointsAtTheLeader() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);

        ProposeResult r = c.on("b", n -> n.transferLeadership("c"));

        assertEquals(ProposeResult.Status.NOT_LEADER, r.status());
        assertEquals("a", r.leaderHint());
    }

    @Test
    void timeoutNowOfAnOlderTermIsIgnored() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.on("a", n -> n.transferLeadership("b"));
        c.deliverAll();
        assertEquals(2, c.raft("b").term());

        c.deliver(new TimeoutNow("a", "c", 1));

        assertEquals(Role.FOLLOWER, c.raft("c").role());
        assertEquals(2, c.raft("c").term());
        assertEquals(List.of("b"), c.leaders());
    }
}
