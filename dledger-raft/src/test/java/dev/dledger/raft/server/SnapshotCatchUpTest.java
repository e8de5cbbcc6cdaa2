package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.NettyTransport;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A follower that fell behind the leader's retained log catches up by a snapshot sent in chunks. */
class SnapshotCatchUpTest {

    private static final String[] IDS = {"n0", "n1", "n2"};
    private final Map<String, NettyTransport> transports = new LinkedHashMap<>();
    private final Map<String, MemoryNodeStorage> stores = new LinkedHashMap<>();
    private final Map<String, RecordingStateMachine> machines = new LinkedHashMap<>();
    private final Map<String, RaftGroupNode> nodes = new LinkedHashMap<>();
    private final Map<String, InetSocketAddress> addresses = new LinkedHashMap<>();

    /** Keeps every applied payload; its snapshot is the whole list. */
    static final class RecordingStateMachine implements StateMachine {
        final List<String> applied = Collections.synchronizedList(new ArrayList<>());

        @Override
        public List<byte[]> apply(List<Entry> committed) {
            for (Entry e : committed) {
                if (e.type() == EntryType.NORMAL) {
                    applied.add(new String(e.data(), StandardCharsets.UTF_8));
                }
            }
            return Collections.nCopies(committed.size(), null);
        }

        @Override
        public void snapshot(long lastIndex, OutputStream out) throws IOException {
            DataOutputStream d = new DataOutputStream(out);
            synchronized (applied) {
                d.writeInt(applied.size());
                for (String s : applied) {
                    d.writeUTF(s);
                }
            }
            d.flush();
        }

        @Override
        public void restore(long lastIndex, InputStream in) throws IOException {
            applied.clear();
            if (in.available() == 0) {
                return;
            }
            DataInputStream d = new DataInputStream(in);
            int n = d.readInt();
            for (int i = 0; i < n; i++) {
                applied.add(d.readUTF());
            }
        }

        @Override
        public boolean canSnapshot() {
            return true;
        }
    }

    private void start(String id) {
        machines.put(id, new RecordingStateMachine());
        NodeOptions options = NodeOptions.defaults("g", id).withSnapshotThreshold(50).withSnapshotChunkBytes(100);
        nodes.put(id, new RaftGroupNode(options, Membership.of(IDS), stores.get(id), machines.get(id),
            transports.get(id)));
        transports.get(id).setPeers("g", addresses);
    }

    @AfterEach
    void stop() {
        nodes.values().forEach(RaftGroupNode::close);
        transports.values().forEach(NettyTransport::close);
    }

    @Test
    void followerBehindTheRetainedLogCatchesUpBySnapshot() throws Exception {
        for (String id : IDS) {
            NettyTransport t = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1, 1 << 24);
            transports.put(id, t);
            addresses.put(id, t.localAddress());
            stores.put(id, new MemoryNodeStorage());
        }
        for (String id : IDS) {
            start(id);
        }
        await().atMost(Duration.ofSeconds(10))
            .until(() -> nodes.values().stream().anyMatch(n -> n.status().role() == Role.LEADER));
        RaftGroupNode leader = nodes.values().stream().filter(n -> n.status().role() == Role.LEADER).findFirst()
            .orElseThrow();
        String lagging = nodes.keySet().stream().filter(id -> !id.equals(leader.id())).findFirst().orElseThrow();
        nodes.remove(lagging).close();
        long behind = stores.get(lagging).lastIndex();

        for (int i = 0; i < 300; i++) {
            assertEquals(AppendResult.Status.OK,
                leader.append(List.of(("m" + i).getBytes(StandardCharsets.UTF_8))).get().status());
        }
        MemoryNodeStorage leaderStore = stores.get(leader.id());
        assertTrue(leaderStore.firstIndex() > behind + 1, "the leader compacted past the lagging node's log");

        start(lagging);
        long target = leader.status().commitIndex();
        await().atMost(Duration.ofSeconds(20)).until(() -> nodes.get(lagging).status().appliedIndex() >= target);
        assertTrue(stores.get(lagging).snapshot().index() >= 50, "caught up through a snapshot");
        assertEquals(machines.get(leader.id()).applied, machines.get(lagging).applied);
        assertEquals(300, machines.get(lagging).applied.size());
    }
}
