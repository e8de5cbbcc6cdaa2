package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.store.MetaFiles;
import dev.dledger.raft.store.StoreConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The commit index a node knows is on disk after a clean stop, however few entries it committed since the last
 * checkpoint (those are written every 1,024): {@code dledger-migrate export} reads it to stop at the committed end.
 */
class FileNodeStorageCheckpointTest {

    @TempDir
    Path dir;

    @Test
    void cleanStopRecordsTheCommitIndex() {
        StoreConfig cfg = StoreConfig.defaults().withFileSizes(1 << 20, 32 * 1024);
        FileNodeStorage storage = new FileNodeStorage(dir, cfg, FlushMode.SYNC, 0);
        List<Entry> entries = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            entries.add(new Entry(i, 1, EntryType.NORMAL, ("e" + i).getBytes(StandardCharsets.UTF_8)));
        }
        storage.append(entries);
        storage.sync();
        storage.checkpointCommit(7);
        assertEquals(-1, new MetaFiles(dir).readCommitCheckpoint(), "fewer than 1,024 commits: no checkpoint yet");
        storage.close();
        assertEquals(7, new MetaFiles(dir).readCommitCheckpoint());
    }

    @Test
    void checkpointsAreAtLeast1024CommitsAndTheirGapApart() {
        StoreConfig cfg = StoreConfig.defaults().withFileSizes(1 << 20, 32 * 1024);
        FileNodeStorage storage = new FileNodeStorage(dir, cfg, FlushMode.SYNC, 0);
        long[] now = {0};
        storage.clock(() -> now[0]);
        List<Entry> entries = new ArrayList<>();
        for (int i = 0; i < 5000; i++) {
            entries.add(new Entry(i, 1, EntryType.NORMAL, ("e" + i).getBytes(StandardCharsets.UTF_8)));
        }
        storage.append(entries);
        storage.sync();
        MetaFiles meta = new MetaFiles(dir);

        storage.checkpointCommit(1023);
        assertEquals(1023, meta.readCommitCheckpoint(), "the first one at once");
        now[0] += FileNodeStorage.CHECKPOINT_GAP_NANOS - 1;
        storage.checkpointCommit(3000);
        assertEquals(1023, meta.readCommitCheckpoint(), "1,977 more commits, but within the gap");
        now[0] += 1;
        storage.checkpointCommit(3001);
        assertEquals(3001, meta.readCommitCheckpoint(), "the gap over");
        now[0] += 10 * FileNodeStorage.CHECKPOINT_GAP_NANOS;
        storage.checkpointCommit(4000);
        assertEquals(3001, meta.readCommitCheckpoint(), "999 more commits only");
        storage.close();
        assertEquals(4000, new MetaFiles(dir).readCommitCheckpoint(), "a clean stop records the commit index");
    }
}
