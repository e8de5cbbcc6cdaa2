package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class VoteRulesTest {

    private static RaftNode follower(MemoryLog log) {
        RaftConfig cfg = RaftConfig.defaults("v").withTimeouts(10, 2);
        return new RaftNode(cfg, log, new InitialState(new HardState(3, null), Membership.of("v", "x", "y"),
            List.of(), -1, -1), bound -> 0, CoreLog.NONE);
    }

    private static VoteResponse answer(RaftNode n, VoteRequest req) {
        n.step(req);
        Ready rd = n.ready();
        n.advance(rd);
        return (VoteResponse) rd.messages().get(0);
    }

    @Test
    void voteIsDeniedToACandidateWithAnOlderLastTerm() {
        RaftNode v = follower(MemoryLog.ofTerms(1, 2, 3));
        assertFalse(answer(v, new VoteRequest("x", "v", 4, 10, 2, false, false)).granted());
    }

    @Test
    void voteIsDeniedToACandidateWithTheSameLastTermButAShorterLog() {
        RaftNode v = follower(MemoryLog.ofTerms(1, 2, 3, 3));
        assertFalse(answer(v, new VoteRequest("x", "v", 4, 2, 3, false, false)).granted());
    }

    @Test
    void voteIsGrantedToAnUpToDateCandidateAndPersistedWithTheAnswer() {
        RaftNode v = follower(MemoryLog.ofTerms(1, 2, 3));
        v.step(new VoteRequest("x", "v", 4, 2, 3, false, false));
        Ready rd = v.ready();
        assertNotNull(rd.hardState(), "the vote must be in the Ready that carries the answer");
        assertEquals(new HardState(4, "x"), rd.hardState());
        assertTrue(((VoteResponse) rd.messages().get(0)).granted());
        v.advance(rd);
    }

    @Test
    void onlyOneVotePerTerm() {
        RaftNode v = follower(MemoryLog.ofTerms(1));
        assertTrue(answer(v, new VoteRequest("x", "v", 4, 0, 1, false, false)).granted());
        assertFalse(answer(v, new VoteRequest("y", "v", 4, 5, 1, false, false)).granted());
        assertTrue(answer(v, new VoteRequest("x", "v", 4, 0, 1, false, false)).granted(), "repeat to the same");
    }

    /**
     * Liveness without pre-vote: a candidate that could not vote for a strictly more up-to-date candidate of its term
     * leaves the next term to it. It waits longer than that candidate's longest election timeout (twice the election
     * timeout here, the random part being 0), and its vote of the term stays its own.
     */
    @Test
    void aCandidateBehindWaitsLongerThanTheMoreUpToDateCandidateOfItsTerm() {
        RaftConfig cfg = RaftConfig.defaults("v").withTimeouts(10, 2).withElectionSafety(false, true);
        RaftNode v = new RaftNode(cfg, MemoryLog.ofTerms(1, 2, 3), new InitialState(new HardState(3, null),
            Membership.of("v", "x", "y"), List.of(), -1, -1), bound -> 0, CoreLog.NONE);
        for (int i = 0; i < 10; i++) {
            v.tick();
        }
        assertEquals(Role.CANDIDATE, v.role());
        assertEquals(4, v.term());
        v.advance(v.ready());

        assertFalse(answer(v, new VoteRequest("x", "v", 4, 5, 3, false, false)).granted(), "voted for itself");
        for (int i = 0; i < 19; i++) {
            v.tick();
        }
        Ready rd = v.ready();
        assertEquals(4, v.term(), "no campaign within twice the election timeout of the request");
        assertTrue(rd.messages().stream().noneMatch(m -> m instanceof VoteRequest), rd.messages().toString());
        v.advance(rd);
        v.tick();
        assertEquals(5, v.term(), "campaigns again once it waited that long");
        v.advance(v.ready());

        // The other candidate's next term comes first in practice: the vote goes to it.
        VoteRequest next = new VoteRequest("x", "v", 6, 5, 3, false, false);
        assertTrue(answer(v, next).granted());
        assertEquals(Role.FOLLOWER, v.role());
    }

    @Test
    void staleTermVoteRequestIsNotGranted() {
        RaftNode v = follower(MemoryLog.ofTerms(1));
        v.step(new VoteRequest("x", "v", 2, 9, 2, false, false));
        Ready rd = v.ready();
        assertTrue(rd.messages().stream().noneMatch(m -> m instanceof VoteResponse r && r.granted()));
        assertEquals(3, v.term());
        v.advance(rd);
    }
}
