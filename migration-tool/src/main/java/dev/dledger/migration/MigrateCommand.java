package dev.dledger.migration;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code dledger-migrate}: moves a master/slave RocketMQ store under the Raft log. Subcommands {@code check},
 * {@code plan}, {@code convert}, {@code verify} and {@code export} (the way back). Exit status: 0 done (or safe),
 * 1 unsafe or a difference found, 2 bad input (one line on stderr says what and where; nothing was changed).
 */
@Command(name = "dledger-migrate", mixinStandardHelpOptions = true, version = "dledger-migrate 0.1.0",
    description = "Moves a master/slave RocketMQ store (CommitLog, ConsumeQueues, config) under the Raft log.",
    subcommands = {MigrateCommand.Check.class, MigrateCommand.Plan.class, MigrateCommand.Convert.class,
        MigrateCommand.Verify.class, MigrateCommand.Export.class})
public final class MigrateCommand implements Callable<Integer> {

    /** Exit status: done, or safe to migrate. */
    public static final int EXIT_OK = 0;
    /** Exit status: the migration would be unsafe, or verify found a difference. */
    public static final int EXIT_UNSAFE = 1;
    /** Exit status: bad input. */
    public static final int EXIT_BAD_INPUT = 2;

    @Override
    public Integer call() {
        new CommandLine(this).usage(System.out);
        return EXIT_BAD_INPUT;
    }

    /** Runs the command line and exits with its status. */
    public static void main(String[] args) {
        System.exit(run(System.out, System.err, args));
    }

    /** Runs the command line with the given streams; returns the exit status (never exits the JVM). */
    public static int run(PrintStream out, PrintStream err, String... args) {
        CommandLine cl = new CommandLine(new MigrateCommand()).setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOut(new java.io.PrintWriter(out, true));
        cl.setErr(new java.io.PrintWriter(err, true));
        cl.setExecutionExceptionHandler((e, c, parsed) -> {
            if (e instanceof MigrationException m) {
                err.println("dledger-migrate: " + m.getMessage());
                return m.exitCode();
            }
            err.println("dledger-migrate: " + e);
            return EXIT_BAD_INPUT;
        });
        cl.setParameterExceptionHandler((e, a) -> {
            err.println("dledger-migrate: " + e.getMessage());
            return EXIT_BAD_INPUT;
        });
        for (CommandLine sub : cl.getSubcommands().values()) {
            ((Sub) sub.getCommand()).streams(out, err);
        }
        return cl.execute(args);
    }

    /** Output streams of a subcommand. */
    abstract static class Sub implements Callable<Integer> {
        PrintStream out = System.out;
        PrintStream err = System.err;

        void streams(PrintStream o, PrintStream e) {
            this.out = o;
            this.err = e;
        }
    }

    /** {@code check}: reads the stores, changes nothing, says whether migrating is safe. */
    @Command(name = "check", mixinStandardHelpOptions = true,
        description = "Reads the master's (and slave's) store without changing it; exits 1 with the reason when "
            + "migration would be unsafe.")
    static final class Check extends Sub {
        @Option(names = "--master", required = true, description = "the master's store root (storePathRootDir)")
        Path master;
        @Option(names = "--slave", description = "the slave's store root")
        Path slave;

        @Override
        public Integer call() {
            StoreCheck c = new StoreCheck(out);
            ClassicStore.Scan m = c.checkStore("master", master);
            if (m == null) {
                return EXIT_OK;
            }
            if (slave != null) {
                ClassicStore.Scan s = c.checkStore("slave", slave);
                if (s == null) {
                    throw new MigrationException("slave " + slave + " is a DLedger-mode store, the master is not");
                }
                c.comparePrefix(master, m, slave, s);
            }
            for (String w : c.warnings) {
                out.println("warning: " + w);
            }
            if (!c.problems.isEmpty()) {
                for (String p : c.problems) {
                    out.println("UNSAFE: " + p);
                }
                err.println("dledger-migrate: migration would be unsafe: " + c.problems.get(0));
                return EXIT_UNSAFE;
            }
            out.println("safe to migrate: bridge (every node gets these files) or rewrite (one node gets the history)");
            return EXIT_OK;
        }
    }

