package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.transport.TransportOptions;
import dev.dledger.raft.transport.TransportOptions.ClientApi;
import java.util.Properties;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The broker's Raft security keys: raftSecret and the raftTls* stores. */
@Tag("in-process")
class RaftStoreSettingsSecurityTest {

    private static MessageStoreConfig store() {
        MessageStoreConfig store = new MessageStoreConfig();
        store.setStorePathRootDir("/tmp/rmqstore/node00");
        store.setdLegerGroup("RaftNode00");
        store.setdLegerPeers("n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913");
        store.setdLegerSelfId("n1");
        return store;
    }

    @Test
    void withoutKeysThePortTakesPeersFromTheirHostsOnlyAndServesNoClient() {
        RaftStoreSettings s = RaftStoreSettings.from(store(), new Properties());
        assertNull(s.secret());
        assertNull(s.tls());
        assertNull(s.adminToken());
        assertEquals(TransportOptions.defaults().withPeerHostsOnly(true).withClientApi(ClientApi.OFF),
            s.transportOptions());
        assertTrue(s.toString().contains("peers from their hosts only, not authenticated, admin requests off"),
            s.toString());
    }

    @Test
    void adminTokenWithTheSecretOpensTheAdminRequestsOnly() {
        Properties p = new Properties();
        p.setProperty("raftSecret", "broker-group-secret-42");
        p.setProperty("raftAdminToken", "admin-token-7");
        RaftStoreSettings s = RaftStoreSettings.from(store(), p);
        TransportOptions o = s.transportOptions();
        assertEquals(ClientApi.ADMIN, o.clientApi());
        assertEquals("admin-token-7", o.clientToken());
        assertTrue(o.peerHostsOnly());
        assertFalse(s.toString().contains("admin-token-7"), s.toString());
        Properties secretOnly = new Properties();
        secretOnly.setProperty("raftSecret", "broker-group-secret-42");
        assertEquals(ClientApi.OFF, RaftStoreSettings.from(store(), secretOnly).transportOptions().clientApi());
    }

    @Test
    void adminTokenWithoutSecretOrTooShortIsRefusedByName() {
        Properties noSecret = new Properties();
        noSecret.setProperty("raftAdminToken", "admin-token-7");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> RaftStoreSettings.from(store(), noSecret));
        assertEquals("raftAdminToken is set without raftSecret: the admin commands are served only on a port whose "
            + "peers prove the group secret; set raftSecret on every node too", e.getMessage());
        Properties shortToken = new Properties();
        shortToken.setProperty("raftSecret", "broker-group-secret-42");
        shortToken.setProperty("raftAdminToken", "abc");
        e = assertThrows(IllegalArgumentException.class, () -> RaftStoreSettings.from(store(), shortToken));
        assertEquals("raftAdminToken has 3 characters; use at least 8", e.getMessage());
    }

    @Test
    void metricsPortIsOffByDefaultAndCheckedByName() {
        assertEquals(0, RaftStoreSettings.from(store(), new Properties()).metricsPort());
        Properties p = new Properties();
        p.setProperty("raftMetricsPort", "40999");
        assertEquals(40999, RaftStoreSettings.from(store(), p).metricsPort());
        p.setProperty("raftMetricsPort", "70000");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> RaftStoreSettings.from(store(), p));
        assertEquals("raftMetricsPort=70000 is not a port (0 for off, up to 65535)", e.getMessage());
    }

    @Test
    void raftSecretReachesTheTransportAndStaysOutOfTheLog() {
        Properties p = new Properties();
        p.setProperty("raftSecret", "broker-group-secret-42");
        RaftStoreSettings s = RaftStoreSettings.from(store(), p);
        assertEquals("broker-group-secret-42", s.transportOptions().groupSecret());
        assertFalse(s.toString().contains("broker-group-secret-42"), s.toString());
    }

    @Test
    void badSecurityKeysAreRefusedByName() {
        Properties shortSecret = new Properties();
        shortSecret.setProperty("raftSecret", "abc");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> RaftStoreSettings.from(store(), shortSecret));
        assertTrue(e.getMessage().startsWith("raftSecret has 3 characters"), e.getMessage());
        Properties trustOnly = new Properties();
        trustOnly.setProperty("raftTlsTrustStore", "/tmp/trust.p12");
        e = assertThrows(IllegalArgumentException.class, () -> RaftStoreSettings.from(store(), trustOnly));
        assertTrue(e.getMessage().startsWith("raftTlsTrustStore is set but raftTlsKeyStore is not"), e.getMessage());
        Properties missing = new Properties();
        missing.setProperty("raftTlsKeyStore", "/nonexistent/node.p12");
        missing.setProperty("raftTlsKeyStorePassword", "pw");
        e = assertThrows(IllegalArgumentException.class, () -> RaftStoreSettings.from(store(), missing));
        assertTrue(e.getMessage().contains("/nonexistent/node.p12 is not a file"), e.getMessage());
    }
}
