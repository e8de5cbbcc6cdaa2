package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.statemachine.KeyValueStateMachine;
import dev.dledger.raft.store.StoreConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A store compacted by retention holds no state-machine snapshot, only where its log goes on: a node restarting on
 * it starts its state machine empty at the compaction instead of handing it that position record (issue 16, B6).
 */
class RetentionRestartTest {

    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(4096, 32 * 64);

    @TempDir
    Path dir;

    private final ScriptedTransport transport = new ScriptedTransport();
    private RaftGroupNode node;

    @AfterEach
    void close() {
        if (node != null) {
            transport.onThread(node::close);
        }
    }

    @Test
    void aKeyValueNodeRestartsOnAStoreCompactedByRetention() {
        FileNodeStorage storage = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        List<Entry> entries = new ArrayList<>();
        for (long i = 0; i < 200; i++) {
            entries.add(new Entry(i, 1, EntryType.NORMAL, KeyValueStateMachine.set("k" + i, "v" + i)));
        }
        storage.append(entries);
        storage.sync();
        // What retention does: the log's prefix goes, and no snapshot file is written.
        storage.store().compactPrefix(new SnapshotMeta(99, 1, Membership.of("n0")));
        storage.close();

        FileNodeStorage reopened = new FileNodeStorage(dir, CONFIG, FlushMode.SYNC, 0);
        KeyValueStateMachine machine = new KeyValueStateMachine();
        node = new RaftGroupNode(NodeOptions.defaults("g", "n0"), Membership.of("n0"), reopened, machine, transport);
        transport.runTasks();
        assertFalse(node.status().failed(), "the node started");
        assertEquals(99, reopened.log().snapshot().index());
    }
}
