package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class InstallSnapshotTest {

    @Test
    void followerBehindTheCompactedLogGetsASnapshotThenEntries() {
        CoreCluster c = CoreCluster.ofThree();
        RaftNode leader = c.electLeader();
        String lagging = c.followersOf(leader).get(0).id();
        c.isolated.add(lagging);
        for (int i = 0; i < 20; i++) {
            c.propose(leader, "e" + i);
        }
        long at = leader.commitIndex() - 2;
        c.logs.get(leader.id()).compact(new SnapshotMeta(at, leader.term(), leader.membershipAt(at)));
        c.isolated.clear();
        c.tickUntil(() -> c.node(lagging).lastIndex() == leader.lastIndex()
            && c.node(lagging).commitIndex() == leader.commitIndex(), 50);
        assertEquals(1, c.countDelivered(InstallSnapshotRequest.class, lagging));
        assertEquals(at, c.logs.get(lagging).snapshot().index());
        assertEquals(c.logs.get(leader.id()).entries, c.logs.get(lagging).entries);
    }

    @Test
    void snapshotAlreadyCoveredByTheLogOnlyAdvancesTheCommitIndex() {
        MemoryLog log = MemoryLog.ofTerms(1, 1, 1, 1);
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), log,
            new InitialState(new HardState(1, null), Membership.of("a", "b", "c"), List.of(), -1, -1), bound -> 0,
            CoreLog.NONE);
        f.step(new InstallSnapshotRequest("a", "b", 1, new SnapshotMeta(2, 1, Membership.of("a", "b", "c")), 1,
            new byte[] {9}));
        Ready rd = f.ready();
        assertNull(rd.snapshot(), "nothing to install");
        assertEquals(2, rd.commitIndex());
        assertEquals(2, ((InstallSnapshotResponse) rd.messages().get(0)).matchIndex());
    }

    @Test
    void snapshotRequestWithoutItsBytesIsADriverError() {
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), new MemoryLog(),
            InitialState.bootstrap(Membership.of("a", "b", "c")), bound -> 0, CoreLog.NONE);
        assertThrows(IllegalArgumentException.class, () -> f.step(new InstallSnapshotRequest("a", "b", 1,
            new SnapshotMeta(5, 1, Membership.of("a", "b", "c")), 1, null)));
    }

    @Test
    void installedSnapshotResetsLogCommitAndMembership() {
        MemoryLog log = MemoryLog.ofTerms(1, 1);
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), log,
            new InitialState(new HardState(1, null), Membership.of("a", "b", "c"), List.of(), -1, -1), bound -> 0,
            CoreLog.NONE);
        SnapshotMeta snap = new SnapshotMeta(10, 2, Membership.of("a", "b", "c", "d"));
        f.step(new InstallSnapshotRequest("a", "b", 2, snap, 1, new byte[] {9}));
        Ready rd = f.ready();
        assertEquals(snap, rd.snapshot());
        assertTrue(rd.committedEntries().isEmpty(), "the snapshot is the state; nothing to replay");
        log.install(rd.snapshot());
        f.advance(rd);
        assertEquals(10, f.commitIndex());
        assertEquals(10, f.appliedIndex());
        assertEquals(Membership.of("a", "b", "c", "d"), f.membership());
    }
}
