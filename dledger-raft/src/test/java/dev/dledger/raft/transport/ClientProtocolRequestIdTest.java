package dev.dledger.raft.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.transport.ClientProtocol.Request;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClientProtocolRequestIdTest {

    @Test
    void anAppendCarriesItsRequestIdOrNone() {
        List<byte[]> bodies = List.of(new byte[] {1, 2}, new byte[0]);
        Request with = ClientProtocol.decodeRequest(ClientProtocol.encode(Request.append(bodies,
            new RequestId(Long.MIN_VALUE, 99))));
        assertEquals(new RequestId(Long.MIN_VALUE, 99), with.requestId());
        assertEquals(2, with.bodies().size());
        assertArrayEquals(bodies.get(0), with.bodies().get(0));
        Request without = ClientProtocol.decodeRequest(ClientProtocol.encode(Request.append(bodies)));
        assertNull(without.requestId());
    }

    @Test
    void aTruncatedRequestIdIsRefused() {
        byte[] full = ClientProtocol.encode(Request.append(List.of(new byte[] {1}), new RequestId(5, 6)));
        CodecException e = assertThrows(CodecException.class,
            () -> ClientProtocol.decodeRequest(Arrays.copyOf(full, full.length - 3)));
        assertEquals(true, e.getMessage().contains("seq"), e.getMessage());
    }

    @Test
    void theExpiredStatusRoundTrips() {
        ClientProtocol.Response r = ClientProtocol.decodeResponse(ClientProtocol.encode(
            ClientProtocol.Response.of(ClientProtocol.Status.EXPIRED, "n1")));
        assertEquals(ClientProtocol.Status.EXPIRED, r.status());
        assertEquals("n1", r.leaderHint());
    }
}
