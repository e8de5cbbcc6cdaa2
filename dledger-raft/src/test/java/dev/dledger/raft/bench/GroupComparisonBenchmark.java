package dev.dledger.raft.bench;

import dev.dledger.raft.cli.GroupBenchmark;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.server.FileNodeStorage;
import dev.dledger.raft.store.StoreConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Runs our group and DLedger 0.3.3.4 with the same closed-loop workload in one run and prints both lines and the
 * ratio. Only under the {@code benchmark} profile:
 *
 * <pre>
 * mvn -pl dledger-raft -P benchmark test -Dbench.threads=32 -Dbench.size=1024 -Dbench.warmup=60 -Dbench.seconds=30
 * </pre>
 */
class GroupComparisonBenchmark {

    @Test
    void ourGroupAgainstDLedger() throws Exception {
        int threads = Integer.getInteger("bench.threads", 32);
        int size = Integer.getInteger("bench.size", 1024);
        int warmup = Integer.getInteger("bench.warmup", 60);
        int seconds = Integer.getInteger("bench.seconds", 30);
        FlushMode flush = FlushMode.valueOf(System.getProperty("bench.flush", "async").toUpperCase());
        GroupBenchmark.Settings s = new GroupBenchmark.Settings(threads, size, warmup, seconds, flush);
        // Each run writes gigabytes: the folders go when it ends.
        Path dir = Files.createTempDirectory("dledger-baseline");
        GroupBenchmark.Result theirs;
        try {
            theirs = DLedgerBaseline.run(s, dir, 20911);
        } finally {
            deleteTree(dir);
        }
        System.out.println(theirs.line() + " system=dledger-0.3.3.4");
        Path ourDir = Files.createTempDirectory("dledger-ours");
        GroupBenchmark.Result ours;
        try {
            ours = GroupBenchmark.run(s,
                id -> new FileNodeStorage(ourDir.resolve("dledger-" + id), StoreConfig.defaults(), flush, 10));
        } finally {
            deleteTree(ourDir);
        }
        System.out.println(ours.line() + " system=ours");
        System.out.printf("ratio: tps %.2fx, our p99 %.2f ms vs their p50 %.2f ms%n", ours.tps() / theirs.tps(),
            ours.p99Ms(), theirs.p50Ms());
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
