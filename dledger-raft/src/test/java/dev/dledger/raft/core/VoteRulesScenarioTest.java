package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The voting rules of Raft paper sections 5.2 and 5.4.1, seen from a voter {@code v}: one vote per term, only for a
 * candidate whose log is at least as up to date (last term first, then last index), never for an older term.
 */
class VoteRulesScenarioTest {

    /** A group whose voter {@code v} recovers {@code log} at {@code term} with no vote; nobody leads yet. */
    private static TestCluster voterWith(InMemoryLogView log, long term) {
        TestCluster c = TestCluster.empty(cfg -> cfg);
        Membership voters = Membership.of("v", "x", "y");
        c.add("v", voters, log, new HardState(term, null));
        c.add("x", voters, new InMemoryLogView(), HardState.INITIAL);
        c.add("y", voters, new InMemoryLogView(), HardState.INITIAL);
        return c;
    }

    private static VoteResponse ask(TestCluster c, String candidate, long term, long lastIndex, long lastTerm,
                                    boolean preVote) {
        c.net().take(m -> true);
        c.deliver(new VoteRequest(candidate, "v", term, lastIndex, lastTerm, preVote, false));
        List<VoteResponse> answers = c.net().pending(VoteResponse.class);
        assertTrue(answers.size() <= 1, answers.toString());
        return answers.isEmpty() ? null : answers.get(0);
    }

    @Test
    void grantsAtMostOneVotePerTerm() {
        TestCluster c = voterWith(new InMemoryLogView(), 0);

        assertTrue(ask(c, "x", 1, -1, 0, false).granted());
        VoteResponse second = ask(c, "y", 1, -1, 0, false);

        assertTrue(second == null || !second.granted(), "second vote in term 1: " + second);
        assertEquals("x", c.raft("v").votedFor());
        assertEquals(new HardState(1, "x"), c.node("v").hardState);
    }

    @Test
    void repeatsItsVoteToTheSameCandidate() {
        TestCluster c = voterWith(new InMemoryLogView(), 0);
        assertTrue(ask(c, "x", 1, -1, 0, false).granted());

        VoteResponse again = ask(c, "x", 1, -1, 0, false);

        assertTrue(again.granted(), "a duplicated request gets the same answer");
        assertEquals(new HardState(1, "x"), c.node("v").hardState);
    }

    @Test
    void aNewTermFreesTheVote() {
        TestCluster c = voterWith(new InMemoryLogView(), 0);
        assertTrue(ask(c, "x", 1, -1, 0, false).granted());

        assertTrue(ask(c, "y", 2, -1, 0, false).granted());

        assertEquals(new HardState(2, "y"), c.node("v").hardState);
    }

    @Test
    void rejectsACandidateWhoseLastTermIsOlderEvenIfItsLogIsLonger() {
        TestCluster c = voterWith(new InMemoryLogView().preload(1, 1).preload(2, 1), 2);

        VoteResponse r = ask(c, "x", 3, 50, 1, false);

        assertEquals(new VoteResponse("v", "x", 3, false, false), r);
        assertNull(c.raft("v").votedFor());
        assertEquals(3, c.raft("v").term(), "the term is adopted even though the vote is refused");
    }

    @Test
    void rejectsACandidateWithTheSameLastTermAndAShorterLog() {
        TestCluster c = voterWith(new InMemoryLogView().preload(1, 3), 1);

        assertEquals(false, ask(c, "x", 2, 1, 1, false).granted());
        assertTrue(ask(c, "y", 2, 2, 1, false).granted(), "an equally long log is up to date");
    }

    @Test
    void grantsACandidateWithANewerLastTermEvenIfItsLogIsShorter() {
        TestCluster c = voterWith(new InMemoryLogView().preload(1, 3), 1);

        assertTrue(ask(c, "x", 3, 0, 2, false).granted());
    }

    @Test
    void neverGrantsAVoteForAnOlderTerm() {
        TestCluster c = voterWith(new InMemoryLogView(), 3);

        VoteResponse r = ask(c, "x", 2, 10, 2, false);

        assertTrue(r == null || (!r.granted() && r.term() == 3), String.valueOf(r));
        assertEquals(3, c.raft("v").term());
        assertNull(c.raft("v").votedFor());
    }

    @Test
    void theVoteSurvivesARestart() {
        TestCluster c = voterWith(new InMemoryLogView(), 0);
        assertTrue(ask(c, "x", 1, -1, 0, false).granted());

        c.crash("v");
        c.restart("v");
        VoteResponse r = ask(c, "y", 1, 5, 1, false);

        assertTrue(r == null || !r.granted(), String.valueOf(r));
        assertEquals("x", c.raft("v").votedFor());
    }

    @Test
    void preVoteFollowsTheLogRuleButRecordsNoVote() {
        TestCluster c = voterWith(new InMemoryLogView().preload(1, 2), 1);

        VoteResponse stale = ask(c, "x", 2, 0, 1, true);
        VoteResponse fresh = ask(c, "y", 2, 1, 1, true);

        assertEquals(false, stale.granted());
        assertEquals(new VoteResponse("v", "y", 2, true, true), fresh);
        assertEquals(1, c.raft("v").term());
        assertNull(c.raft("v").votedFor());
        VoteResponse afterPreVotes = ask(c, "x", 2, 1, 1, false);
        assertTrue(afterPreVotes.granted(), "pre-votes did not use up the real vote");
    }
}
