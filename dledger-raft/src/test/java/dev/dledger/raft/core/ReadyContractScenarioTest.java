package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The Ready contract: what a batch carries together (a vote with the response granting it, entries with their
 * acknowledgement, a truncation with the replacing entries), that only quorum-stored entries are handed out as
 * committed, and that advance() must follow each ready().
 */
class ReadyContractScenarioTest {

    private static final int HB = TestCluster.HEARTBEAT_TICKS;

    @Test
    void grantedVoteTravelsInTheReadyThatPersistsIt() {
        TestCluster c = TestCluster.of("a", "b", "c");
        RaftNode b = c.raft("b");

        b.step(new VoteRequest("a", "b", 1, -1, 0, false, false));
        Ready rd = b.ready();

        assertEquals(new HardState(1, "a"), rd.hardState());
        assertEquals(List.of(new VoteResponse("b", "a", 1, true, false)), rd.messages());
        assertTrue(rd.mustPersist());
        c.complete("b", rd);
        assertEquals(new HardState(1, "a"), c.node("b").hardState);
    }

    @Test
    void candidatePersistsItsOwnVoteWithItsVoteRequests() {
        TestCluster c = TestCluster.of(cfg -> cfg.withElectionSafety(false, true), "a", "b", "c");

        c.tick("a", TestCluster.ELECTION_TICKS);

        Ready campaign = c.node("a").readies.stream()
            .filter(rd -> rd.messages().stream().anyMatch(m -> m instanceof VoteRequest)).findFirst().orElseThrow();
        assertEquals(new HardState(1, "a"), campaign.hardState());
        assertEquals(Role.CANDIDATE, campaign.role());
    }

    @Test
    void appendIsAcknowledgedInTheReadyThatPersistsTheEntries() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.propose("a", "x");
        AppendEntriesRequest append = (AppendEntriesRequest) c.net().poll(m -> m instanceof AppendEntriesRequest
            && m.to().equals("b"));
        RaftNode b = c.raft("b");

        b.step(append);
        Ready rd = b.ready();

        assertEquals(append.entries(), rd.entries());
        assertEquals(-1, rd.truncateFrom());
        assertEquals(List.of(new AppendEntriesResponse("b", "a", 1, true, 1, -1, -1, -1, append.seq())),
            rd.messages());
        c.complete("b", rd);
    }

    @Test
    void truncationComesWithTheEntriesThatReplaceTheSuffix() {
        TestCluster c = TestCluster.empty(cfg -> cfg);
        Membership voters = Membership.of("a", "b", "c");
        c.add("a", voters, new InMemoryLogView().preload(1, 1).preload(2, 1), new HardState(2, null));
        c.add("b", voters, new InMemoryLogView().preload(1, 3), new HardState(1, null));
        RaftNode b = c.raft("b");
        Entry replacing = c.node("a").log.entry(1);

        b.step(new AppendEntriesRequest("a", "b", 2, 0, 1, List.of(replacing), -1, 1));
        Ready rd = b.ready();

        assertEquals(1, rd.truncateFrom());
        assertEquals(List.of(replacing), rd.entries());
        assertEquals(new HardState(2, null), rd.hardState());
        c.complete("b", rd);
        assertEquals(List.of(c.node("a").log.entry(0), replacing), c.node("b").log.entries());
    }

    @Test
    void leaderCountsItsOwnEntryOnlyOnceTheDriverPersistedIt() {
        TestCluster c = TestCluster.of("a");
        c.elect("a");
        RaftNode a = c.raft("a");
        assertEquals(0, a.commitIndex());

        a.propose(bytes("x"));
        Ready rd = a.ready();

        assertEquals(1, rd.entries().size());
        assertEquals(0, rd.commitIndex(), "a one-node group still waits for its own disk");
        assertTrue(rd.committedEntries().stream().noneMatch(e -> e.index() == 1));
        c.complete("a", rd);
        assertEquals(1, a.commitIndex());
        assertEquals(List.of("x"), c.node("a").appliedPayloads());
    }

    @Test
    void entryIsHandedOutAsCommittedOnlyOnceAQuorumStoresIt() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.net().isolate("b");
        c.net().isolate("c");

        c.propose("a", "x");
        c.run(TestCluster.ELECTION_TICKS - 3);

        assertTrue(committedIndexes(c, "a").stream().noneMatch(i -> i == 1), "x is on a only");
        c.net().heal();
        c.tick("a", HB);
        c.deliverAll();
        assertTrue(committedIndexes(c, "a").contains(1L));
    }

    @Test
    void committedEntriesOfOneReadyStayWithinMaxApplyBytes() {
        long maxApplyBytes = 200;
        TestCluster c = TestCluster.of(cfg -> new RaftConfig(cfg.id(), cfg.electionTimeoutTicks(),
            cfg.heartbeatTicks(), cfg.preVote(), cfg.checkQuorum(), cfg.leaseTicks(), cfg.maxEntriesPerMessage(),
            cfg.maxBytesPerMessage(), cfg.maxInflightMessages(), cfg.maxInflightBytes(), maxApplyBytes,
            cfg.preferredLeader(), cfg.replicationTimeoutTicks()), "a");
        c.elect("a");
        int readiesBefore = c.node("a").readies.size();
        List<byte[]> batch = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            batch.add(new byte[60]);
        }

        c.on("a", n -> n.propose(batch));

        int withCommitted = 0;
        for (Ready rd : c.node("a").readies.subList(readiesBefore, c.node("a").readies.size())) {
            long bytes = rd.committedEntries().stream().mapToLong(Entry::sizeBytes).sum();
            assertTrue(rd.committedEntries().size() <= 1 || bytes <= maxApplyBytes, bytes + " bytes in one Ready");
            if (!rd.committedEntries().isEmpty()) {
                withCommitted++;
            }
        }
        assertTrue(withCommitted >= 3, "six 108-byte entries need at least three Readys: " + withCommitted);
        assertEquals(6, c.node("a").appliedIndex);
    }

    @Test
    void readyAgainBeforeAdvanceIsRefused() {
        TestCluster c = TestCluster.of("a");
        c.elect("a");
        RaftNode a = c.raft("a");
        a.propose(bytes("x"));
        Ready rd = a.ready();

        assertThrows(IllegalStateException.class, a::ready);
        c.complete("a", rd);
    }

    @Test
    void advanceWithoutAnOutstandingReadyIsRefused() {
        TestCluster c = TestCluster.of("a");
        c.elect("a");
        RaftNode a = c.raft("a");
        a.propose(bytes("x"));
        Ready rd = a.ready();
        c.complete("a", rd);

        assertThrows(IllegalStateException.class, () -> a.advance(rd));
    }

    @Test
    void advanceOfAReadyTheDriverDidNotPersistIsRefused() {
        TestCluster c = TestCluster.of("a");
        c.elect("a");
        RaftNode a = c.raft("a");
        a.propose(bytes("x"));
        Ready rd = a.ready();

        assertThrows(IllegalStateException.class, () -> a.advance(rd), "the log does not hold x");
    }

    private static List<Long> committedIndexes(TestCluster c, String id) {
        List<Long> out = new ArrayList<>();
        for (Ready rd : c.node(id).readies) {
            for (Entry e : rd.committedEntries()) {
                out.add(e.index());
            }
        }
        return out;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
