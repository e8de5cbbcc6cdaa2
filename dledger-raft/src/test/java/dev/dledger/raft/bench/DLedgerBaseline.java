package dev.dledger.raft.bench;

import dev.dledger.raft.cli.GroupBenchmark;
import io.openmessaging.storage.dledger.DLedgerConfig;
import io.openmessaging.storage.dledger.DLedgerServer;
import io.openmessaging.storage.dledger.MemberState;
import io.openmessaging.storage.dledger.client.DLedgerClient;
import io.openmessaging.storage.dledger.protocol.DLedgerResponseCode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The same closed-loop workload against openmessaging DLedger 0.3.3.4: three servers in this JVM on loopback, its
 * file store, its {@code DLedgerClient}, synchronous appends. Its defaults are kept, as stock RocketMQ runs it.
 */
final class DLedgerBaseline {

    private DLedgerBaseline() {
    }

    static GroupBenchmark.Result run(GroupBenchmark.Settings s, Path dir, int basePort) throws Exception {
        String group = "bench";
        String peers = "n0-localhost:" + basePort + ";n1-localhost:" + (basePort + 1) + ";n2-localhost:"
            + (basePort + 2);
        List<DLedgerServer> servers = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                DLedgerConfig c = new DLedgerConfig();
                c.setGroup(group);
                c.setSelfId("n" + i);
                c.setPeers(peers);
                c.setStoreBaseDir(dir.resolve("n" + i).toString());
                c.setStoreType(DLedgerConfig.FILE);
                c.setEnableDiskForceClean(false);
                DLedgerServer server = new DLedgerServer(c);
                server.startup();
                servers.add(server);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (servers.stream().noneMatch(v -> v.getMemberState().getRole() == MemberState.Role.LEADER)) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("DLedger elected no leader within 30 s");
                }
                TimeUnit.MILLISECONDS.sleep(50);
            }
            DLedgerClient client = new DLedgerClient(group, peers);
            client.startup();
            try {
                return GroupBenchmark.measure(s,
                    body -> client.append(body).getCode() == DLedgerResponseCode.SUCCESS.getCode());
            } finally {
                client.shutdown();
            }
        } finally {
            for (DLedgerServer server : servers) {
                server.shutdown();
            }
        }
    }
}
