package dev.dledger.raft.cli;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.transport.ClientProtocol;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code dledger demo}: a three-node group on loopback with its logs on disk; appends entries through the client,
 * reads every one back, kills the leader, shows a new leader taking writes, and checks nothing acknowledged was lost.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "Run a local three-node group, write and read, kill the leader, and check nothing is lost.")
final class DemoCommand implements Callable<Integer> {

    @Option(names = "--entries", defaultValue = "3000", description = "entries to append (default: ${DEFAULT-VALUE})")
    int entries;

    @Option(names = "--store-dir", description = "where the nodes keep their logs (default: a new temp folder)")
    Path storeDir;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Path dir = storeDir != null ? storeDir : Files.createTempDirectory("dledger-demo");
        try (LocalGroup g = LocalGroup.start("demo", new String[] {"n0", "n1", "n2"}, FlushMode.SYNC,
            BenchmarkCommand.onDisk(dir, FlushMode.SYNC))) {
            out.println("demo: three nodes on " + g.addresses().values() + ", logs in " + dir);
            try (RaftClient client = new RaftClient(g.group(), g.addresses(), 3000, 20)) {
                List<Long> indexes = new ArrayList<>();
                for (int i = 0; i < entries; i++) {
                    ClientProtocol.Response r = client.append(body(i)).get();
                    if (r.status() != ClientProtocol.Status.OK) {
                        spec.commandLine().getErr().println("error: append " + i + " answered " + r.status());
                        return 1;
                    }
                    indexes.add(r.index());
                    if ((i + 1) % 1000 == 0) {
                        out.println("  appended " + (i + 1) + " (leader " + client.leader() + ")");
                    }
                }
                int read = readBack(client, indexes);
                out.println("  read back " + read + " of " + entries);

                String leader = client.leader();
                long killedAt = System.nanoTime();
                out.println("  killing leader " + leader);
                g.kill(leader);
                ClientProtocol.Response after = client.append(body(entries)).get();
                long failoverMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killedAt);
                if (after.status() != ClientProtocol.Status.OK) {
                    spec.commandLine().getErr().println("error: no new leader took writes: " + after.status());
                    return 1;
                }
                indexes.add(after.index());
                out.println("  new leader " + client.leader() + " took a write " + failoverMs + " ms after the kill");
                int readAfter = readBack(client, indexes);
                int lost = indexes.size() - readAfter;
                out.println("demo: sent " + indexes.size() + ", read " + readAfter + ", lost " + lost + ", failover "
                    + failoverMs + " ms");
                return lost == 0 ? 0 : 1;
            }
        }
    }

    private static byte[] body(int i) {
        return ("demo-entry-" + i).getBytes(StandardCharsets.UTF_8);
    }

    private static int readBack(RaftClient client, List<Long> indexes) throws Exception {
        int ok = 0;
        for (int i = 0; i < indexes.size(); i++) {
            ClientProtocol.Response r = client.get(indexes.get(i)).get();
            if (r.status() == ClientProtocol.Status.OK && Arrays.equals(body(i), r.entry().data())) {
                ok++;
            }
        }
        return ok;
    }
}
