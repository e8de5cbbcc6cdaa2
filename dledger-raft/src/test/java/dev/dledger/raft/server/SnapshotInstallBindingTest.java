package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.raft.core.AppendEntriesRequest;
import dev.dledger.raft.core.AppendEntriesResponse;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.core.VoteRequest;
import dev.dledger.raft.core.VoteResponse;
import dev.dledger.raft.statemachine.StateMachine;
import dev.dledger.raft.transport.SnapshotChunk;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The bytes a follower installs are those of the snapshot its core accepted (issue 16, B1): a snapshot that arrives in
 * the same pass from a deposed leader (stale term) or that the core answers without installing never replaces them.
 */
class SnapshotInstallBindingTest {

    private static final Membership VOTERS = Membership.of("n0", "n1", "n2");

    /** Records every restore: the index and the bytes. */
    static final class RestoreRecorder implements StateMachine {
        final List<String> restores = new ArrayList<>();

        @Override
        public List<byte[]> apply(List<Entry> committed) {
            return Collections.nCopies(committed.size(), null);
        }

        @Override
        public void snapshot(long lastIndex, OutputStream out) {
        }

        @Override
        public void restore(long lastIndex, InputStream in) throws IOException {
            restores.add(lastIndex + ":" + new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }

        @Override
        public boolean canSnapshot() {
            return true;
        }
    }

    private final ScriptedTransport transport = new ScriptedTransport();
    private final MemoryNodeStorage storage = new MemoryNodeStorage();
    private final RestoreRecorder machine = new RestoreRecorder();
    private RaftGroupNode node;

    @AfterEach
    void close() {
        if (node != null) {
            transport.onThread(node::close);
        }
    }

    private static SnapshotChunk wholeSnapshot(String from, long term, long index, long snapshotTerm, String state) {
        byte[] data = state.getBytes(StandardCharsets.UTF_8);
        InstallSnapshotRequest request = new InstallSnapshotRequest(from, "n1", term,
            new SnapshotMeta(index, snapshotTerm, VOTERS), 1, null);
        return new SnapshotChunk(from, "n1", request, data.length, SnapshotTransfers.crc(data), 0, data, false);
    }

    @Test
    void aStaleSnapshotInTheSamePassDoesNotReplaceTheBytesOfTheAcceptedOne() {
        node = new RaftGroupNode(NodeOptions.defaults("g", "n1"), VOTERS, storage, machine, transport);
        transport.runTasks();
        // The leader of term 2 sends its snapshot at 10; then, read in the same pass, a late one from the deposed
        // leader of term 1 (at 5), which the core answers as stale.
        transport.deliver(wholeSnapshot("n0", 2, 10, 2, "state at 10"));
        transport.deliver(wholeSnapshot("n2", 1, 5, 1, "state at 5"));
        transport.runTasks();

        assertEquals(List.of("10:state at 10"), machine.restores);
        assertEquals(10, storage.snapshot().index());
        assertArrayEquals("state at 10".getBytes(StandardCharsets.UTF_8), storage.snapshotData());
    }

    @Test
    void aSnapshotTheCoreAlreadyCoversDoesNotReplaceTheBytesOfTheAcceptedOne() {
        node = new RaftGroupNode(NodeOptions.defaults("g", "n1"), VOTERS, storage, machine, transport);
        transport.runTasks();
        // Same term, same pass: the snapshot at 10, then one at 7 from the same leader (a late resend): the core
        // answers the second from its commit index and installs only the first.
        transport.deliver(wholeSnapshot("n0", 2, 10, 2, "state at 10"));
        transport.deliver(wholeSnapshot("n0", 2, 7, 2, "state at 7"));
        transport.runTasks();

        assertEquals(List.of("10:state at 10"), machine.restores);
        assertArrayEquals("state at 10".getBytes(StandardCharsets.UTF_8), storage.snapshotData());
    }

