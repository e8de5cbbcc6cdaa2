package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.raft.core.AppendEntriesRequest;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A node added to a group starts with no configuration, and the group's first configuration is no entry of the log:
 * caught up by entries from the start, it knows no configuration before the first configuration entry it receives. It
 * must not snapshot there: the snapshot would carry an empty membership to every node that installs it (the
 * simulation, seeds 222001456 and 222001524: a witness took it for its promotion's snapshot, and a restart from such a
 * snapshot counts no voter until a later configuration entry is appended again).
 */
class AddedNodeSnapshotTest {

    private static final Membership WITH_N3 = Membership.of("n0", "n1", "n2", "n3");

    private final ScriptedTransport transport = new ScriptedTransport();
    private final MemoryNodeStorage storage = new MemoryNodeStorage();
    private RaftGroupNode node;

    @AfterEach
    void close() {
        if (node != null) {
            transport.onThread(node::close);
        }
    }

    private static List<Entry> entries(long from, long to) {
        List<Entry> list = new ArrayList<>();
        for (long i = from; i <= to; i++) {
            list.add(new Entry(i, 1, EntryType.NORMAL, ("entry " + i).getBytes(StandardCharsets.UTF_8)));
        }
        return list;
    }

    @Test
    void anAddedNodeSnapshotsOnlyWhereItKnowsTheConfiguration() {
        node = new RaftGroupNode(NodeOptions.defaults("g", "n3").withSnapshotThreshold(2), Membership.EMPTY, storage,
            new SnapshotInstallBindingTest.RestoreRecorder(), transport);
        transport.runTasks();
        // The leader catches n3 up from the start of its log: entries 0 to 9 precede the entry that added n3.
        transport.deliver(new AppendEntriesRequest("n0", "n3", 1, -1, 0, entries(0, 9), 9, 1));
        transport.runTasks();
        assertEquals(9, node.status().appliedIndex());
        assertEquals(SnapshotMeta.NONE, storage.snapshot(), "no configuration known through 9: no snapshot");

        List<Entry> more = new ArrayList<>();
        more.add(new Entry(10, 1, EntryType.CONFIG, WITH_N3.encode()));
        more.addAll(entries(11, 12));
        transport.deliver(new AppendEntriesRequest("n0", "n3", 1, 9, 1, more, 12, 2));
        transport.runTasks();
        assertEquals(12, node.status().appliedIndex());
        assertEquals(12, storage.snapshot().index());
        assertEquals(WITH_N3.voters(), storage.snapshot().membership().voters());
    }
}
