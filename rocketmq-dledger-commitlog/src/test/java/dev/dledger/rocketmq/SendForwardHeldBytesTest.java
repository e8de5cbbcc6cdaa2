package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** What a broker holds of sends waiting for a master is bounded: a send that would pass the bound is not held. */
class SendForwardHeldBytesTest {

    @Test
    void aSendThatWouldPassTheBoundIsNotCountedAndOneThatFitsAfterAReleaseIs() {
        SendForwardGuard.HeldBytes held = new SendForwardGuard.HeldBytes(1000);
        assertTrue(held.tryHold(600));
        assertFalse(held.tryHold(401), "600 + 401 passes 1000");
        assertEquals(600, held.held(), "a refused send is not counted");
        assertTrue(held.tryHold(400), "600 + 400 is the bound, allowed");
        held.release(600);
        assertEquals(400, held.held());
        assertTrue(held.tryHold(600));
        assertFalse(held.tryHold(1));
    }
}
