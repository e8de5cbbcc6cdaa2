package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
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

    /**
     * A follower acknowledges entries of term 1, then, before that Ready is handed out, a leader of term 2 cuts them
     * from its log: the Ready persists the term-2 log, so the term-1 acknowledgement would vouch for entries the follower no
     * longer holds (the term-1 leader could count it toward a commit). It is not in the Ready; the term-2 one is.
     */
    @Test
    void anAcknowledgementOfEntriesCutInTheSameReadyIsNotSent() {
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), new MemoryLog(),
            InitialState.bootstrap(Membership.of("a", "b", "c")), bound -> 0, CoreLog.NONE);
        f.step(new AppendEntriesRequest("a", "b", 1, -1, 0, List.of(new Entry(0, 1, EntryType.NOOP, null),
            new Entry(1, 1, EntryType.NORMAL, "x".getBytes()), new Entry(2, 1, EntryType.NORMAL, "y".getBytes())),
            -1, 1));
        f.step(new AppendEntriesRequest("c", "b", 2, 0, 1, List.of(new Entry(1, 2, EntryType.NOOP, null)), -1, 1));
        Ready rd = f.ready();
        Entry last = rd.entries().get(rd.entries().size() - 1);
        assertEquals(List.of(1L, 2L), List.of(last.index(), last.term()), "the term-2 leader's entry replaces index 1");
        List<AppendEntriesResponse> acks = rd.messages().stream().filter(m -> m instanceof AppendEntriesResponse)
            .map(m -> (AppendEntriesResponse) m).toList();
        assertFalse(acks.stream().anyMatch(r -> r.term() == 1), "a term-1 acknowledgement of the cut entries: " + acks);
        assertTrue(acks.stream().anyMatch(r -> r.term() == 2 && r.success() && r.matchIndex() == 1), acks.toString());
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

    /** Records the steps {@link ReadyHandler#handle} calls, writing the log as a driver would. */
    private static final class RecordingHandler implements ReadyHandler {
        final List<String> steps = new ArrayList<>();
        final MemoryLog log;
        String failAt;

        RecordingHandler(MemoryLog log) {
            this.log = log;
        }

        private void step(String name) {
            steps.add(name);
            if (name.equals(failAt)) {
                throw new IllegalStateException("disk failed at " + name);
            }
        }

        @Override
        public void begin(Ready rd) {
            step("begin");
        }

        @Override
        public void saveHardState(HardState hardState) {
            step("hardState");
        }

        @Override
        public void installSnapshot(SnapshotMeta snapshot) {
            step("snapshot");
        }

        @Override
        public void truncateFrom(long index) {
            step("truncate");
            log.truncateFrom(index);
        }

        @Override
        public void append(List<Entry> entries) {
            step("append");
            log.append(entries);
        }

        @Override
        public void persisted(Ready rd) {
            step("persisted");
        }

        @Override
        public void send(Message message) {
            step("send");
        }

        @Override
        public void apply(List<Entry> committed) {
            // Only what this log now holds is applied.
            assertTrue(committed.get(committed.size() - 1).index() <= log.lastIndex(), "apply before append");
            step("apply");
        }

        @Override
        public void readsConfirmed(List<ReadState> reads) {
            step("reads");
        }

        @Override
        public void advanced(Ready rd) {
            step("advanced");
        }
    }

    @Test
    void theSequencePersistsThenSendsThenAppliesThenAdvances() {
        MemoryLog log = new MemoryLog();
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), log,
            InitialState.bootstrap(Membership.of("a", "b", "c")), bound -> 0, CoreLog.NONE);
        f.step(new AppendEntriesRequest("a", "b", 1, -1, 0, List.of(new Entry(0, 1, EntryType.NOOP, null),
            new Entry(1, 1, EntryType.NORMAL, "x".getBytes())), 0, 1));
        RecordingHandler h = new RecordingHandler(log);
        ReadyHandler.handle(f, f.ready(), h, true);
        assertEquals(List.of("begin", "hardState", "append", "persisted", "send", "apply", "advanced"), h.steps,
            "a new term, entries, their acknowledgement and the committed entries, in the contract's order");
        assertFalse(f.hasReady(), "advanced past the batch");
        f.step(new AppendEntriesRequest("c", "b", 2, 0, 1, List.of(new Entry(1, 2, EntryType.NOOP, null)), 0, 1));
        RecordingHandler cut = new RecordingHandler(log);
        ReadyHandler.handle(f, f.ready(), cut, true);
        assertEquals(List.of("begin", "hardState", "truncate", "append", "persisted", "send", "advanced"), cut.steps,
            "a conflicting suffix goes before the new entries, and nothing is sent before both");
    }

    @Test
    void aStepThatFailsStopsTheSequenceAndTheCoreIsNotAdvanced() {
        MemoryLog log = new MemoryLog();
        RaftNode f = new RaftNode(RaftConfig.defaults("b").withTimeouts(10, 2), log,
            InitialState.bootstrap(Membership.of("a", "b", "c")), bound -> 0, CoreLog.NONE);
        f.step(new AppendEntriesRequest("a", "b", 1, -1, 0, List.of(new Entry(0, 1, EntryType.NOOP, null)), -1, 1));
        RecordingHandler h = new RecordingHandler(log);
        h.failAt = "append";
        Ready rd = f.ready();
        assertThrows(IllegalStateException.class, () -> ReadyHandler.handle(f, rd, h, true));
        assertEquals(List.of("begin", "hardState", "append"), h.steps, "no acknowledgement left after the failure");
        assertThrows(IllegalStateException.class, f::ready, "the batch is still outstanding: the core was not advanced");
    }
}
