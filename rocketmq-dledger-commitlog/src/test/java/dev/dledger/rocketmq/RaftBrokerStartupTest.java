package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.server.FlushMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import org.apache.rocketmq.common.BrokerConfig;
import org.apache.rocketmq.remoting.netty.NettyServerConfig;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The launcher reads broker.conf as the stock broker does and refuses a bad Raft config with one line naming the key. */
@Tag("in-process")
class RaftBrokerStartupTest {

    @TempDir
    Path dir;

    private BrokerConfig broker = new BrokerConfig();
    private final MessageStoreConfig store = new MessageStoreConfig();
    private final NettyServerConfig server = new NettyServerConfig();
    private final Properties props = new Properties();

    RaftBrokerStartupTest() {
        broker.setNamesrvAddr("127.0.0.1:9876");
        server.setListenPort(30911);
        // As BrokerStartup reads a config file: no haListenPort unless set, then listenPort + 1.
        store.setHaListenPort(0);
        store.setStorePathRootDir("/tmp/rmqstore/node00");
        store.setdLegerGroup("RaftNode00");
        store.setdLegerPeers("n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913");
        store.setdLegerSelfId("n1");
    }

    private String refusal() {
        return assertThrows(IllegalArgumentException.class, () -> RaftBrokerStartup.check(broker, store, server, props))
            .getMessage();
    }

    @Test
    void aGoodConfigGivesTheSettingsWithStockKeysAndOurDefaults() {
        RaftStoreSettings s = RaftBrokerStartup.check(broker, store, server, props);
        assertEquals("RaftNode00", s.group());
        assertEquals(1, s.selfIndex(), "brokerId of a follower is selfIndex + 1");
        assertEquals(40912, s.selfAddress().getPort());
        assertEquals(Path.of("/tmp/rmqstore/node00", "dledger-n1"), s.dir(), "where stock DLedger mode keeps it");
        assertEquals(FlushMode.ASYNC, s.flush());
        assertEquals(3000, s.appendTimeoutMs());
        assertEquals(300, s.electionTimeoutMs());
        props.setProperty("raftFlushMode", "sync");
        assertEquals(FlushMode.SYNC, RaftBrokerStartup.check(broker, store, server, props).flush());
    }

    @Test
    void eachBadKeyIsNamed() {
        store.setdLegerSelfId("n7");
        assertTrue(refusal().startsWith("dLegerSelfId=n7 is not among dLegerPeers"), refusal());
        store.setdLegerSelfId("n1");

        store.setdLegerPeers("n0-127.0.0.1:40911;n1-127.0.0.1:40911;n2-127.0.0.1:40913");
        assertTrue(refusal().startsWith("dLegerPeers:") && refusal().contains("appears twice"), refusal());
        store.setdLegerPeers("n0-127.0.0.1:40911;n1-127.0.0.1;n2-127.0.0.1:40913");
        assertTrue(refusal().startsWith("dLegerPeers:"), refusal());
        store.setdLegerPeers("n0-127.0.0.1:30911;n1-127.0.0.1:30911x");
        assertTrue(refusal().startsWith("dLegerPeers:"), refusal());
        store.setdLegerPeers("n0-127.0.0.1:40911;n1-127.0.0.1:30911;n2-127.0.0.1:40913");
        assertTrue(refusal().contains("which is also listenPort"), refusal());
        store.setdLegerPeers("n0-127.0.0.1:40911;n1-127.0.0.1:30912;n2-127.0.0.1:40913");
        assertTrue(refusal().contains("which is also haListenPort"), refusal());
        store.setdLegerPeers("n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913");

        props.setProperty("raftFlushMode", "sometimes");
        assertEquals("raftFlushMode=sometimes must be sync or async", refusal());
        props.setProperty("raftFlushMode", "async");
        props.setProperty("raftAppendTimeoutMs", "-5");
        assertEquals("raftAppendTimeoutMs=-5 must be positive", refusal());
        props.remove("raftAppendTimeoutMs");

        store.setPreferredLeaderId("n9");
        assertTrue(refusal().startsWith("preferredLeaderId=n9 is not among dLegerPeers"), refusal());
        store.setPreferredLeaderId(null);

        store.setdLegerGroup(null);
        assertTrue(refusal().startsWith("dLegerGroup is missing"), refusal());
        store.setdLegerGroup("RaftNode00");

        broker.setEnableControllerMode(true);
        assertTrue(refusal().startsWith("enableControllerMode=true cannot be combined"), refusal());
        broker = new BrokerConfig();
        assertTrue(refusal().startsWith("namesrvAddr is missing"), refusal());
    }

    @Test
    void theRocketMqOnTheClasspathIsTheSupportedOne() {
        RaftBrokerStartup.checkRocketMqVersion();
        assertEquals("5.5.1", RaftBrokerStartup.SUPPORTED_ROCKETMQ);
    }

    @Test
    void anUntestedRocketMqIsRefusedInOneLineNamingTheSupportedVersion() {
        Map<String, String> found = new LinkedHashMap<>();
        found.put("rocketmq-broker", "5.5.1");
        found.put("rocketmq-store", null);
        found.put("MQVersion", "V5_5_1");
        assertNull(RaftBrokerStartup.versionProblem(found), "5.5.1 everywhere, one jar without a version");
        found.put("rocketmq-store", "5.4.0");
        assertEquals("RocketMQ on the classpath is not the supported one: rocketmq-store is 5.4.0; this launcher "
            + "supports RocketMQ 5.5.1 only (rocketmq-broker, rocketmq-store, rocketmq-common and rocketmq-remoting "
            + "5.5.1)", RaftBrokerStartup.versionProblem(found));
        found.put("rocketmq-store", "5.5.1");
        found.put("MQVersion", "V5_6_0");
        String said = RaftBrokerStartup.versionProblem(found);
        assertTrue(said.contains("MQVersion is V5_6_0") && said.contains("5.5.1 only") && !said.contains("\n"), said);
    }

    @Test
    void withoutTheRaftFlagTheLauncherLeavesTheBrokerToStock() throws Exception {
        Path conf = dir.resolve("broker.conf");
        Files.writeString(conf, "brokerName=b\nnamesrvAddr=127.0.0.1:9876\nenableDLegerCommitLog=false\n");
        assertNull(RaftBrokerStartup.create(new String[] {"-c", conf.toString()}),
            "no Raft broker: main() hands over to the stock BrokerStartup");
    }
}
