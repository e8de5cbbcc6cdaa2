package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.core.Membership;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a broker makes of its broker.conf once the group changed its members (replace a broker online). */
@Tag("in-process")
class RaftMembershipSettingsTest {

    @TempDir
    Path dir;

    private RaftStoreSettings settings(String self, String peers, Properties props) {
        MessageStoreConfig c = new MessageStoreConfig();
        c.setStorePathRootDir(dir.resolve("root").toString());
        c.setdLegerGroup("g");
        c.setdLegerPeers(peers);
        c.setdLegerSelfId(self);
        return RaftStoreSettings.from(c, props);
    }

    @Test
    void theLogsMembershipWinsOverAStaleDLegerPeers() {
        RaftStoreSettings n0 = settings("n0", "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913",
            new Properties());
        Membership agreed = Membership.of("n0", "n2").with("n3", "127.0.0.2:40914");
        Map<String, InetSocketAddress> peers = RaftCommitLog.peerAddresses(n0, agreed);
        assertEquals(List.of("n0", "n2", "n3"), List.copyOf(new java.util.TreeSet<>(peers.keySet())),
            "n1 was removed: its frames are refused; n3 was added: it is reached");
        assertEquals(new InetSocketAddress("127.0.0.2", 40914), peers.get("n3"), "at the address member add recorded");
        assertEquals(new InetSocketAddress("127.0.0.1", 40913), peers.get("n2"), "an address the log lacks: broker.conf's");
    }

    @Test
    void aJoiningBrokerKnowingNoMembershipTalksToItsDLegerPeers() {
        Properties p = new Properties();
        p.setProperty("raftJoin", "true");
        RaftStoreSettings n3 = settings("n3", "n0-127.0.0.1:40911;n2-127.0.0.1:40913;n3-127.0.0.1:40914", p);
        assertTrue(n3.join());
        assertEquals(n3.peers(), RaftCommitLog.peerAddresses(n3, Membership.EMPTY));
        assertFalse(settings("n0", "n0-127.0.0.1:40911", new Properties()).join());
        p.setProperty("raftJoin", "yes");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> settings("n3", "n0-127.0.0.1:40911;n3-127.0.0.1:40914", p));
        assertEquals("raftJoin=yes must be true or false", e.getMessage());
    }

    @Test
    void brokerIdFollowsTheIdNotThePositionInDLegerPeers() {
        // n3's conf lists the group as it will be (n0, n2, n3): by position it would be brokerId 3, n2's.
        RaftStoreSettings n3 = settings("n3", "n0-127.0.0.1:40911;n2-127.0.0.1:40913;n3-127.0.0.1:40914",
            new Properties());
        assertEquals(3, n3.selfIndex(), "brokerId 4");
        RaftStoreSettings n2 = settings("n2", "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913",
            new Properties());
        assertEquals(2, n2.selfIndex(), "brokerId 3, as before");
    }

    @Test
    void theBootstrapMembershipCarriesTheConfiguredAddresses() {
        RaftStoreSettings n0 = settings("n0", "n0-127.0.0.1:40911;n1-host1:40912", new Properties());
        Membership m = RaftCommitLog.configuredMembership(n0);
        assertEquals(List.of("n0", "n1"), m.voters());
        assertEquals("host1:40912", m.address("n1"));
    }
}
