package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Repairing a follower's log (Raft paper section 5.3): rejections carry the conflict term and index, so that the leader
 * skips a whole term per round trip instead of one index.
 */
class LogRepairScenarioTest {

    private static final Membership VOTERS = Membership.of("a", "b", "c");

    /** Leader-to-be a and its ally c share {@code leaderLog}; b recovers {@code followerLog}. */
    private static TestCluster cluster(InMemoryLogView leaderLog, InMemoryLogView allyLog, long leaderTerm,
                                       InMemoryLogView followerLog, long followerTerm) {
        TestCluster c = TestCluster.empty(cfg -> cfg);
        c.add("a", VOTERS, leaderLog, new HardState(leaderTerm, null));
        c.add("b", VOTERS, followerLog, new HardState(followerTerm, null));
        c.add("c", VOTERS, allyLog, new HardState(leaderTerm, null));
        return c;
    }

    @Test
    void longDivergentSuffixIsRepairedInOneRoundTripPerTermNotPerEntry() {
        TestCluster c = cluster(
            new InMemoryLogView().preload(1, 10).preload(4, 10),
            new InMemoryLogView().preload(1, 10).preload(4, 10), 4,
            new InMemoryLogView().preload(1, 10).preload(2, 50).preload(3, 50), 3);

        c.elect("a");
        c.run(2);

        List<AppendEntriesResponse> rejections = rejectionsFrom(c, "b");
        assertTrue(rejections.size() <= 2, "100 divergent entries in 2 terms, " + rejections.size() + " rejections");
        assertTrue(rejections.size() >= 1, "b's log did conflict");
        assertEquals(c.node("a").log.entries(), c.node("b").log.entries());
        assertEquals(20, c.node("b").log.lastIndex(), "b's 100 divergent entries are gone, the NOOP of term 5 is in");
        assertEquals(20, c.raft("b").commitIndex());
    }

    @Test
    void followerWhoseLogIsTooShortSaysWhereItEnds() {
        TestCluster c = cluster(
            new InMemoryLogView().preload(1, 100),
            new InMemoryLogView().preload(1, 100), 1,
            new InMemoryLogView().preload(1, 5), 1);

        c.elect("a");
        c.run(2);

        List<AppendEntriesResponse> rejections = rejectionsFrom(c, "b");
        assertEquals(1, rejections.size());
        AppendEntriesResponse r = rejections.get(0);
        assertEquals(99, r.rejectedIndex(), "the probe's prevLogIndex");
        assertEquals(-1, r.conflictTerm(), "b has no entry at 99");
        assertEquals(5, r.conflictIndex(), "b's last index + 1");
        assertEquals(c.node("a").log.entries(), c.node("b").log.entries());
    }

    @Test
    void rejectionNamesTheFollowersTermAtTheProbeAndWhereThatTermStarts() {
        TestCluster c = cluster(
            new InMemoryLogView().preload(1, 10).preload(3, 5),
            new InMemoryLogView().preload(1, 10).preload(3, 5), 3,
            new InMemoryLogView().preload(1, 10).preload(2, 20), 2);

        c.elect("a");

        AppendEntriesResponse r = rejectionsFrom(c, "b").get(0);
        assertEquals(14, r.rejectedIndex());
        assertEquals(2, r.conflictTerm(), "b's entry 14 is of term 2");
        assertEquals(10, r.conflictIndex(), "b's term 2 starts at 10");
        assertEquals(1, rejectionsFrom(c, "b").size());
        assertEquals(c.node("a").log.entries(), c.node("b").log.entries());
    }

    @Test
    void suffixSpanningSeveralTermsNeedsAtMostOneRoundTripPerTerm() {
        TestCluster c = cluster(
            new InMemoryLogView().preload(1, 10).preload(6, 40),
            new InMemoryLogView().preload(1, 10).preload(6, 40), 6,
            new InMemoryLogView().preload(1, 10).preload(2, 10).preload(3, 10).preload(5, 10), 5);

        c.elect("a");
        c.run(2);

        int rejections = rejectionsFrom(c, "b").size();
        assertTrue(rejections <= 4, "30 divergent entries in 3 terms, plus a short log: " + rejections);
        assertEquals(c.node("a").log.entries(), c.node("b").log.entries());
    }

