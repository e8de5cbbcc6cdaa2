package dev.dledger.raft.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.FollowerProgress;
import dev.dledger.raft.core.InstallSnapshotRequest;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.transport.SnapshotChunk;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * A snapshot moves one chunk at a time; a copy of a message (a network that duplicates, a follower answering a chunk
 * it had) must not start a second chain of chunks and acknowledgements beside the first: each would last until the
 * transfer ends, and copies of copies would multiply the traffic without bound (seen in the simulation with 64-byte
 * chunks and duplicating links: two million events).
 */
class SnapshotTransfersTest {

    private static final byte[] DATA = "a snapshot of sixty-four bytes, moved in chunks of four bytes...".getBytes(
        StandardCharsets.UTF_8);
    private static final InstallSnapshotRequest REQUEST = new InstallSnapshotRequest("n1", "n2", 2,
        new SnapshotMeta(10, 1, Membership.of("n1", "n2", "n3")), 1, null);
    /** The same snapshot named by n3, leading the next term. */
    private static final InstallSnapshotRequest FROM_N3 = new InstallSnapshotRequest("n3", "n2", 3, REQUEST.snapshot(),
        1, null);

    private final ScriptedTransport leaderNet = new ScriptedTransport();
    private final ScriptedTransport followerNet = new ScriptedTransport();
    /** The driver's clock, in nanoseconds, moved by hand. */
    private final long[] now = {0};
    private final SnapshotTransfers leader = new SnapshotTransfers("g", "n1", leaderNet, 4, () -> now[0],
        LoggerFactory.getLogger(SnapshotTransfersTest.class));
    private final SnapshotTransfers follower = new SnapshotTransfers("g", "n2", followerNet, 4, () -> now[0],
        LoggerFactory.getLogger(SnapshotTransfersTest.class));

    /** The leader's core's view of its followers: n2 answers, and the core is sending it a snapshot. */
    private final Map<String, FollowerProgress> cores = new HashMap<>(Map.of("n2", n2("SNAPSHOT", true)));

    private FollowerProgress progress(String peer) {
        return cores.get(peer);
    }

    private static FollowerProgress n2(String state, boolean active) {
        return new FollowerProgress("n2", 0, 1, state, active);
    }

    private List<Long> offsetsSent() {
        return leaderNet.chunksSent.stream().map(SnapshotChunk::offset).toList();
    }

    @Test
    void aCopiedAcknowledgementSendsNoSecondChunk() {
        assertEquals(64, DATA.length);
        leader.send(REQUEST, DATA);
        SnapshotChunk ack = new SnapshotChunk("n2", "n1", REQUEST, DATA.length, SnapshotTransfers.crc(DATA), 4,
            new byte[0], true);
        leader.receive(ack, r -> { });
        leader.receive(ack, r -> { });
        assertEquals(List.of(0L, 4L), leaderNet.chunksSent.stream().map(SnapshotChunk::offset).toList());
    }

    @Test
    void aChunkNotAcknowledgedWithinTheStallTimeIsSentAgainOnce() {
        leader.send(REQUEST, DATA);
        // Chunk 0 is lost. Before the stall time nothing is sent again; after it, chunk 0 once.
        now[0] = 99;
        leader.resendStalled(now[0], 100, this::progress);
        now[0] = 100;
        leader.resendStalled(now[0], 100, this::progress);
        leader.resendStalled(now[0], 100, this::progress);
        assertEquals(List.of(0L, 0L), leaderNet.chunksSent.stream().map(SnapshotChunk::offset).toList());
        // Its acknowledgement moves the transfer on; the next chunk's clock starts then.
        leader.receive(new SnapshotChunk("n2", "n1", REQUEST, DATA.length, SnapshotTransfers.crc(DATA), 4,
            new byte[0], true), r -> { });
        now[0] = 150;
        leader.resendStalled(now[0], 100, this::progress);
        assertEquals(List.of(0L, 0L, 4L), leaderNet.chunksSent.stream().map(SnapshotChunk::offset).toList());
    }

