package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.transport.TransportOptions;
import java.util.Properties;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.junit.jupiter.api.Test;

/** The broker's Raft security keys: raftSecret and the raftTls* stores. */
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
    void withoutKeysPeersAreNotAuthenticatedAsInStockDledger() {
        RaftStoreSettings s = RaftStoreSettings.from(store(), new Properties());
        assertNull(s.secret());
        assertNull(s.tls());
        assertEquals(TransportOptions.defaults(), s.transportOptions());
        assertTrue(s.toString().contains("peers not authenticated"), s.toString());
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
