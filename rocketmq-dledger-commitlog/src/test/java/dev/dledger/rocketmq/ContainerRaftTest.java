package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.testing.FreePorts;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Raft port a container's brokers share ({@link ContainerRaft}): one transport for the container, one broker per
 * group, every broker naming the container's address and agreeing on the port's security.
 */
@Tag("in-process")
class ContainerRaftTest {

    @TempDir
    Path dir;

    private RaftStoreSettings settings(String group, String self, int port, String secret) {
        MessageStoreConfig c = new MessageStoreConfig();
        c.setStorePathRootDir(dir.resolve(group).toString());
        c.setdLegerGroup(group);
        c.setdLegerPeers("n0-127.0.0.1:" + port + ";n1-127.0.0.1:1;n2-127.0.0.1:2");
        c.setdLegerSelfId(self);
        Properties p = new Properties();
        if (secret != null) {
            p.setProperty("raftSecret", secret);
        }
        return RaftStoreSettings.from(c, p);
    }

    @Test
    void aSecondBrokerOfAHostedGroupIsRefusedUntilTheFirstIsReleased() throws IOException {
        int port = FreePorts.port();
        try (ContainerRaft raft = new ContainerRaft(1, 1)) {
            raft.admit(settings("ga", "n0", port, null), "ga.conf");
            assertNotNull(raft.transport(), "the first broker starts the container's raft port");
            var transport = raft.transport();
            raft.admit(settings("gb", "n0", port, null), "gb.conf");
            assertSame(transport, raft.transport(), "a second group shares the transport");
            IllegalArgumentException twice = assertThrows(IllegalArgumentException.class,
                () -> raft.admit(settings("ga", "n0", port, null), "ga-again.conf"));
            assertTrue(twice.getMessage().contains("ga-again.conf") && twice.getMessage().contains("dLegerGroup=ga")
                && twice.getMessage().contains("ga.conf"), twice.getMessage());
            raft.release("ga");
            raft.admit(settings("ga", "n0", port, null), "ga-again.conf");
        }
    }