    @Test
    void leaderThatHoldsTheConflictTermResumesAfterItsOwnEntriesOfThatTerm() {
        TestCluster c = cluster(
            new InMemoryLogView().preload(1, 10).preload(2, 20).preload(4, 5),
            new InMemoryLogView().preload(1, 10).preload(2, 20).preload(4, 5), 4,
            new InMemoryLogView().preload(1, 10).preload(2, 40).preload(3, 30), 3);

        c.elect("a");
        c.run(2);

        assertTrue(rejectionsFrom(c, "b").size() <= 2, rejectionsFrom(c, "b").toString());
        assertEquals(c.node("a").log.entries(), c.node("b").log.entries());
    }

    @Test
    void staleRejectionDoesNotMoveTheLeaderBackwards() {
        TestCluster c = cluster(
            new InMemoryLogView().preload(1, 10),
            new InMemoryLogView().preload(1, 10), 1,
            new InMemoryLogView().preload(1, 10), 1);
        c.elect("a");
        c.run(2);
        long match = ReplicationFlowControlScenarioTest.progress(c, "b").matchIndex();
        assertEquals(10, match);

        // A rejection of an old probe at index 3 arrives late (delayed in the network).
        c.deliver(new AppendEntriesResponse("b", "a", 2, false, -1, 3, 0, -1, 0));
        c.deliverAll();

        assertEquals(match, ReplicationFlowControlScenarioTest.progress(c, "b").matchIndex());
        assertEquals(10, c.node("b").log.lastIndex());
        assertEquals(List.of("a"), c.leaders());
    }

    @Test
    void reorderedAndDuplicatedAppendsNeverTruncateMatchingEntries() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(2);
        c.propose("a", "p1");
        Message first = c.net().poll(m -> m instanceof AppendEntriesRequest && m.to().equals("b"));
        c.propose("a", "p2");
        Message second = c.net().poll(m -> m instanceof AppendEntriesRequest && m.to().equals("b"));
        int readiesBefore = c.node("b").readies.size();

        c.deliver(second);
        c.deliver(first);
        c.deliverAll();
        c.deliver(first);
        c.deliver(second);
        c.deliver(first);

        assertEquals(List.of("p1", "p2"), c.node("b").log.entries().subList(1, 3).stream()
            .map(e -> new String(e.data(), StandardCharsets.UTF_8)).toList());
        for (Ready rd : c.node("b").readies.subList(readiesBefore, c.node("b").readies.size())) {
            assertEquals(-1, rd.truncateFrom(), "an entry that matches is never removed (figure 2, step 3)");
        }
        c.run(2);
        assertEquals(List.of("p1", "p2"), c.node("b").appliedPayloads());
    }

    @Test
    void followerRejectsAppendFromStaleTerm() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(2);
        c.on("a", n -> n.transferLeadership("b"));
        c.deliverAll();
        assertEquals(2, c.raft("b").term());
        List<Entry> before = c.node("c").log.entries();

        c.deliver(new AppendEntriesRequest("a", "c", 1, 0, 1, List.of(new Entry(1, 1, EntryType.NORMAL, null)), 0, 9));

        assertEquals(before, c.node("c").log.entries());
        List<AppendEntriesResponse> answers = c.net().pending(AppendEntriesResponse.class);
        assertEquals(1, answers.size());
        assertEquals(false, answers.get(0).success());
        assertEquals(2, answers.get(0).term(), "the stale leader learns the current term");
    }

    private static List<AppendEntriesResponse> rejectionsFrom(TestCluster c, String from) {
        return c.net().sent().stream().filter(m -> m instanceof AppendEntriesResponse ar && !ar.success()
            && ar.from().equals(from)).map(m -> (AppendEntriesResponse) m).toList();
    }
}
