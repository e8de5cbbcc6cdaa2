package dev.dledger.raft.cli;

import dev.dledger.raft.server.FileNodeStorage;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.store.StoreConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code dledger benchmark}: closed-loop appends against an embedded three-node group on loopback. */
@Command(name = "benchmark", mixinStandardHelpOptions = true,
    description = "Appends from T threads (each waiting for its append, or with --pipeline N in flight) to an "
        + "embedded three-node group on loopback, on disk.")
final class BenchmarkCommand implements Callable<Integer> {

    @Option(names = "--threads", defaultValue = "32", description = "client threads (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--size", defaultValue = "1024", description = "bytes per append (default: ${DEFAULT-VALUE})")
    int size;

    @Option(names = "--seconds", defaultValue = "30", description = "measured seconds (default: ${DEFAULT-VALUE})")
    int seconds;

    @Option(names = "--warmup", defaultValue = "30", description = "warm-up seconds (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--pipeline", defaultValue = "1",
        description = "appends each thread keeps in flight; above 1 the threads do not wait for each append "
            + "(default: ${DEFAULT-VALUE})")
    int pipeline;

    @Option(names = "--flush", defaultValue = "async", description = "sync or async (default: ${DEFAULT-VALUE})")
    FlushMode flush;

    @Option(names = "--store-dir",
        description = "where the three nodes keep their logs (default: a new temp folder, deleted after the run)")
    Path storeDir;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (threads < 1 || size < 1 || seconds < 1 || warmup < 0 || pipeline < 1) {
            spec.commandLine().getErr().println(
                "error: --threads, --size, --seconds and --pipeline must be positive, --warmup >= 0");
            return 2;
        }
        Path dir = storeDir != null ? storeDir : Files.createTempDirectory("dledger-bench");
        GroupBenchmark.Settings s = new GroupBenchmark.Settings(threads, size, warmup, seconds, flush, pipeline);
        GroupBenchmark.Result r;
        try {
            r = GroupBenchmark.run(s, onDisk(dir, flush));
        } finally {
            if (storeDir == null) {
                // A folder of our own making holds gigabytes after a run: it goes with the run.
                deleteTree(dir);
            }
        }
        spec.commandLine().getOut().println(r.line());
        return r.errors() == 0 ? 0 : 1;
    }

    /** Each node's storage in {@code dir/dledger-<id>}, DLedger's file sizes, flushed as {@code flush} says. */
    static java.util.function.Function<String, dev.dledger.raft.server.NodeStorage> onDisk(Path dir, FlushMode flush) {
        return id -> new FileNodeStorage(dir.resolve("dledger-" + id), StoreConfig.defaults(), flush, 10);
    }

    private static void deleteTree(Path dir) throws java.io.IOException {
        try (java.util.stream.Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
