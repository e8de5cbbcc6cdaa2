package dev.dledger.raft.sim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;

import java.util.List;
import org.junit.jupiter.api.Test;

class SimulatedLogStoreTest {

    private static Entry entry(long index, long term) {
        return new Entry(index, term, EntryType.NORMAL, new byte[] {(byte) index});
    }

    @Test
    void freshLogIsEmptyWithTermZeroBeforeTheFirstIndex() {
        SimulatedLogStore log = new SimulatedLogStore();
        assertEquals(0, log.firstIndex());
        assertEquals(-1, log.lastIndex());
        assertEquals(0, log.term(-1));
        assertEquals(-1, log.term(0));
    }

    @Test
    void crashLosesWhatWasNotSynced() {
        SimulatedLogStore log = new SimulatedLogStore();
        log.append(List.of(entry(0, 1), entry(1, 1)));
        log.sync();
        log.append(List.of(entry(2, 1), entry(3, 1)));
        assertEquals(3, log.lastIndex());
        log.crash(0);
        assertEquals(1, log.lastIndex());
    }

    @Test
    void tornWriteKeepsAPrefixOfThePendingWrites() {
        SimulatedLogStore log = new SimulatedLogStore();
        log.append(List.of(entry(0, 1), entry(1, 1), entry(2, 1)));
        log.sync();
        log.truncateFrom(1);
        log.append(List.of(entry(1, 2), entry(2, 2), entry(3, 2)));
        log.crash(2);
        assertEquals(1, log.lastIndex());
        assertEquals(2, log.term(1));
        assertEquals(1, log.durableLastIndex());
    }

    @Test
    void compactionKeepsTheSuffixAndTheSnapshotTerm() {
        SimulatedLogStore log = new SimulatedLogStore();
        log.append(List.of(entry(0, 1), entry(1, 1), entry(2, 2), entry(3, 2)));
        log.compactTo(new SnapshotMeta(1, 1, Membership.of("a")));
        log.sync();
        assertEquals(2, log.firstIndex());
        assertEquals(3, log.lastIndex());
        assertEquals(1, log.term(1));
        assertEquals(-1, log.term(0));
        assertEquals(1, log.entries(2, 4, 1).size());
        assertThrows(IllegalArgumentException.class, () -> log.entries(1, 3, 100));
    }

    @Test
    void installedSnapshotEmptiesTheLog() {
        SimulatedLogStore log = new SimulatedLogStore();
        log.append(List.of(entry(0, 1), entry(1, 1)));
        log.installSnapshot(new SnapshotMeta(5, 3, Membership.of("a")));
        log.sync();
        assertEquals(6, log.firstIndex());
        assertEquals(5, log.lastIndex());
        assertEquals(3, log.term(5));
    }

    @Test
    void metaStoreCrashKeepsOldOrNewValueOnly() {
        SimulatedMetaStore meta = new SimulatedMetaStore();
        meta.write(new HardState(3, "a"));
        meta.sync();
        meta.write(new HardState(4, null));
        meta.crash(false);
        assertEquals(new HardState(3, "a"), meta.hardState());
        meta.write(new HardState(4, "b"));
        meta.crash(true);
        assertEquals(new HardState(4, "b"), meta.durableHardState());
    }
}
