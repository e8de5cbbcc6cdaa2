package dev.dledger.raft.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Witness members (issue 19, rules on {@link Membership}): a witness votes and acknowledges like a voter, leads only to
 * hand an acknowledged tail to a data member, never takes a client's entry, and may drop bodies only up to the index
 * every data member holds.
 */
class WitnessScenarioTest {

    private static final int E = TestCluster.ELECTION_TICKS;
    private static final int HB = TestCluster.HEARTBEAT_TICKS;
    /** Data members a and b, witness w. */
    private static final Membership ABW = Membership.of("a", "b", "w").withWitness("w", true);

    private static TestCluster group() {
        TestCluster c = TestCluster.empty(cfg -> cfg);
        for (String id : List.of("a", "b", "w")) {
            c.add(id, ABW, new InMemoryLogView(), HardState.INITIAL);
        }
        c.elect("a");
        c.run(HB);
        assertEquals(0, c.raft("a").commitIndex());
        return c;
    }

    @Test
    void witnessFlagSurvivesTheConfigEncodingAndOldBodiesDecodeUnchanged() {
        Membership m = Membership.decode("a=h1:1,b,!w=h3:3".getBytes(StandardCharsets.UTF_8));
        assertEquals(List.of("a", "b", "w"), m.voters());
        assertEquals(List.of("w"), m.witnesses());
        assertEquals(List.of("a", "b"), m.dataMembers());
        assertEquals("h3:3", m.address("w"));
        assertEquals(m, Membership.decode(m.encode()));
        Membership old = Membership.decode("a=h1:1,b,w=h3:3".getBytes(StandardCharsets.UTF_8));
        assertEquals(List.of(), old.witnesses());
        assertEquals("a=h1:1,b,w=h3:3", new String(old.encode(), StandardCharsets.UTF_8),
            "a body without witnesses keeps the earlier format");
        assertFalse(m.without("w").isWitness("w"));
        assertEquals(m.withWitness("w", false), old);
    }

    @Test
    void witnessLeaderRefusesClientsAndHandsLeadershipToADataMember() {
        TestCluster c = group();
        c.crash("a");
        c.tick("b", E); // b's lease on a runs out, before b's own (jittered) timeout
        c.net().dropIf(Net.ofType(TimeoutNow.class));
        c.elect("w");

        assertEquals(ProposeResult.Status.NOT_LEADER, c.propose("w", "x").status());
        assertEquals(ProposeResult.Status.NOT_LEADER, c.on("w", n -> n.readIndex(1, false)).status());
        assertEquals(ProposeResult.Status.NOT_LEADER, c.on("w", n -> n.removeVoter("a")).status());

        c.net().heal();
        c.run(4 * HB);

        List<String> leaders = c.leaders();
        assertEquals(List.of("b"), leaders, "the data member leads");
    }

    @Test
    void survivorGetsTheTailThatOnlyTheWitnessHolds() {
        TestCluster c = group();
        c.crash("b");
        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("a", "x").status());
        c.run(HB);
        assertEquals(1, c.raft("a").commitIndex(), "a and w acknowledged x");
        c.crash("a");
        c.restart("b");

        for (int i = 0; i < 20 * E && !c.leaders().equals(List.of("b")); i++) {
            c.tick("b");
            c.tick("w");
            c.deliverAll();
        }

