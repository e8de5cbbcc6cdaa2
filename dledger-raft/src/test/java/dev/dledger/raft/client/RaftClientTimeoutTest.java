package dev.dledger.raft.client;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.transport.NettyTransport;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class RaftClientTimeoutTest {

    @Test
    void anUnansweredRequestFailsAfterTheRequestTimeoutAsMaybeSent() throws Exception {
        try (NettyTransport node = new NettyTransport(new InetSocketAddress("127.0.0.1", 0), 1,
            NettyTransport.DEFAULT_MAX_FRAME_BYTES)) {
            node.register("g", "n0", m -> { });
            // A node that takes every request and never answers.
            node.serveRequests("g", body -> new CompletableFuture<>());
            try (RaftClient client = new RaftClient("g", Map.of("n0", node.localAddress()), 300, 1)) {
                long start = System.nanoTime();
                CompletableFuture<?> f = client.append(new byte[] {1});
                ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(10, TimeUnit.SECONDS));
                long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                RaftClient.ClientException ce = assertInstanceOf(RaftClient.ClientException.class, e.getCause());
                assertTrue(ce.maybeSent(), "an unanswered request may have been taken: " + ce.getMessage());
                assertTrue(ce.getMessage().contains("no answer"), ce.getMessage());
                assertTrue(tookMs >= 300, "failed after " + tookMs + " ms, before the 300 ms timeout");
            }
        }
    }
}
