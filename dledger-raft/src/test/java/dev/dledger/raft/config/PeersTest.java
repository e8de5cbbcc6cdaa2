package dev.dledger.raft.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class PeersTest {

    @Test
    void parsesDLedgersPeerListInOrder() {
        var peers = Peers.parse("n0-localhost:20911;n1-127.0.0.1:20912;n2-localhost:20913");
        assertEquals(List.of("n0", "n1", "n2"), List.copyOf(peers.keySet()));
        assertEquals(20912, peers.get("n1").getPort());
    }

    @Test
    void badListsAreRefusedNamingTheItem() {
        assertMessage("", "empty");
        assertMessage("n0localhost:1", "bad peer 'n0localhost:1'");
        assertMessage("n0-localhost:x", "bad port in peer 'n0-localhost:x'");
        assertMessage("n0-localhost:70000", "out of range");
        assertMessage("n0-a:1;n0-b:2", "peer id 'n0' appears twice");
        assertMessage("n0-a:1;n1-a:1", "address a:1 appears twice");
    }

    private static void assertMessage(String peers, String part) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Peers.parse(peers));
        assertTrue(e.getMessage().contains(part), e.getMessage());
    }
}