    /** The options of a conversion, shared by {@code plan} and {@code convert}. */
    static class Target extends Sub {
        @Option(names = "--from", description = "the source store root (the master's); a rewrite node other than "
            + "--seed may leave it out, and then receives the history by replication")
        Path from;
        @Option(names = "--to", required = true, description = "the target store root: the broker's "
            + "storePathRootDir, empty or new")
        Path to;
        @Option(names = "--group", required = true, description = "the Raft group (dLegerGroup)")
        String group;
        @Option(names = "--peers", required = true, description = "dLegerPeers: n0-host:port;n1-host:port;...")
        String peers;
        @Option(names = "--self-id", required = true, description = "this node (dLegerSelfId)")
        String selfId;
        @Option(names = "--mode", required = true, description = "bridge or rewrite")
        Converter.Mode mode;
        @Option(names = "--seed", description = "rewrite: the node that holds the history (default: --self-id)")
        String seed;
        @Option(names = "--link", description = "bridge: hard-link the sealed CommitLog files instead of copying")
        boolean link;
        @Option(names = "--data-file-size", description = "rewrite: Raft data file size in bytes "
            + "(must be the broker's mappedFileSizeCommitLog; default: the source's CommitLog file size, or 1 GiB "
            + "without --from)")
        int dataFileSize;
        @Option(names = "--index-hash-slots", defaultValue = "5000000",
            description = "rewrite: maxHashSlotNum of the broker (default ${DEFAULT-VALUE})")
        int indexSlots;
        @Option(names = "--index-max-items", defaultValue = "20000000",
            description = "rewrite: maxIndexNum of the broker (default ${DEFAULT-VALUE})")
        int indexItems;
        @Option(names = "--live", description = "rewrite: the master may still be running; convert its sealed "
            + "CommitLog files now, then stop it and run the same convert without --live for the rest")
        boolean live;

        Converter.Options options() {
            return new Converter.Options(from, to, group, peers, selfId, seed, mode, link, dataFileSize, indexSlots,
                indexItems, live);
        }

        @Override
        public Integer call() {
            throw new IllegalStateException("not a command");
        }
    }

    /** {@code plan}: the dry run. */
    @Command(name = "plan", mixinStandardHelpOptions = true,
        description = "Prints every step of the conversion, the disk space it needs and the target layout; changes "
            + "nothing.")
    static final class Plan extends Target {
        @Override
        public Integer call() {
            Converter.Options o = options();
            boolean joining = mode == Converter.Mode.REWRITE && seed != null && !seed.equals(selfId) && from == null;
            out.printf("plan: %s %s into %s as node %s of group %s (peers %s)%n", mode.name().toLowerCase(Locale.ROOT),
                from == null ? "(no source)" : from, to, selfId, group, peers);
            if (Files.exists(to) && !Files.isDirectory(to)) {
                throw new MigrationException("target " + to + " is a file, not a folder");
            }
            if (joining) {
                out.printf("1. write %s/dledger-%s: the first entry of %s (term 1), vote for %s%n", to, selfId, seed,
                    seed);
                out.printf("2. copy %s/config/*.json%n", from == null ? "(nothing: no --from)" : from);
                if (from == null) {
                    out.println(Converter.noConfigWarning(selfId));
                }
                out.printf("disk space: about %d bytes until replication%n", 2L * (1 << 20));
                out.printf("then: start the broker; %s replicates the history to it%n", seed);
                return EXIT_OK;
            }
            if (from == null) {
                throw new MigrationException("--from is required");
            }
            try (ClassicStore s = ClassicStore.open(from)) {
                ClassicStore.Scan scan = s.scan();
                long cq = Converter.treeBytes(from.resolve(ClassicStore.CONSUMEQUEUE));
                long idx = Converter.treeBytes(from.resolve(ClassicStore.INDEX));
                long cfg = Converter.treeBytes(from.resolve(ClassicStore.CONFIG));
                out.printf("source: %d messages, %d bytes in %d CommitLog files of %d, offsets [%d, %d); "
                    + "clean shutdown: %s; in use: %s%n", scan.messages(), scan.bytes(), s.files().size(),
                    s.fileSize(), scan.minOffset(), scan.endOffset(), s.cleanShutdown(), ClassicStore.inUse(from));
                if (mode == Converter.Mode.BRIDGE) {
                    long cl = link ? s.fileSize() : s.fileBytes();
                    out.printf("1. %s %d CommitLog files to %s/commitlog%s%n", link ? "hard-link" : "copy",
                        s.files().size(), to, link ? " (the last one copied: the broker pads it)" : "");
                    out.printf("2. copy consumequeue/ (%d bytes), index/ (%d), config/ (%d), checkpoint%n", cq, idx,
                        cfg);
                    out.printf("3. on its first start the broker recovers the old files, pads the last one and "
                        + "starts the Raft log at offset %d%n", s.files().lastKey() + s.fileSize());
                    out.printf("disk space: %d bytes%n", cl + cq + idx + cfg);
                    out.printf("target layout: %s/{commitlog,consumequeue,index,config,checkpoint}, later "
                        + "dledger-%s/{data,index}%n", to, selfId);
                } else {
                    int fileSize = dataFileSize > 0 ? dataFileSize : s.fileSize();
                    long entries = scan.bytes() + 48L * (scan.messages() + 2) + 64;
                    long files = (entries + fileSize - 1) / fileSize;
                    long index = (long) (40 + 4L * indexSlots + 20L * indexItems) * Math.max(1,
                        (scan.messages() * 3 + indexItems - 1) / indexItems);
                    out.printf("1. write %d Raft entries (term 1) to %s/dledger-%s/data: a CONFIG entry of %s, "
                        + "the messages with their new physical offsets, a CONFIG entry of all peers%n",
                        scan.messages() + 2, to, selfId, seed == null ? selfId : seed);
                    out.printf("2. rebuild consumequeue/ with the same queue offsets and index/%n");
                    out.printf("3. copy config/ (%d bytes: topics, subscription groups, consumer offsets)%n", cfg);
                    out.printf("4. record term 1, a vote for %s and the committed index %d%n",
                        seed == null ? selfId : seed, scan.messages());
                    out.printf("disk space: about %d bytes (%d data files, queues %d, index files up to %d)%n",
                        files * fileSize + cq + index + cfg, files, cq, index);
                    out.printf("target layout: %s/{dledger-%s/{data,index,currterm,checkpoint},consumequeue,index,"
                        + "config}%n", to, selfId);
                    out.printf("other nodes: convert --mode rewrite --from <the same source> --seed %s --self-id <id> "
                        + "on each: every node gets the same log and starts with the whole history (without --from a "
                        + "node would receive it by replication before the first send)%n", seed == null ? selfId : seed);
                }
            }
            return EXIT_OK;
        }
    }

