package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.testing.FreePorts;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Pattern;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.PutMessageStatus;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A broker's Raft metrics on raftMetricsPort, and the runtime info that mqadmin brokerStatus prints. */
@Tag("in-process")
class RaftCommitLogMetricsTest {

    @TempDir
    Path dir;

    private static long sum(String text, String series) {
        return Pattern.compile(Pattern.quote(series) + "\\{[^}]*} (\\d+)").matcher(text).results()
            .mapToLong(m -> Long.parseLong(m.group(1))).sum();
    }

    @Test
    void metricsAreServedOnRaftMetricsPortAndTheRuntimeInfoNamesTheRaftLog() throws Exception {
        int port = FreePorts.take(1)[0];
        try (StoreGroup g = new StoreGroup(dir, 1)) {
            g.props.setProperty("raftMetricsPort", Integer.toString(port));
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            for (int i = 0; i < 5; i++) {
                assertEquals(PutMessageStatus.PUT_OK, s.putMessage(StoreGroup.message("M", 0, "m" + i))
                    .getPutMessageStatus());
            }
            RaftCommitLog log = StoreGroup.log(s);
            assertEquals(port, log.metricsPort());
            HttpClient http = HttpClient.newHttpClient();
            String[] text = {""};
            await("five commits in the metrics").atMost(Duration.ofSeconds(10)).until(() -> {
                text[0] = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
                return sum(text[0], "dledger_commit_latency_seconds_count") == 5;
            });
            String t = text[0];
            assertTrue(t.contains("dledger_role{group=\"g\",node=\"n0\",role=\"LEADER\"} 1"), t);
            assertEquals(5, sum(t, "dledger_append_latency_seconds_count"), t);
            assertTrue(sum(t, "dledger_commit_index") >= 5, t);
            assertTrue(sum(t, "dledger_elections_started_total") >= 1, t);
            assertTrue(t.contains("dledger_snapshots_sent_total{group=\"g\",node=\"n0\"} 0"), t);
            assertTrue(t.contains("dledger_snapshots_installed_total{group=\"g\",node=\"n0\"} 0"), t);
            assertTrue(t.contains("dledger_transport_refused_requests_total{"), t);

            Map<String, String> info = new HashMap<>();
            new RaftRuntimeInfo(log).buildRuntimeInfo(info);
            assertEquals(dir.resolve("n0").resolve("dledger-n0").toAbsolutePath().toString(), info.get("raftLogDir"));
            assertTrue(Long.parseLong(info.get("raftLogDiskBytes")) >= StoreGroup.FILE_SIZE, String.valueOf(info));
            assertEquals("LEADER", info.get("raftRole"));
            assertEquals(Integer.toString(port), info.get("raftMetricsPort"));
        }
    }
}
