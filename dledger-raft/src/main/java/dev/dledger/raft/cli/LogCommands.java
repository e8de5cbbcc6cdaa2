package dev.dledger.raft.cli;

import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.store.StoreCorruptedException;
import dev.dledger.raft.store.StoreIoException;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code dledger log verify|dump}: inspect a store on disk, ours or stock DLedger's, without a running node. */
@Command(name = "log", mixinStandardHelpOptions = true, description = "Inspect a log store on disk.",
    subcommands = {LogCommands.Verify.class, LogCommands.Dump.class})
final class LogCommands implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }

    /** Options shared by the log commands. */
    abstract static class Base implements Callable<Integer> {
        @Option(names = "--dir", required = true, description = "the folder that holds data/ and index/")
        Path dir;

        @Option(names = "--data-paths", paramLabel = "DIR[,DIR...]", description = "the data folders of a multi-path "
            + "store, DLedger's dataStorePath (default: DIR/data)")
        String dataPaths;

        @Option(names = "--read-only-dirs", paramLabel = "DIR[,DIR...]", description = "folders of read-only data "
            + "files, DLedger's readOnlyDataStoreDirs (default: none)")
        String readOnlyDirs;

        @Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter err = spec.commandLine().getErr();
            List<Path> data;
            List<Path> readOnly;
            try {
                data = StoreConfig.splitPaths(dataPaths);
                readOnly = StoreConfig.splitPaths(readOnlyDirs);
            } catch (IllegalArgumentException e) {
                err.println("error: " + e.getMessage());
                return 2;
            }
            if (!Files.isDirectory(dir.resolve("index"))) {
                err.println("error: " + dir + " is not a store: it must hold index/ and data/ (or the folders of "
                    + "--data-paths); for stock DLedger, the dledger-<selfId> folder");
                return 2;
            }
            List<Path> folders = new ArrayList<>(data.isEmpty() ? List.of(dir.resolve("data")) : data);
            folders.addAll(readOnly);
            for (Path folder : folders) {
                if (!Files.isDirectory(folder)) {
                    err.println("error: data folder " + folder + " of store " + dir + " does not exist"
                        + (data.isEmpty() ? " (a multi-path store needs --data-paths)" : ""));
                    return 2;
                }
            }
            StoreConfig layout = StoreConfig.lean().withDataStorePaths(data).withReadOnlyDataStoreDirs(readOnly);
            try (SegmentedLogStore store = SegmentedLogStore.open(dir, StoreConfig.detect(dir, layout))) {
                return run(store, spec.commandLine().getOut());
            } catch (StoreCorruptedException | StoreIoException e) {
                err.println("error: " + e.getMessage());
                return 1;
            } catch (IOException e) {
                err.println("error: cannot read " + dir + ": " + e.getMessage());
                return 1;
            }
        }

        abstract int run(SegmentedLogStore store, PrintWriter out);
    }

    @Command(name = "verify", mixinStandardHelpOptions = true,
        description = "Check every entry, index unit and chain CRC; exit 1 naming the first problem.")
    static final class Verify extends Base {
        @Override
        int run(SegmentedLogStore store, PrintWriter out) {
            SegmentedLogStore.VerifyReport r = store.verify();
            if (r.problem() != null) {
                spec.commandLine().getErr().println("verify: " + r.entries() + " entries checked, then: " + r.problem());
                return 1;
            }
            if (r.stockQuirks() > 0) {
                out.println("note: " + r.stockQuirks() + " entries before index " + store.crcFrom()
                    + " carry stock DLedger's quirks (no CRCs, NOOP index magic); tolerated");
            }
            out.println("verify: " + r.entries() + " entries, indexes " + r.first() + ".." + r.last() + ", OK");
            if (!r.types().isEmpty()) {
                StringBuilder types = new StringBuilder("types:");
                for (dev.dledger.raft.core.EntryType t : dev.dledger.raft.core.EntryType.values()) {
                    types.append(' ').append(t).append('=').append(r.types().getOrDefault(t, 0L));
                }
                out.println(types);
            }
            return 0;
        }
    }

    @Command(name = "dump", mixinStandardHelpOptions = true,
        description = "Print one line per entry: index, term, pos, size, body CRC, type.")
    static final class Dump extends Base {
        @Option(names = "--from", description = "first index (default: the first entry)")
        Long from;

        @Option(names = "--count", defaultValue = "100", description = "entries to print (default: ${DEFAULT-VALUE})")
        long count;

        @Override
        int run(SegmentedLogStore store, PrintWriter out) {
            long start = from == null ? store.firstIndex() : from;
            if (start < store.firstIndex() || start > store.lastIndex() + 1) {
                spec.commandLine().getErr().println("error: --from " + start + " is outside the log "
                    + store.firstIndex() + ".." + store.lastIndex());
                return 2;
            }
            for (long i = start; i <= store.lastIndex() && i < start + count; i++) {
                SegmentedLogStore.EntryInfo e = store.info(i);
                out.printf("index=%d term=%d pos=%d size=%d bodyCrc=%08x type=%s%n", e.index(), e.term(), e.pos(),
                    e.size(), e.bodyCrc(), e.type());
            }
            return 0;
        }
    }
}
