package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class CommitRuleTest {

    /** a and b hold [1, 2], c holds [1]; all at term 2. a then wins term 3. */
    private static CoreCluster figureEight() {
        CoreCluster c = CoreCluster.ofThree();
        for (String id : List.of("a", "b", "c")) {
            c.logs.put(id, id.equals("c") ? MemoryLog.ofTerms(1) : MemoryLog.ofTerms(1, 2));
            c.hardStates.put(id, new HardState(2, null));
            c.restart(id);
        }
        c.drop = m -> m instanceof AppendEntriesRequest;
        for (int i = 0; i < 40 && c.node("a").role() != Role.LEADER; i++) {
            c.node("a").tick();
            c.deliverAll();
        }
        assertEquals(Role.LEADER, c.node("a").role());
        assertEquals(3, c.node("a").term());
        return c;
    }

    @Test
    void entryOfAnEarlierTermIsNotCommittedByCountingReplicas() {
        CoreCluster c = figureEight();
        RaftNode a = c.node("a");
        // b reports holding index 1 (term 2): a majority (a, b) holds it, yet it is from an earlier term.
        a.step(new AppendEntriesResponse("b", "a", 3, true, 1, -1, -1, -1, 0));
        c.flush();
        assertEquals(-1, a.commitIndex(), "Raft 5.4.2: never commit an earlier term's entry by counting replicas");
        // Once b holds the leader's own no-op (index 2, term 3), both commit together.
        a.step(new AppendEntriesResponse("b", "a", 3, true, 2, -1, -1, -1, 0));
        c.flush();
        assertEquals(2, a.commitIndex());
    }

    @Test
    void leaderCountsItselfOnlyForWhatItPersisted() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        RaftNode f = c.followersOf(leader).get(0);
        ProposeResult r = leader.propose("x".getBytes());
        // The follower acknowledges before the leader handled its Ready: the leader's own copy is not durable yet.
        leader.step(new AppendEntriesResponse(f.id(), leader.id(), leader.term(), true, r.index(), -1, -1, -1, 0));
        assertTrue(leader.commitIndex() < r.index(), "one durable copy of three is not a quorum");
        c.flush();
        assertEquals(r.index(), leader.commitIndex());
    }

    @Test
    void followerCommitNeverPassesWhatTheRequestProvedToMatch() {
        CoreCluster c = CoreCluster.ofThree();
        c.logs.put("a", MemoryLog.ofTerms(1, 1, 1, 1, 1));
        c.hardStates.put("a", new HardState(1, null));
        c.restart("a");
        RaftNode a = c.node("a");
        a.step(new AppendEntriesRequest("b", "a", 2, 1, 1, List.of(), 4, 7));
        c.flush();
        assertEquals(1, a.commitIndex(), "entries 2..4 may be stale: the heartbeat proved a match up to 1 only");
    }
}
