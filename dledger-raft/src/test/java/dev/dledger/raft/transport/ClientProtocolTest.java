package dev.dledger.raft.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.transport.ClientProtocol.Op;
import dev.dledger.raft.transport.ClientProtocol.Request;
import dev.dledger.raft.transport.ClientProtocol.Response;
import dev.dledger.raft.transport.ClientProtocol.Status;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The client protocol's codec: every op survives a round trip, and malformed bodies are refused by name. */
class ClientProtocolTest {

    @Test
    void queryRequestRoundTripsWithItsLeaseFlag() {
        byte[] q = "key".getBytes(StandardCharsets.UTF_8);
        for (boolean lease : new boolean[] {false, true}) {
            Request back = ClientProtocol.decodeRequest(ClientProtocol.encode(Request.query(q, lease)));
            assertEquals(Op.QUERY, back.op());
            assertEquals(lease ? 1 : 0, back.number());
            assertEquals(1, back.bodies().size());
            assertArrayEquals(q, back.bodies().get(0));
        }
        Request empty = ClientProtocol.decodeRequest(ClientProtocol.encode(Request.query(new byte[0], false)));
        assertEquals(0, empty.bodies().get(0).length);
    }

    @Test
    void responseCarriesAQueryResultOrNone() {
        byte[] answer = "value".getBytes(StandardCharsets.UTF_8);
        Response withResult = new Response(Status.OK, "n1", -1, -1, new long[0], null, -1, null, List.of(), answer);
        Response back = ClientProtocol.decodeResponse(ClientProtocol.encode(withResult));
        assertEquals(Status.OK, back.status());
        assertEquals("n1", back.leaderHint());
        assertArrayEquals(answer, back.result());

        Response emptyResult = new Response(Status.OK, null, -1, -1, new long[0], null, -1, null, List.of(),
            new byte[0]);
        assertArrayEquals(new byte[0], ClientProtocol.decodeResponse(ClientProtocol.encode(emptyResult)).result());

        Response none = Response.of(Status.NOT_FOUND, "n2");
        Response noneBack = ClientProtocol.decodeResponse(ClientProtocol.encode(none));
        assertEquals(Status.NOT_FOUND, noneBack.status());
        assertNull(noneBack.result());
    }

    @Test
    void theOtherOpsStillRoundTrip() {
        Request append = ClientProtocol.decodeRequest(ClientProtocol.encode(Request.append(List.of(new byte[] {1, 2},
            new byte[] {3}))));
        assertEquals(Op.APPEND, append.op());
        assertArrayEquals(new byte[] {3}, append.bodies().get(1));
        assertEquals(7, ClientProtocol.decodeRequest(ClientProtocol.encode(Request.get(7))).number());
        assertEquals(1, ClientProtocol.decodeRequest(ClientProtocol.encode(Request.readIndex(true))).number());
        assertEquals("n3", ClientProtocol.decodeRequest(ClientProtocol.encode(
            Request.peerOp(Op.TRANSFER, "n3"))).peer());
        Response meta = new Response(Status.OK, "n0", 5, 2, new long[] {48, 96}, null, 9, "LEADER",
            List.of(new ClientProtocol.PeerLag("n1", 4)));
        Response metaBack = ClientProtocol.decodeResponse(ClientProtocol.encode(meta));
        assertEquals(9, metaBack.lastIndex());
        assertEquals("LEADER", metaBack.role());
        assertEquals(List.of(new ClientProtocol.PeerLag("n1", 4)), metaBack.followers());
        assertTrue(Arrays.equals(new long[] {48, 96}, metaBack.positions()));
        assertNull(metaBack.result());
    }

    @Test
    void malformedQueriesAreRefusedByName() {
        byte[] good = ClientProtocol.encode(Request.query("abc".getBytes(StandardCharsets.UTF_8), false));
        CodecException cut = assertThrows(CodecException.class,
            () -> ClientProtocol.decodeRequest(Arrays.copyOf(good, good.length - 1)));
        assertTrue(cut.getMessage().contains("query"), cut.getMessage());
        CodecException noBody = assertThrows(CodecException.class,
            () -> ClientProtocol.decodeRequest(Arrays.copyOf(good, 9)));
        assertTrue(noBody.getMessage().contains("query"), noBody.getMessage());
        byte[] trailing = Arrays.copyOf(good, good.length + 1);
        assertThrows(CodecException.class, () -> ClientProtocol.decodeRequest(trailing));

        byte[] resp = ClientProtocol.encode(new Response(Status.OK, null, -1, -1, new long[0], null, -1, null,
            List.of(), new byte[] {1, 2, 3}));
        CodecException cutResult = assertThrows(CodecException.class,
            () -> ClientProtocol.decodeResponse(Arrays.copyOf(resp, resp.length - 1)));
        assertTrue(cutResult.getMessage().contains("query result"), cutResult.getMessage());
    }
}