    /** The groups of a container share its fsync threads (raftFlushThreads) as they share its driver threads. */
    @Test
    void theGroupsShareTheContainersFlushThreads() throws IOException {
        int port = FreePorts.port();
        try (ContainerRaft raft = new ContainerRaft(1, 2)) {
            assertNull(raft.flushThreads(), "no fsync threads before the first broker");
            raft.admit(settings("ga", "n0", port, null), "ga.conf");
            var flush = raft.flushThreads();
            assertNotNull(flush);
            assertEquals(2, flush.threads());
            raft.admit(settings("gb", "n0", port, null), "gb.conf");
            assertSame(flush, raft.flushThreads(), "a second group shares the fsync threads");
            assertSame(flush, raft.loops().flush(), "the driver loops hand them to every node");
        }
        Properties bad = new Properties();
        bad.setProperty("raftFlushThreads", "0");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new RaftBrokerContainer(bad));
        assertEquals("container config: raftFlushThreads=0 must be positive", e.getMessage());
    }

    @Test
    void aBrokerNamingAnotherAddressOrOtherSecurityIsRefusedNamingItsFile() throws IOException {
        int port = FreePorts.port();
        try (ContainerRaft raft = new ContainerRaft(1, 1)) {
            raft.admit(settings("ga", "n0", port, null), "ga.conf");
            IllegalArgumentException other = assertThrows(IllegalArgumentException.class,
                () -> raft.admit(settings("gb", "n0", port + 1, null), "gb.conf"));
            assertTrue(other.getMessage().startsWith("gb.conf: dLegerPeers gives n0 the raft address 127.0.0.1:"
                + (port + 1)), other.getMessage());
            IllegalArgumentException secured = assertThrows(IllegalArgumentException.class,
                () -> raft.admit(settings("gc", "n0", port, "a-secret-of-16-chars"), "gc.conf"));
            assertTrue(secured.getMessage().startsWith("gc.conf: raftSecret"), secured.getMessage());
        }
    }

    /**
     * conf/container, the example of the package: every container's brokers exist, run on the Raft log, name the
     * container's one Raft address and agree on its security, and each container is the preferred leader of exactly
     * one group.
     */
    @Test
    void theExampleContainersHostOneNodeOfEachGroupAndPreferOneGroupEach() throws Exception {
        Path confDir = Path.of("..", "conf", "container").toAbsolutePath().normalize();
        java.util.Set<String> preferredSeen = new java.util.HashSet<>();
        for (int c = 0; c < 3; c++) {
            Path file = confDir.resolve("container-" + c + ".conf");
            Properties props = RaftBrokerContainerStartup.read(new String[] {"-c", file.toString()});
            RaftBrokerContainer container = new RaftBrokerContainer(props);
            assertTrue(container.brokerConfigPaths().size() == 3, file + ": " + container.brokerConfigPaths());
            RaftStoreSettings first = null;
            int leads = 0;
            java.util.Set<String> groups = new java.util.HashSet<>();
            for (String path : container.brokerConfigPaths()) {
                RaftStoreSettings s = RaftBrokerStartup.settings(RaftBrokerStartup.parse(new String[] {"-c", path}));
                assertNotNull(s, path + " does not enable the Raft log");
                assertTrue(s.selfId().equals("n" + c), path + ": dLegerSelfId " + s.selfId());
                if (first == null) {
                    first = s;
                }
                assertTrue(first.selfAddress().equals(s.selfAddress()), path + ": raft address " + s.selfAddress());
                assertTrue(first.transportOptions().equals(s.transportOptions()), path + ": transport settings");
                assertTrue(groups.add(s.group()), path + ": group " + s.group() + " twice in container " + c);
                assertEquals(RaftBrokerContainer.automaticLeader(s.group(), List.of("n0", "n1", "n2")),
                    s.preferredLeader(), path + ": the example's preferredLeaderId is the one chosen when unset");
                if (("n" + c).equals(s.preferredLeader())) {
                    leads++;
                    preferredSeen.add(s.group());
                }
            }
            assertTrue(leads == 1, "container " + c + " is the preferred leader of " + leads + " groups");
        }
        assertTrue(preferredSeen.size() == 3, "groups led from their own container: " + preferredSeen);
    }

    @Test
    void withoutPreferredLeaderIdTheGroupsTakeThePeersInTurn() {
        List<String> peers = List.of("n2", "n0", "n1");
        assertEquals("n0", RaftBrokerContainer.automaticLeader("cg0", peers));
        assertEquals("n1", RaftBrokerContainer.automaticLeader("cg1", peers));
        assertEquals("n2", RaftBrokerContainer.automaticLeader("cg2", peers));
        assertEquals("n0", RaftBrokerContainer.automaticLeader("cg3", peers), "a fourth group wraps around");
        assertEquals("n1", RaftBrokerContainer.automaticLeader("group-13", peers), "the number the name ends with");
        java.util.Set<String> letters = new HashSet<>();
        for (String g : List.of("broker-a", "broker-b", "broker-c")) {
            letters.add(RaftBrokerContainer.automaticLeader(g, peers));
        }
        assertEquals(java.util.Set.of("n0", "n1", "n2"), letters, "names differing in their last letter spread too");
        assertNull(RaftBrokerContainer.automaticLeader("cg0", List.of()));
    }

    /**
     * Review finding C1: the automatic preferred leader of a group must not depend on the other groups a container
     * hosts. Container A hosts cg1 with cg0, container B hosts cg1 with cg2 (a container lists the groups it hosts,
     * not all of the cluster's): both pick the same node for cg1, as does a container hosting cg1 alone.
     */
    @Test
    void everyContainerPicksTheSameLeaderForAGroupWhateverElseItHosts() {
        List<String> ids = List.of("n0", "n1", "n2");
        String inA = RaftBrokerContainer.automaticLeader("cg1", ids);
        String inB = RaftBrokerContainer.automaticLeader("cg1", List.of("n1", "n2", "n0"));
        assertEquals(inA, inB);
        assertEquals("n1", inA);
        for (String g : List.of("cg0", "cg1", "cg2", "broker-a", "orders")) {
            String first = RaftBrokerContainer.automaticLeader(g, ids);
            assertTrue(ids.contains(first), g + ": " + first);
            assertEquals(first, RaftBrokerContainer.automaticLeader(g, List.of("n2", "n1", "n0")), g);
        }
    }

    /** Review finding C2: a refusal without a message is named by its class and the file, not an NPE. */
    @Test
    void aRefusalWithoutAMessageNamesTheFile() {
        IllegalArgumentException named = RaftBrokerContainer.naming("/conf/b.conf", new IllegalArgumentException());
        assertEquals("/conf/b.conf: java.lang.IllegalArgumentException", named.getMessage());
        IllegalArgumentException once = RaftBrokerContainer.naming("/conf/b.conf",
            new IllegalArgumentException("/conf/b.conf: listenPort=x is not a number"));
        assertEquals("/conf/b.conf: listenPort=x is not a number", once.getMessage());
    }

    /**
     * Review finding C2: a removal whose broker shutdown throws still stops the Raft node and frees the group (no
     * half-removed broker); the first failure is returned with the later ones suppressed in it.
     */
    @Test
    void aRemovalRunsEveryStepWhenTheBrokerShutdownThrows() throws IOException {
        int port = FreePorts.port();
        try (ContainerRaft raft = new ContainerRaft(1, 1)) {
            raft.admit(settings("g1", "n0", port, null), "a.conf");
            List<String> ran = new java.util.ArrayList<>();
            RuntimeException failed = RaftBrokerContainer.stopInOrder(List.of(
                () -> {
                    ran.add("broker");
                    throw new IllegalStateException("broker shutdown failed");
                },
                () -> ran.add("raft node"),
                () -> {
                    ran.add("release");
                    raft.release("g1");
                }));
            assertEquals(List.of("broker", "raft node", "release"), ran);
            assertEquals("broker shutdown failed", failed.getMessage());
            // The group was freed: another broker of it is admitted.
            raft.admit(settings("g1", "n0", port, null), "b.conf");
            assertNull(RaftBrokerContainer.stopInOrder(List.of(() -> { })));
        }
    }
}
