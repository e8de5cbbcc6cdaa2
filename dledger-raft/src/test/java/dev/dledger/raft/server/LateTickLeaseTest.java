package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.AppendEntriesRequest;
import dev.dledger.raft.core.AppendEntriesResponse;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.Message;
import dev.dledger.raft.core.RaftConfig;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.core.VoteRequest;
import dev.dledger.raft.core.VoteResponse;
import dev.dledger.raft.statemachine.StateMachine;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The driver replays up to {@link RaftGroupNode#MAX_LATE_TICKS} late ticks one per pass; while it is behind, the
 * core's clock is too, and a lease read must not be served on a lease that ran out in real time (issue 16, B4). With
 * an election timeout of 4 ticks, a leader that stood still for 7 ticks may have been replaced.
 */
class LateTickLeaseTest {

    private static final int TICK_MS = 20;
    private static final Membership VOTERS = Membership.of("n0", "n1", "n2");
    private final ScriptedTransport transport = new ScriptedTransport();
    private RaftGroupNode node;

    @AfterEach
    void close() {
        if (node != null) {
            transport.onThread(node::close);
        }
    }

    private static NodeOptions options(RaftConfig raft) {
        return new NodeOptions("g", raft, TICK_MS, FlushMode.ASYNC, 3000, 10_000, 65_536, 0, 1 << 20, 7);
    }

    /** Runs the driver and answers as followers n0 and n2 would: votes granted, appends acknowledged. */
    private void runAndAnswer() {
        transport.runTasks();
        for (Message m : List.copyOf(transport.sent)) {
            transport.sent.remove(m);
            if (m instanceof VoteRequest v) {
                transport.deliver(new VoteResponse(v.to(), v.from(), v.term(), true, v.preVote()));
            } else if (m instanceof AppendEntriesRequest a) {
                transport.deliver(new AppendEntriesResponse(a.to(), a.from(), a.term(), true,
                    a.prevLogIndex() + a.entries().size(), -1, -1, -1, a.seq()));
            }
        }
        transport.runTasks();
    }

    @Test
    void aLeaderWhoseDriverIsSeveralTicksLateServesNoLeaseRead() {
        node = new RaftGroupNode(options(RaftConfig.defaults("n1").withTimeouts(4, 1)), VOTERS,
            new MemoryNodeStorage(), StateMachine.NONE, transport);
        await().pollInterval(Duration.ofMillis(2)).atMost(Duration.ofSeconds(10)).until(() -> {
            runAndAnswer();
            return node.status().role() == Role.LEADER && node.status().commitIndex() >= 0;
        });
        // Positive control: with the followers answering every heartbeat, a lease read is served in the pass that
        // takes it, with no round trip.
        await().pollInterval(Duration.ofMillis(2)).atMost(Duration.ofSeconds(10)).until(() -> {
            runAndAnswer();
            CompletableFuture<Long> read = node.readIndex(true);
            transport.runTasks();
            return read.isDone() && !read.isCompletedExceptionally();
        });
        // The driver stands still for some 7 ticks (fewer than the 10 it replays one per pass), while nothing is
        // answered; then a lease read arrives.
        long stillSince = System.nanoTime();
        await().pollDelay(Duration.ofMillis(7 * TICK_MS)).atMost(Duration.ofSeconds(5)).until(() -> true);
        CompletableFuture<Long> read = node.readIndex(true);
        transport.runTasks();
        long stillMs = (System.nanoTime() - stillSince) / 1_000_000;
        assertTrue(stillMs < RaftGroupNode.MAX_LATE_TICKS * TICK_MS, "the test thread itself stood still for "
            + stillMs + " ms; the late ticks were skipped, not replayed");
        assertFalse(read.isDone(), "a lease read was served " + stillMs + " ms (over 4 election-timeout ticks of "
            + TICK_MS + " ms) after the lease was last renewed");
        // Then answered after a heartbeat round, or refused when the leader, finding itself without a quorum for an
        // election timeout once its ticks caught up, stepped down: either way not on the old lease.
        await().pollInterval(Duration.ofMillis(2)).atMost(Duration.ofSeconds(10)).until(() -> {
            runAndAnswer();
            return read.isDone();
        });
    }

    @Test
    void aLeaseThatLeavesNoRoomForALateTickIsRefusedAtStart() {
        RaftConfig tight = new RaftConfig("n1", 4, 1, true, true, 3, 256, 1 << 20, 256, 32L << 20, 1L << 20, null, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> options(tight));
        assertTrue(e.getMessage().contains("leaseTicks"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
        assertEquals(0, RaftConfig.defaults("n1").withTimeouts(2, 1).leaseTicks(), "no lease with 2 ticks");
    }
}