    @Test
    void aStalledChunkWaitsForAFollowerThatAnswersNothing() {
        leader.send(REQUEST, DATA);
        cores.put("n2", n2("SNAPSHOT", false));
        now[0] = 1_000;
        leader.resendStalled(now[0], 100, this::progress);
        assertEquals(List.of(0L), offsetsSent());
        // It answers the leader's heartbeats again: the chunk goes out again.
        cores.put("n2", n2("SNAPSHOT", true));
        leader.resendStalled(now[0], 100, this::progress);
        assertEquals(List.of(0L, 0L), offsetsSent());
    }

    @Test
    void aTransferTheCoreNoLongerWantsIsDroppedAndNeverSentAgain() {
        // The follower left the group (the core no longer replicates to it) ...
        leader.send(REQUEST, DATA);
        cores.remove("n2");
        now[0] = 1_000;
        leader.resendStalled(now[0], 100, this::progress);
        // ... and comes back: the old transfer is gone, not resumed.
        cores.put("n2", n2("SNAPSHOT", true));
        now[0] = 2_000;
        leader.resendStalled(now[0], 100, this::progress);
        assertEquals(List.of(0L), offsetsSent());
        // The core gave up after its snapshot timeout (PROBE): the transfer is dropped too; an acknowledgement that
        // arrives after that sends nothing.
        leader.send(REQUEST, DATA);
        cores.put("n2", n2("PROBE", true));
        now[0] = 3_000;
        leader.resendStalled(now[0], 100, this::progress);
        leader.receive(new SnapshotChunk("n2", "n1", REQUEST, DATA.length, SnapshotTransfers.crc(DATA), 4,
            new byte[0], true), r -> { });
        assertEquals(List.of(0L, 0L), offsetsSent());
    }

    @Test
    void aTransferOverLinksThatDeliverEveryMessageTwiceStaysWithinTwiceTheLeastTraffic() {
        List<InstallSnapshotRequest> delivered = new ArrayList<>();
        leader.send(REQUEST, DATA);
        int messages = 0;
        // Every chunk and every acknowledgement arrives twice. Without the guard the chains double at every round
        // trip: 2^16 chunks for these 16; the cap ends such a run early.
        while (messages < 10_000 && !(leaderNet.chunksSent.isEmpty() && followerNet.chunksSent.isEmpty())) {
            List<SnapshotChunk> toFollower = List.copyOf(leaderNet.chunksSent);
            leaderNet.chunksSent.clear();
            for (SnapshotChunk c : toFollower) {
                follower.receive(c, delivered::add);
                follower.receive(c, delivered::add);
                messages += 2;
            }
            List<SnapshotChunk> toLeader = List.copyOf(followerNet.chunksSent);
            followerNet.chunksSent.clear();
            for (SnapshotChunk c : toLeader) {
                leader.receive(c, r -> { });
                leader.receive(c, r -> { });
                messages += 2;
            }
        }
        System.out.printf("snapshot of 16 chunks over links that deliver every message twice: %d messages delivered "
            + "(64 at least)%n", messages);
        assertEquals(1, delivered.size(), "snapshots delivered to the follower's core");
        assertArrayEquals(DATA, delivered.get(0).data());
        assertTrue(messages <= 2 * 64, "messages delivered for 16 chunks: " + messages);
    }

    /**
     * Moves chunks from {@code sender} to the follower and its acknowledgements back until the sender has nothing
     * more to send, or until {@code chunks} chunks reached the follower (what is still on its way is then lost, as
     * when the sender loses its leadership).
     *
     * @return the offsets of the chunks that reached the follower
     */
    private List<Long> deliver(SnapshotTransfers sender, ScriptedTransport senderNet, int chunks,
                               List<InstallSnapshotRequest> delivered) {
        List<Long> offsets = new ArrayList<>();
        while (offsets.size() < chunks && !senderNet.chunksSent.isEmpty()) {
            SnapshotChunk c = senderNet.chunksSent.remove(0);
            follower.receive(c, delivered::add);
            offsets.add(c.offset());
            for (SnapshotChunk ack : List.copyOf(followerNet.chunksSent)) {
                sender.receive(ack, r -> { });
            }
            followerNet.chunksSent.clear();
        }
        senderNet.chunksSent.clear();
        return offsets;
    }