    /** {@code convert}. */
    @Command(name = "convert", mixinStandardHelpOptions = true,
        description = "Converts a store for one node of the Raft group (never writes the source; resumable).")
    static final class Convert extends Target {
        @Override
        public Integer call() {
            Converter.Result r = new Converter(options(), out, err).run();
            out.printf(Locale.ROOT, "converted: %d messages, %d bytes in %.2f s (%.1f MB/s) into %s%n", r.messages(),
                r.bytes(), r.seconds(), r.mbPerSecond(), to);
            out.printf("broker.conf: storePathRootDir=%s, enableDLegerCommitLog=true, dLegerGroup=%s, "
                + "dLegerPeers=%s, dLegerSelfId=%s%n", to, group, peers, selfId);
            return EXIT_OK;
        }
    }

    /** {@code verify}. */
    @Command(name = "verify", mixinStandardHelpOptions = true,
        description = "Checks every source message is in the target with the same body, properties, topic, queue "
            + "and queue offset; exits 1 on the first difference.")
    static final class Verify extends Sub {
        @Option(names = "--from", required = true, description = "the source store root")
        Path from;
        @Option(names = "--to", required = true, description = "the converted store root")
        Path to;

        @Override
        public Integer call() {
            Verifier.Result r = new Verifier(err).verify(from, to);
            out.printf("verified (%s): %d messages identical, %d found through their ConsumeQueue, %d newer "
                + "entries%n", r.mode().name().toLowerCase(Locale.ROOT), r.messages(), r.queued(), r.newer());
            return EXIT_OK;
        }
    }

    /** {@code export}: the way back, from a stopped Raft broker's store to a stock master/slave store. */
    @Command(name = "export", mixinStandardHelpOptions = true,
        description = "Turns a stopped Raft broker's store into a stock master/slave store (commitlog/, consumequeue/, "
            + "config/), then reads it back and checks it against the Raft log.")
    static final class Export extends Sub {
        @Option(names = "--from", required = true, description = "the Raft broker's store root (storePathRootDir)")
        Path from;
        @Option(names = "--self-id", required = true, description = "the node whose log is exported (dLegerSelfId)")
        String selfId;
        @Option(names = "--to", required = true, description = "the stock store root to write; its commitlog/ "
            + "must be empty or absent")
        Path to;
        @Option(names = "--file-size", description = "CommitLog file size in bytes (the stock broker's "
            + "mappedFileSizeCommitLog; default: the Raft log's data file size)")
        int fileSize;

        @Override
        public Integer call() {
            new Exporter(from, to, selfId, fileSize, out).run();
            return EXIT_OK;
        }
    }
}
