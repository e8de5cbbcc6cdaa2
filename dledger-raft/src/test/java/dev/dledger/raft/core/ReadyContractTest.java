package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class ReadyContractTest {

    @Test
    void readyMustBeAdvancedBeforeTheNextOne() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        leader.propose("x".getBytes());
        leader.ready();
        assertThrows(IllegalStateException.class, leader::ready);
    }

    @Test
    void advanceWithoutPersistingIsRefused() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        leader.propose("x".getBytes());
        Ready rd = leader.ready();
        assertThrows(IllegalStateException.class, () -> leader.advance(rd));
    }

    @Test
    void campaignPersistsTermAndSelfVoteInTheReadyThatSendsTheRequests() {
        RaftConfig cfg = RaftConfig.defaults("a").withTimeouts(10, 2).withElectionSafety(false, true);
        RaftNode n = new RaftNode(cfg, new MemoryLog(), InitialState.bootstrap(Membership.of("a", "b", "c")),
            bound -> 0, CoreLog.NONE);
        for (int i = 0; i < 10; i++) {
            n.tick();
        }
        Ready rd = n.ready();
        assertNotNull(rd.hardState());
        assertEquals(new HardState(1, "a"), rd.hardState());
        assertEquals(2, rd.messages().stream().filter(m -> m instanceof VoteRequest).count());
    }

    @Test
    void acknowledgementOfEntriesTravelsWithTheEntriesToPersist() {
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), new MemoryLog(),
            InitialState.bootstrap(Membership.of("a", "b", "c")), bound -> 0, CoreLog.NONE);
        f.step(new AppendEntriesRequest("a", "b", 1, -1, 0, List.of(new Entry(0, 1, EntryType.NOOP, null)), -1, 1));
        Ready rd = f.ready();
        assertEquals(1, rd.entries().size(), "the driver persists these before sending the ack below");
        assertTrue(rd.messages().get(0) instanceof AppendEntriesResponse r && r.success() && r.matchIndex() == 0);
        assertTrue(rd.mustPersist());
    }

    @Test
    void committedEntriesAreOnlyThoseAQuorumStored() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        for (RaftNode f : c.followersOf(leader)) {
            c.isolated.add(f.id());
        }
        c.propose(leader, "x");
        List<Ready> rs = c.readies.get(leader.id());
        assertFalse(rs.stream().anyMatch(r -> r.committedEntries().stream()
            .anyMatch(e -> e.type() == EntryType.NORMAL)), "nothing committed without a quorum");
    }
}