    private SnapshotTransfers transfersOf(String id, ScriptedTransport net) {
        return new SnapshotTransfers("g", id, net, 4, () -> now[0], LoggerFactory.getLogger(SnapshotTransfersTest.class));
    }

    @Test
    void aNewLeaderSendingTheSameBytesResumesWhereThePreviousLeaderStopped() {
        // n1 sends 6 of the 16 chunks, then loses its leadership; n3 leads next and names the same snapshot, in a
        // request of its own term, with the same bytes (its state machine wrote the same state at that index).
        List<InstallSnapshotRequest> delivered = new ArrayList<>();
        leader.send(REQUEST, DATA);
        deliver(leader, leaderNet, 6, delivered);
        ScriptedTransport n3Net = new ScriptedTransport();
        SnapshotTransfers n3 = transfersOf("n3", n3Net);
        n3.send(FROM_N3, DATA);
        // n3's first chunk (offset 0) is answered with the 24 bytes n2 holds; n3 goes on from there.
        assertEquals(List.of(0L, 24L, 28L, 32L, 36L, 40L, 44L, 48L, 52L, 56L, 60L), deliver(n3, n3Net, 100, delivered));
        assertEquals(1, delivered.size(), "snapshots delivered to the follower's core");
        assertArrayEquals(DATA, delivered.get(0).data());
        assertEquals("n3", delivered.get(0).from(), "the request stepped is the current leader's");
        assertEquals(3, delivered.get(0).term());
    }

    @Test
    void aNewLeaderSendingOtherBytesForTheSameSnapshotStartsOver() {
        List<InstallSnapshotRequest> delivered = new ArrayList<>();
        leader.send(REQUEST, DATA);
        deliver(leader, leaderNet, 6, delivered);
        byte[] other = DATA.clone();
        other[40] ^= 1;
        ScriptedTransport n3Net = new ScriptedTransport();
        SnapshotTransfers n3 = transfersOf("n3", n3Net);
        n3.send(FROM_N3, other);
        // The follower holds 24 bytes of other bytes (another CRC): it asks for all of n3's, from offset 0.
        assertEquals(16, deliver(n3, n3Net, 100, delivered).size(), "chunks n3 sent");
        assertEquals(1, delivered.size(), "snapshots delivered to the follower's core");
        assertArrayEquals(other, delivered.get(0).data(), "n3's bytes, none of n1's kept");
    }

    @Test
    void theLastChunkFromADeposedLeaderDeliversItsSuccessorsRequest() {
        // n1 sent 15 of the 16 chunks; n3, leading a later term, starts the same bytes: the follower answers it with
        // offset 60. n1, deposed without knowing it, sends its last chunk, which completes the bytes. The request
        // stepped into the core is n3's: n1's would be refused for its term, and n3's transfer would start over.
        List<InstallSnapshotRequest> delivered = new ArrayList<>();
        leader.send(REQUEST, DATA);
        deliver(leader, leaderNet, 15, delivered);
        follower.receive(new SnapshotChunk("n3", "n2", FROM_N3, DATA.length, SnapshotTransfers.crc(DATA), 0,
            Arrays.copyOfRange(DATA, 0, 4), false), delivered::add);
        assertEquals(60L, followerNet.chunksSent.get(followerNet.chunksSent.size() - 1).offset(), "answer to n3");
        follower.receive(new SnapshotChunk("n1", "n2", REQUEST, DATA.length, SnapshotTransfers.crc(DATA), 60,
            Arrays.copyOfRange(DATA, 60, 64), false), delivered::add);
        assertEquals(1, delivered.size(), "snapshots delivered to the follower's core");
        assertArrayEquals(DATA, delivered.get(0).data());
        assertEquals("n3", delivered.get(0).from());
        assertEquals(3, delivered.get(0).term());
    }
}