    /** Starts n1 on a snapshot at 10 of term 1 and makes it lead, answering its (pre-)votes as n0. */
    private long leadOnASnapshotAt10(NodeOptions options) {
        storage.installSnapshot(new SnapshotMeta(10, 1, VOTERS), "twelve bytes".getBytes(StandardCharsets.UTF_8));
        storage.saveHardState(new HardState(1, null));
        node = new RaftGroupNode(options, VOTERS, storage, machine, transport);
        // Campaign: ticks follow the driver's clock; answer the (pre-)votes until it leads.
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            transport.runTasks();
            for (Message m : List.copyOf(transport.sent)) {
                if (m instanceof VoteRequest v && v.to().equals("n0")) {
                    transport.sent.remove(m);
                    transport.deliver(new VoteResponse("n0", "n1", v.term(), true, v.preVote()));
                }
            }
            return node.status().role() == Role.LEADER;
        });
        return node.status().term();
    }

    /** n2's answer to the leader's last append to it: it has nothing, so the leader must send it the snapshot. */
    private AppendEntriesResponse n2HasNothing(long term) {
        AppendEntriesRequest probe = transport.sent.stream()
            .filter(m -> m instanceof AppendEntriesRequest a && a.to().equals("n2"))
            .map(m -> (AppendEntriesRequest) m).reduce((a, b) -> b).orElseThrow();
        return new AppendEntriesResponse("n2", "n1", term, false, -1, probe.prevLogIndex(), 0, -1, probe.seq());
    }

    @Test
    void aDeposedLeaderDoesNotSendTheSnapshotItNamedBeforeItInstalledItsSuccessors() {
        long term = leadOnASnapshotAt10(NodeOptions.defaults("g", "n1"));
        transport.chunksSent.clear();
        // In one pass: n2's answer makes the core name its snapshot at 10 for n2; then the leader of a later term
        // sends its snapshot at 20, which n1 installs in that pass, before the pass's messages go out. The request
        // for n2 still names 10: the bytes held now are the state at 20, so nothing may go out under that name.
        transport.deliver(n2HasNothing(term));
        transport.deliver(wholeSnapshot("n0", term + 1, 20, term + 1, "state at 20"));
        transport.runTasks();

        assertEquals(20, storage.snapshot().index());
        assertEquals(List.of("20:state at 20"), machine.restores.subList(1, machine.restores.size()));
        assertEquals(List.of(), transport.chunksSent.stream().filter(c -> c.to().equals("n2") && !c.ack())
            .map(c -> c.request().snapshot().index() + ": " + new String(c.data(), StandardCharsets.UTF_8)).toList(),
            "chunks sent to n2");
    }

    @Test
    void aDeposedLeaderAnswersNoChunkAcknowledgement() {
        long term = leadOnASnapshotAt10(NodeOptions.defaults("g", "n1").withSnapshotChunkBytes(4));
        // n2 has nothing: the leader must send it the snapshot, in chunks of 4 bytes.
        transport.deliver(n2HasNothing(term));
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            transport.runTasks();
            return transport.chunksSent.stream().anyMatch(c -> c.to().equals("n2") && !c.ack());
        });
        SnapshotChunk first = transport.chunksSent.stream().filter(c -> c.to().equals("n2") && !c.ack())
            .findFirst().orElseThrow();
        assertEquals(0, first.offset());
        // A new leader of a later term deposes n1; then n2's acknowledgement of the first chunk arrives.
        transport.deliver(new AppendEntriesRequest("n0", "n1", term + 1, 11, 1, List.of(),
            10, 1));
        transport.runTasks();
        assertEquals(Role.FOLLOWER, node.status().role());
        transport.chunksSent.clear();
        transport.deliver(new SnapshotChunk("n2", "n1", first.request(), first.total(), first.crc(), 4,
            new byte[0], true));
        transport.runTasks();
        assertEquals(List.of(), transport.chunksSent.stream().filter(c -> !c.ack()).toList(),
            "a deposed leader sends no more chunks");
    }
}
