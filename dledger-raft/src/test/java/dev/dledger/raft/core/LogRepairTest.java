package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class LogRepairTest {

    private static long[] terms(long first, int count, long term) {
        long[] t = new long[count + 1];
        t[0] = first;
        for (int i = 1; i <= count; i++) {
            t[i] = term;
        }
        return t;
    }

    @Test
    void divergentSuffixIsRepairedInAFewRoundTripsNotOnePerEntry() {
        CoreCluster c = CoreCluster.ofThree();
        c.logs.put("a", MemoryLog.ofTerms(terms(1, 60, 3)));
        c.logs.put("b", MemoryLog.ofTerms(terms(1, 60, 2)));
        c.logs.put("c", MemoryLog.ofTerms(1));
        for (String id : List.of("a", "b", "c")) {
            c.hardStates.put(id, new HardState(3, null));
            c.restart(id);
        }
        for (int i = 0; i < 40 && c.node("a").role() != Role.LEADER; i++) {
            c.node("a").tick();
            c.deliverAll();
        }
        assertEquals(Role.LEADER, c.node("a").role());
        c.tickUntil(() -> c.node("b").lastIndex() == c.node("a").lastIndex()
            && c.node("b").commitIndex() == c.node("a").lastIndex(), 50);
        long rejections = c.delivered.stream().filter(m -> m instanceof AppendEntriesResponse r && !r.success()
            && r.from().equals("b")).count();
        assertTrue(rejections <= 2, "60 divergent entries repaired with " + rejections + " rejections");
        MemoryLog a = c.logs.get("a");
        MemoryLog b = c.logs.get("b");
        assertEquals(a.entries, b.entries, "b's log equals the leader's");
    }

    @Test
    void followerReportsTheFirstIndexOfTheConflictingTerm() {
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), MemoryLog.ofTerms(1, 2, 2, 2, 2),
            new InitialState(new HardState(3, null), Membership.of("a", "b", "c"), List.of(), -1, -1),
            bound -> 0, CoreLog.NONE);
        f.step(new AppendEntriesRequest("a", "b", 3, 4, 3, List.of(), -1, 1));
        Ready rd = f.ready();
        AppendEntriesResponse r = (AppendEntriesResponse) rd.messages().get(0);
        f.advance(rd);
        assertEquals(false, r.success());
        assertEquals(2, r.conflictTerm());
        assertEquals(1, r.conflictIndex());
        assertEquals(4, r.rejectedIndex());
    }

    @Test
    void shortFollowerLogReportsItsEnd() {
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), MemoryLog.ofTerms(1, 1),
            new InitialState(new HardState(3, null), Membership.of("a", "b", "c"), List.of(), -1, -1),
            bound -> 0, CoreLog.NONE);
        f.step(new AppendEntriesRequest("a", "b", 3, 9, 3, List.of(), -1, 1));
        Ready rd = f.ready();
        AppendEntriesResponse r = (AppendEntriesResponse) rd.messages().get(0);
        f.advance(rd);
        assertEquals(-1, r.conflictTerm());
        assertEquals(2, r.conflictIndex());
    }
}