        assertEquals(List.of("b"), c.leaders(), "the survivor leads once it holds the witness's tail");
        c.run(2 * HB);
        assertEquals(List.of("x"), c.node("b").appliedPayloads(), "nothing acknowledged was lost");
        assertEquals(ProposeResult.Status.ACCEPTED, c.propose("b", "y").status());
        c.run(2 * HB);
        assertEquals(List.of("x", "y"), c.node("b").appliedPayloads());
    }

    @Test
    void witnessDropsOnlyWhatEveryDataMemberHolds() {
        TestCluster c = group();
        c.propose("a", "x");
        c.run(2 * HB);
        long both = c.raft("a").commitIndex();
        assertEquals(both, c.raft("w").witnessDropIndex(), "a and b hold everything committed");
        assertEquals(-1, c.raft("a").witnessDropIndex(), "a data member never drops on the witness's account");
        assertEquals(-1, c.raft("b").witnessDropIndex());

        c.crash("b");
        c.propose("a", "y");
        c.run(2 * HB);
        assertEquals(both + 1, c.raft("a").commitIndex(), "a and w acknowledged y");
        assertEquals(both, c.raft("w").witnessDropIndex(), "b lacks y, so w keeps it");

        c.restart("b");
        c.run(4 * HB);
        assertEquals(both + 1, c.raft("w").witnessDropIndex(), "b caught up, so w may drop y");
    }

    @Test
    void removalIsRefusedWhileTheDataMembersLeftLackCommittedEntries() {
        TestCluster c = group();
        c.crash("b");
        c.propose("a", "x");
        c.run(2 * HB);
        assertEquals(1, c.raft("a").commitIndex());

        assertEquals(ProposeResult.Status.CONFIG_CHANGE_IN_PROGRESS, c.on("a", n -> n.removeVoter("a")).status(),
            "b, the data member left, lacks x: only the witness would hold it");
        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.removeVoter("b")).status(),
            "a holds everything: b, lost, may go");
    }

    @Test
    void dataMemberBecomesAWitnessAndComesBackThroughAFreshCatchUp() {
        TestCluster c = TestCluster.of("a", "b", "c");
        c.elect("a");
        c.run(HB);
        c.propose("a", "x");
        c.run(2 * HB);

        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.makeWitness("c")).status());
        c.run(2 * HB);
        Membership abWitnessC = Membership.of("a", "b", "c").withWitness("c", true);
        assertEquals(abWitnessC, c.raft("b").membership());
        assertEquals(c.raft("a").commitIndex(), c.raft("c").witnessDropIndex(), "c drops what a and b hold");
        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, c.on("a", n -> n.makeWitness("b")).status(),
            "two witnesses would outnumber the one data member left");
        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, c.on("a", n -> n.transferLeadership("c")).status(),
            "leadership never goes to a witness on request");

        // Back to a data member: out of the group, a fresh log, caught up in full, then a voter again.
        assertEquals(ProposeResult.Status.ACCEPTED, c.on("a", n -> n.removeVoter("c")).status());
        c.run(2 * HB);
        c.crash("c");
        c.add("c", Membership.EMPTY, new InMemoryLogView(), HardState.INITIAL);
        assertEquals(ProposeResult.Status.CATCHING_UP, c.on("a", n -> n.stageVoter("c", null)).status());
        c.run(4 * HB);
        assertEquals(Membership.of("a", "b", "c"), c.raft("a").membership());
        c.run(2 * HB);
        assertEquals(List.of("x"), c.node("c").appliedPayloads(), "c holds the bodies again");
        assertEquals(-1, c.raft("c").witnessDropIndex());
    }

    @Test
    void witnessJoinsThroughTheCatchUpAndIsAddedWithItsFlag() {
        TestCluster c = TestCluster.of("a", "b");
        c.elect("a");
        c.run(HB);
        c.add("w", Membership.EMPTY, new InMemoryLogView(), HardState.INITIAL);

        assertEquals(ProposeResult.Status.CATCHING_UP, c.on("a", n -> n.stageWitness("w", "h:3")).status());
        c.run(4 * HB);

        Membership expected = new Membership(List.of("a", "b", "w"), Map.of("w", "h:3"), List.of("w"));
        assertEquals(expected, c.raft("a").membership());
        c.run(2 * HB);
        assertEquals(expected, c.raft("w").membership());
        assertEquals(ProposeResult.Status.INVALID_CONFIG_CHANGE, c.on("a", n -> n.stageWitness("v", null)).status(),
            "a second witness would equal the data members");
    }
}
