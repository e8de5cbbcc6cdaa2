package dev.dledger.migration;

import dev.dledger.raft.config.Peers;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.store.AtomicFiles;
import dev.dledger.raft.store.ConfigIndexFile;
import dev.dledger.raft.store.EntryFormat;
import dev.dledger.raft.store.MetaFiles;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.store.StoreIoException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageExtBrokerInner;

/**
 * The {@code convert} of one node's store. All work goes into {@code <to>/.dledger-migrate-partial}; when it is
 * complete a {@code DONE} marker is written and its folders are moved into {@code <to>}. A run killed halfway is
 * resumed by the next run: in rewrite mode the Raft log written so far is recovered (a torn tail cut), its last
 * entry checked against the source, and the rest appended; the queues and index are rebuilt from the start. Every
 * step is deterministic, so the result is the same whether or not the run was interrupted. The source is only read.
 */
final class Converter {

    /** The work folder inside the target. */
    static final String PARTIAL = ".dledger-migrate-partial";
    static final String DONE = "DONE";
    /** The term of the migrated entries: the first term of our Raft log. */
    static final long TERM = 1;
    /** Stock's default size of a ConsumeQueue file: 300,000 units. */
    static final int DEFAULT_CQ_FILE_SIZE = 300_000 * ClassicStore.CQ_UNIT;
    private static final int BATCH_BYTES = 1 << 20;

    /** How the old data is carried over. */
    enum Mode {
        /** Old files copied (or hard-linked) as they are; the Raft log starts at the next file boundary. */
        BRIDGE,
        /** Every old message becomes a Raft entry of one node; the others receive them by replication. */
        REWRITE
    }

    /**
     * What to convert.
     *
     * @param from           the source store root, or null for a node that receives the history by replication
     * @param to             the target store root (the broker's {@code storePathRootDir})
     * @param group          the Raft group ({@code dLegerGroup})
     * @param peers          {@code dLegerPeers}
     * @param selfId         this node ({@code dLegerSelfId})
     * @param seed           in rewrite mode, the node that holds the history (default: self)
     * @param mode           bridge or rewrite
     * @param link           bridge: hard-link the sealed CommitLog files instead of copying them
     * @param dataFileSize   Raft data file size in bytes, or 0 for the source's CommitLog file size
     * @param indexSlots     hash slots of an index file ({@code maxHashSlotNum}, stock default 5,000,000)
     * @param indexItems     items of an index file ({@code maxIndexNum}, stock default 20,000,000)
     * @param live           rewrite: the source's broker may still be running; convert its sealed files (all but
     *                       the last) into the work folder and record where to go on; a later run takes the rest
     * @param commitLog      the source's {@code storePathCommitLog} ({@code :}-separated folders), or null for
     *                       {@code <from>/commitlog}
     */
    record Options(Path from, Path to, String group, String peers, String selfId, String seed, Mode mode, boolean link,
                   int dataFileSize, int indexSlots, int indexItems, boolean live, String commitLog) {
    }

    /** The work folder's record of a live pass: where the next run goes on. */
    static final String STATE = "STATE";

    /**
     * What a live pass converted.
     *
     * @param source     the source store root it read
     * @param messages   messages converted: Raft entries 1..messages
     * @param lastOffset the source offset of the last of them (-1 if none)
     * @param nextFile   the start offset of the first source file not converted
     * @param indexFiles the index files written so far (a later file was written by an interrupted run)
     */
    record State(Path source, long messages, long lastOffset, long nextFile, List<String> indexFiles) {

        static State read(Path work) {
            Path f = work.resolve(STATE);
            if (!Files.exists(f)) {
                return null;
            }
            java.util.Properties p = new java.util.Properties();
            try (var r = Files.newBufferedReader(f, StandardCharsets.ISO_8859_1)) {
                p.load(r);
                String idx = p.getProperty("indexFiles", "");
                return new State(Path.of(p.getProperty("source")), Long.parseLong(p.getProperty("messages")),
                    Long.parseLong(p.getProperty("lastOffset")), Long.parseLong(p.getProperty("nextFile")),
                    idx.isEmpty() ? List.of() : List.of(idx.split(",")));
            } catch (IOException | RuntimeException e) {
                throw new MigrationException("cannot read the record of the live pass " + f + ": " + e.getMessage()
                    + "; delete " + work + " and convert again");
            }
        }

        void write(Path work) {
            String text = "source=" + source.toAbsolutePath().normalize() + "\nmessages=" + messages + "\nlastOffset="
                + lastOffset + "\nnextFile=" + nextFile + "\nindexFiles=" + String.join(",", indexFiles) + "\n";
            try {
                byte[] bytes = text.replace("\\", "\\\\").getBytes(StandardCharsets.ISO_8859_1);
                AtomicFiles.write(work.resolve(STATE), bytes);
            } catch (IOException e) {
                throw new MigrationException("cannot write " + work.resolve(STATE) + ": " + e.getMessage());
            }
        }
    }

    /**
     * What a conversion did.
     *
     * @param messages messages carried over
     * @param bytes    bytes of source data read
     * @param seconds  time taken
     */
    record Result(long messages, long bytes, double seconds) {
        double mbPerSecond() {
            return bytes / 1e6 / Math.max(1e-9, seconds);
        }
    }

    private final Options o;
    private final PrintStream out;
    private final PrintStream err;
    private final Path work;

    Converter(Options o, PrintStream out, PrintStream err) {
        this.o = o;
        this.out = out;
        this.err = err;
        this.work = o.to().resolve(PARTIAL);
    }

    /**
     * Runs the conversion, or finishes an interrupted one.
     *
     * @throws MigrationException for bad input (nothing is changed) or a partial target that does not match
     */
    Result run() {
        long t0 = System.nanoTime();
        Map<String, ?> peers;
        try {
            peers = Peers.parse(o.peers());
        } catch (IllegalArgumentException e) {
            throw new MigrationException("--peers " + o.peers() + ": " + e.getMessage());
        }
        if (!peers.containsKey(o.selfId())) {
            throw new MigrationException("--self-id " + o.selfId() + " is not among --peers " + peers.keySet());
        }
        if (!o.selfId().matches("n\\d+")) {
            throw new MigrationException("--self-id " + o.selfId() + " must look like n0, n1, n2 (as RocketMQ requires)");
        }
        String seed = o.seed() == null ? o.selfId() : o.seed();
        if (!peers.containsKey(seed)) {
            throw new MigrationException("--seed " + seed + " is not among --peers " + peers.keySet());
        }
        // A node other than the seed given the source converts it as the seed does, to the same log: every node
        // starts with the whole history. Without the source it receives the history by replication.
        boolean joining = o.mode() == Mode.REWRITE && !seed.equals(o.selfId()) && o.from() == null;
        if (o.from() == null && !joining) {
            throw new MigrationException("--from is required (only a rewrite node other than --seed may leave it out)");
        }
        checkTarget();
        ClassicStore src = null;
        try {
            if (o.live() && (o.mode() != Mode.REWRITE || joining)) {
                throw new MigrationException("--live converts a source in rewrite mode: give --from and --mode rewrite");
            }
            if (o.from() != null) {
                src = ClassicStore.open(o.from(), o.commitLog());
                String controller = src.controllerSummary();
                if (controller != null) {
                    out.println(controller);
                    if (o.mode() == Mode.BRIDGE && src.limit() < src.rawEnd()) {
                        throw new MigrationException("source " + o.from() + " holds messages after its confirm offset "
                            + src.limit() + ", which bridge would keep (it copies the CommitLog files as they are): "
                            + "convert with --mode rewrite");
                    }
                }
                if (!o.live()) {
                    src.ensureNotInUse();
                }
                if (!o.live() && !src.cleanShutdown()) {
                    throw new MigrationException("source " + o.from() + " was not shut down cleanly (the abort file "
                        + "is there): start and stop its broker once so that it recovers, then convert");
                }
            }
            if (Files.exists(work.resolve(DONE))) {
                out.println("finishing the conversion of an earlier run in " + work);
                moveIntoPlace();
                return new Result(0, 0, (System.nanoTime() - t0) / 1e9);
            }
            createDirectories(work);
            long messages;
            long bytes;
            if (o.mode() == Mode.BRIDGE) {
                bytes = bridge(src);
                messages = src.scan().messages();
            } else if (joining) {
                joinLater(seed, null);
                err.println(noConfigWarning(o.selfId()));
                messages = 0;
                bytes = 0;
            } else {
                List<String> voters = new ArrayList<>(peers.keySet());
                long[] done = rewrite(src, seed, voters);
                messages = done[0];
                bytes = done[1];
                if (o.live()) {
                    out.printf("live pass: %d messages of the sealed CommitLog files converted into %s; the master "
                        + "may go on serving. Stop it, then run the same convert without --live: it takes only what "
                        + "was appended since%n", messages, work);
                    return new Result(messages, bytes, (System.nanoTime() - t0) / 1e9);
                }
                deleteFile(work.resolve(STATE));
                // The timer wheel's pending messages: the timer log's CommitLog offsets follow the rewrite.
                TimerFiles.carry(src.root(), src.root().resolve(ClassicStore.CONSUMEQUEUE), work,
                    work.resolve(ClassicStore.CONSUMEQUEUE), out);
            }
            writeFile(work.resolve(DONE), "");
            moveIntoPlace();
            return new Result(messages, bytes, (System.nanoTime() - t0) / 1e9);
        } finally {
            if (src != null) {
                src.close();
            }
        }
    }

    /** The target must be empty but for our own work folder of an interrupted run. */
    private void checkTarget() {
        Path to = o.to();
        if (o.from() != null && to.toAbsolutePath().normalize().startsWith(o.from().toAbsolutePath().normalize())) {
            throw new MigrationException("target " + to + " lies inside the source " + o.from());
        }
        if (Files.exists(to) && !Files.isDirectory(to)) {
            throw new MigrationException("target " + to + " is a file, not a folder");
        }
        if (!Files.isDirectory(to)) {
            return;
        }
        try (Stream<Path> s = Files.list(to)) {
            List<String> others = s.map(p -> p.getFileName().toString()).filter(n -> !n.equals(PARTIAL)).toList();
            if (!others.isEmpty()) {
                throw new MigrationException("target " + to + " is not empty (it holds " + others.get(0)
                    + (others.size() > 1 ? " and " + (others.size() - 1) + " more" : "")
                    + "): give an empty or new folder");
            }
        } catch (IOException e) {
            throw new MigrationException("cannot list target " + to + ": " + e.getMessage());
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // bridge

    private long bridge(ClassicStore src) {
        // A rerun goes on: every file the manifest lists as complete (at its size) is kept, the rest is copied again.
        createDirectories(work);
        BridgeManifest manifest = BridgeManifest.read(work);
        Path root = src.root();
        java.util.LinkedHashMap<String, Path> copies = new java.util.LinkedHashMap<>();
        for (Map.Entry<Long, Path> f : src.files().entrySet()) {
            copies.put(ClassicStore.COMMITLOG + "/" + f.getValue().getFileName(), f.getValue());
        }
        for (String tree : List.of(ClassicStore.CONSUMEQUEUE, ClassicStore.INDEX, ClassicStore.CONFIG,
            TimerFiles.TIMERLOG)) {
            if (!Files.isDirectory(root.resolve(tree))) {
                continue;
            }
            try (Stream<Path> s = Files.walk(root.resolve(tree))) {
                for (Path f : s.filter(Files::isRegularFile).sorted().toList()) {
                    copies.put(root.relativize(f).toString().replace(java.io.File.separatorChar, '/'), f);
                }
            } catch (IOException e) {
                throw new MigrationException("cannot list " + root.resolve(tree) + ": " + e.getMessage());
            }
        }
        // The old files keep their offsets, so the timer wheel's state is valid as it is.
        for (String single : List.of(ClassicStore.CHECKPOINT, TimerFiles.TIMERWHEEL)) {
            if (Files.isRegularFile(root.resolve(single))) {
                copies.put(single, root.resolve(single));
            }
        }
        long total = 0;
        for (Path f : copies.values()) {
            total += sizeOf(f);
        }
        Progress p = new Progress(err, "bridge", total);
        String lastLog = ClassicStore.COMMITLOG + "/" + src.files().lastEntry().getValue().getFileName();
        int kept = 0;
        for (Map.Entry<String, Path> c : copies.entrySet()) {
            if (manifest.done(work, c.getKey())) {
                kept++;
                p.advance(sizeOf(c.getValue()));
                continue;
            }
            // The last CommitLog file is always copied: the broker pads it with a BLANK record on its first start.
            boolean link = o.link() && c.getKey().startsWith(ClassicStore.COMMITLOG + "/")
                && !c.getKey().equals(lastLog);
            p.advance(manifest.copy(c.getValue(), work, c.getKey(), link));
        }
        p.finish();
        out.printf("bridge: %d files, %d bytes, each listed with its CRC32C in %s (%d kept from an interrupted run): "
            + "ship the store to the node's host and run dledger-migrate verify --to <store> there%n", copies.size(),
            total, BridgeManifest.NAME, kept);
        ClassicStore.Scan scan = src.scan();
        long divide = src.files().lastKey() + src.fileSize();
        out.printf("bridge: %d messages below offset %d stay in %s; the Raft log of %s will start at %d (the next "
            + "file boundary) when the broker first starts%n", scan.messages(), scan.endOffset(),
            o.to().resolve(ClassicStore.COMMITLOG), o.selfId(), divide);
        return total;
    }

    // ------------------------------------------------------------------------------------------------------------
    // rewrite

    private StoreConfig raftConfig(int fileSize) {
        return StoreConfig.lean().withFileSizes(fileSize, StoreConfig.defaults().indexFileSizeBytes());
    }

    /** A node other than the seed: its log holds the seed's first entry, so it waits to be replicated to. */
    private void joinLater(String seed, ClassicStore src) {
        Path node = work.resolve("dledger-" + o.selfId());
        // The data file size is fixed when the first file is made: it must be the broker's mappedFileSizeCommitLog.
        StoreConfig cfg = raftConfig(o.dataFileSize() > 0 ? o.dataFileSize() : src != null ? src.fileSize()
            : StoreConfig.defaults().dataFileSizeBytes());
        try (SegmentedLogStore log = SegmentedLogStore.open(node, cfg)) {
            if (log.lastIndex() < 0) {
                log.append(List.of(new Entry(0, TERM, EntryType.CONFIG, Membership.of(seed).encode())));
            }
            log.sync();
            recordConfigEntries(log, 0);
        }
        writeMeta(node, seed, -1);
        out.printf("rewrite: %s starts with the first entry of %s and no vote of its own until %s replicated the "
            + "history to it%n", o.selfId(), seed, seed);
    }

    /**
     * The warning for a node converted without {@code --from}: it gets no {@code config/} (topics, subscription
     * groups, consumer offsets) and copies it from the master only once it runs as a slave; elected before that (a
     * small history replicates in seconds), it would serve consumer groups without their offsets.
     */
    static String noConfigWarning(String selfId) {
        return "warning: without --from, " + selfId + " gets no config/ (topics, subscription groups, consumer "
            + "offsets) until it copies them from the master after it joined; if it were elected before that, "
            + "consumer groups would lose their offsets: pass --from to copy config/";
    }

    /**
     * Returns {messages, bytes read}. One pass over the source: this thread reads each message and appends it to the
     * Raft log in batches of about {@link #BATCH_BYTES}; the appended batch, with the new physical offset of each
     * message (where the log put it), goes to a {@link QueueBuilder} thread that writes the ConsumeQueues and index.
     * Nothing is kept per message beyond the batches in flight, so memory does not grow with the store.
     */
    private long[] rewrite(ClassicStore src, String seed, List<String> voters) {
        int fileSize = o.dataFileSize() > 0 ? o.dataFileSize() : src.fileSize();
        Path node = work.resolve("dledger-" + o.selfId());
        State state = State.read(work);
        if (state != null && !state.source().equals(src.root().toAbsolutePath().normalize())) {
            throw new MigrationException("the partial conversion in " + work + " was made from " + state.source()
                + ", not " + src.root() + ": give that source, or delete " + work + " and convert again");
        }
        long fromFile = state == null ? src.files().firstKey() : state.nextFile();
        long toFile = o.live() ? src.liveEnd() : Long.MAX_VALUE;
        if (state != null && !src.files().containsKey(fromFile) && fromFile <= src.files().lastKey()) {
            throw new MigrationException("source " + src.root() + " no longer holds CommitLog file "
                + CommitLogName.of(fromFile) + " where the live pass stopped: delete " + work + " and convert again");
        }
        long base = state == null ? 0 : state.messages();
        long readBytes = (long) src.files().subMap(fromFile, true, toFile, false).size() * src.fileSize();
        Progress p = new Progress(err, "rewrite", readBytes);
        QueueBuilder queues = new QueueBuilder(src, state);
        Thread builder = new Thread(queues, "dledger-migrate-queues");
        builder.start();
        ClassicStore.Scan scan;
        long last;
        long[] stateThrough;
        try (SegmentedLogStore log = SegmentedLogStore.open(node, raftConfig(fileSize))) {
            log.writeHook(Converter::stampPhysicalOffset);
            if (log.lastIndex() < 0) {
                log.append(List.of(new Entry(0, TERM, EntryType.CONFIG, Membership.of(seed).encode())));
            } else if (log.info(0).type() != EntryType.CONFIG) {
                throw new MigrationException("the partial Raft log in " + node + " was not written by this tool: "
                    + "delete " + work + " and convert again");
            }
            long present = log.lastIndex();
            if (state != null) {
                // Cheap check of the converted prefix: its last entry is the source's message, stamped.
                if (present < base) {
                    throw new MigrationException("the partial Raft log in " + node + " ends at entry " + present
                        + ", before the " + base + " of the live pass: delete " + work + " and convert again");
                }
                if (present > base) {
                    log.truncateSuffix(base + 1);
                }
                if (base > 0) {
                    ByteBuffer m = src.messageAt(state.lastOffset());
                    if (m == null) {
                        throw new MigrationException("source " + src.root() + " holds no message at offset "
                            + state.lastOffset() + " where the live pass stopped: the source changed; delete " + work
                            + " and convert again");
                    }
                    checkResumed(log, base, m);
                }
                present = base;
                out.printf("rewrite: going on after %d messages converted by the live pass (up to offset %d, checked "
                    + "against its last entry)%n", base, state.lastOffset());
            }
            Batch batch = new Batch();
            long[] k = {base};
            long[] lastOffset = {state == null ? -1 : state.lastOffset()};
            long present0 = present;
            scan = src.scan(fromFile, toFile, (offset, m) -> {
                lastOffset[0] = offset;
                long index = ++k[0];
                if (index <= present0 && log.info(index).type() == EntryType.NORMAL) {
                    if (index == present0 || index == present0 - 1) {
                        checkResumed(log, index, m);
                    }
                    batch.add(offset, m, log.position(index) + EntryFormat.HEADER_SIZE, null);
                } else {
                    byte[] body = new byte[m.remaining()];
                    m.get(0, body);
                    batch.add(offset, null, -1, new Entry(index, TERM, EntryType.NORMAL, body));
                }
                if (batch.heapBytes >= BATCH_BYTES) {
                    queues.put(batch.write(log));
                    batch.clear();
                }
            }, p);
            queues.put(batch.write(log));
            last = base + scan.messages();
            if (o.live()) {
                log.sync();
                queues.finish(builder);
                new State(src.root().toAbsolutePath().normalize(), last, lastOffset[0], Math.min(toFile,
                    src.files().lastKey() + src.fileSize()), queues.indexFiles()).write(work);
                p.finish();
                return new long[] {scan.messages(), readBytes};
            }
            if (log.lastIndex() == last) {
                Membership all = new Membership(voters);
                log.append(List.of(new Entry(last + 1, TERM, EntryType.CONFIG, all.encode())));
            }
            log.sync();
            writeMeta(node, seed, last);
            recordConfigEntries(log, 0, last + 1);
            stateThrough = new long[] {log.lastIndex(), log.term(log.lastIndex())};
        } finally {
            queues.finish(builder);
        }
        double rate = p.finish();
        out.printf("rewrite: %d messages written as Raft entries 1..%d of %s, queues and index built in the same pass "
            + "(%.1f MB/s)%n", last, last, o.selfId(), rate);
        if (!seed.equals(o.selfId())) {
            out.printf("rewrite: %s holds the same log as %s (entry 0 of %s, the group's configuration at %d, vote for "
                + "%s): it starts with the whole history, nothing is replicated before the first send%n", o.selfId(),
                seed, seed, last + 1, seed);
        }
        copyTree(src.root().resolve(ClassicStore.CONFIG), work.resolve(ClassicStore.CONFIG), null);
        writeStateCheckpoint(work.resolve(ClassicStore.CONFIG), stateThrough);
        createDirectories(work.resolve(ClassicStore.COMMITLOG));
        return new long[] {scan.messages(), readBytes};
    }

    /**
     * Writes the term and vote ({@code currterm}) and the committed index ({@code checkpoint}, unless negative) as
     * {@link MetaFiles} reads them, without the date line {@code Properties.store} adds, so that a rerun writes the
     * same bytes.
     */
    private static void writeMeta(Path node, String votedFor, long commitIndex) {
        try {
            AtomicFiles.write(node.resolve("currterm"), ("currTerm=" + TERM + "\nvoteLeader=" + votedFor + "\n")
                .getBytes(StandardCharsets.ISO_8859_1));
            if (commitIndex >= 0) {
                AtomicFiles.write(node.resolve("checkpoint"), ("commitIndex=" + commitIndex + "\n")
                    .getBytes(StandardCharsets.ISO_8859_1));
            }
        } catch (IOException e) {
            throw new MigrationException("cannot write the term and checkpoint in " + node + ": " + e.getMessage());
        }
        HardState hs = new MetaFiles(node).readHardState();
        if (hs.term() != TERM || !votedFor.equals(hs.votedFor())) {
            throw new MigrationException("the term file written in " + node + " reads back as " + hs);
        }
    }

    /**
     * Writes the broker's state checkpoint ({@code config/brokerState.checkpoint}, read by the broker's
     * {@code BrokerStateLog}): the log holds no broker state entry through {@code at} (index, term), only messages and
     * configurations, so the broker's first start replays nothing before it (without it the first start read the whole
     * history through the Raft node: 347 s before the first send on 20 GB); {@code importPending=true} because the
     * config files came from the source, not from the log, so the first leader still imports them into the log.
     */
    private static void writeStateCheckpoint(Path config, long[] at) {
        try {
            Files.createDirectories(config);
            AtomicFiles.write(config.resolve("brokerState.checkpoint"), ("index=" + at[0] + "\nterm=" + at[1]
                + "\nimportPending=true\n").getBytes(StandardCharsets.ISO_8859_1));
        } catch (IOException e) {
            throw new MigrationException("cannot write the broker state checkpoint in " + config + ": " + e.getMessage());
        }
    }

    /**
     * Writes the node's record of its CONFIG entries ({@link ConfigIndexFile}), complete up to the log's end, so that
     * the node's first start reads no entry header of the history to find its membership (every header of a
     * 600,000-entry log took minutes). {@code at} are the indexes where this tool wrote CONFIG entries.
     */
    private static void recordConfigEntries(SegmentedLogStore log, long... at) {
        List<ConfigIndexFile.Point> points = new ArrayList<>();
        for (long i : at) {
            if (i >= log.firstIndex() && i <= log.lastIndex() && log.info(i).type() == EntryType.CONFIG) {
                points.add(new ConfigIndexFile.Point(i, log.term(i)));
            }
        }
        long last = log.lastIndex();
        try {
            new ConfigIndexFile(points, last, log.term(last)).write(log.dir());
        } catch (StoreIoException e) {
            throw new MigrationException(e.getMessage());
        }
    }

    /** The last entries of a resumed log must be the source's messages, stamped with their new offsets. */
    private void checkResumed(SegmentedLogStore log, long index, ByteBuffer m) {
        byte[] body = new byte[m.remaining()];
        m.get(0, body);
        ByteBuffer.wrap(body).putLong(MessageDecoder.PHY_POS_POSITION, log.position(index) + EntryFormat.HEADER_SIZE);
        if (EntryFormat.bodyCrc(body) != log.info(index).bodyCrc()) {
            throw new MigrationException("the partial Raft log in " + log.dir() + " differs from the source at entry "
                + index + ": the source changed since the interrupted run; delete " + work + " and convert again");
        }
    }

    /** Writes the message's new physical offset into it (as the broker does for every put). */
    static void stampPhysicalOffset(Entry e, long pos) {
        byte[] body = e.data();
        if (e.type() == EntryType.NORMAL && body.length >= MessageDecoder.PHY_POS_POSITION + 8) {
            ByteBuffer.wrap(body).putLong(MessageDecoder.PHY_POS_POSITION, pos + EntryFormat.HEADER_SIZE);
        }
    }

    /** Heap bytes an entry costs beside its body (the entry, the slice, the array slots): bounds a batch's heap. */
    private static final int ENTRY_OVERHEAD = 160;

    /**
     * Messages read but not yet handed on: those already in a resumed log (source slices, new offsets known) and
     * those to append (entries, offsets known once written). The resumed ones all come before the new ones.
     */
    private static final class Batch {
        final List<ByteBuffer> messages = new ArrayList<>();
        final List<Entry> entries = new ArrayList<>();
        long[] offsets = new long[1024];
        long[] phys = new long[1024];
        long heapBytes;

        void add(long offset, ByteBuffer source, long phy, Entry e) {
            int n = messages.size();
            if (n == offsets.length) {
                offsets = java.util.Arrays.copyOf(offsets, n * 2);
                phys = java.util.Arrays.copyOf(phys, n * 2);
            }
            offsets[n] = offset;
            phys[n] = phy;
            if (e == null) {
                messages.add(source);
            } else {
                messages.add(ByteBuffer.wrap(e.data()));
                entries.add(e);
                heapBytes += e.data().length;
            }
            heapBytes += ENTRY_OVERHEAD;
        }

        /** Appends the new entries and returns what the queue builder needs; the batch may then be cleared. */
        Written write(SegmentedLogStore log) {
            int n = messages.size();
            if (!entries.isEmpty()) {
                long[] pos = log.append(entries);
                int first = n - pos.length;
                for (int i = 0; i < pos.length; i++) {
                    phys[first + i] = pos[i] + EntryFormat.HEADER_SIZE;
                }
            }
            return new Written(new ArrayList<>(messages), java.util.Arrays.copyOf(offsets, n),
                java.util.Arrays.copyOf(phys, n));
        }

        void clear() {
            messages.clear();
            entries.clear();
            heapBytes = 0;
        }
    }

    /**
     * Messages with their source and new physical offsets.
     *
     * @param messages the messages (a source slice or the entry's body as written: the same bytes but the offset)
     * @param offsets  each message's offset in the source CommitLog
     * @param phys     each message's offset in the Raft log (entry position plus header), as the broker reads it
     */
    private record Written(List<ByteBuffer> messages, long[] offsets, long[] phys) {
    }

    /** Queue depth between the log writer and the queue builder: two batches may wait while one is built. */
    private static final int QUEUE_DEPTH = 2;
    private static final Written END = new Written(List.of(), new long[0], new long[0]);

    /**
     * Builds the ConsumeQueues (each unit at the message's own queue offset, pointing at its new physical offset,
     * with the source's tags code) and the index files (unique key, keys and tags, as the broker indexes them), on
     * its own thread, from the batches the log writer hands over. A failure is kept and rethrown to the writer.
     */
    private final class QueueBuilder implements Runnable {
        private final ClassicStore src;
        private final java.util.concurrent.ArrayBlockingQueue<Written> queue =
            new java.util.concurrent.ArrayBlockingQueue<>(QUEUE_DEPTH);
        private volatile RuntimeException failure;
        private boolean finished;
        private final Path cq = work.resolve(ClassicStore.CONSUMEQUEUE);
        private final Path idx = work.resolve(ClassicStore.INDEX);

        /** Starts afresh, or goes on after a live pass: its queues stay, index files it did not record go. */
        QueueBuilder(ClassicStore src, State state) {
            this.src = src;
            if (state == null) {
                deleteTree(cq);
                deleteTree(idx);
            } else {
                for (String f : indexFiles()) {
                    if (!state.indexFiles().contains(f)) {
                        deleteFile(idx.resolve(f));
                    }
                }
            }
            createDirectories(cq);
            createDirectories(idx);
            checkIndexSize(src.root().resolve(ClassicStore.INDEX));
        }

        /** The names of the index files in the work folder, sorted. */
        List<String> indexFiles() {
            if (!Files.isDirectory(idx)) {
                return List.of();
            }
            try (Stream<Path> s = Files.list(idx)) {
                return s.map(f -> f.getFileName().toString()).sorted().toList();
            } catch (IOException e) {
                throw new MigrationException("cannot list " + idx + ": " + e.getMessage());
            }
        }

        /** Hands a batch over; waits while the builder is behind; throws what the builder failed with. */
        void put(Written w) {
            try {
                while (!queue.offer(w, 100, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                    rethrow();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new MigrationException("interrupted while building the queues in " + cq);
            }
            rethrow();
        }

        /** Ends the builder and waits for it (at most once); throws what it failed with. */
        void finish(Thread builder) {
            if (finished) {
                rethrow();
                return;
            }
            finished = true;
            try {
                while (builder.isAlive() && !queue.offer(END, 100, java.util.concurrent.TimeUnit.MILLISECONDS)) {
                    rethrow();
                }
                builder.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new MigrationException("interrupted while building the queues in " + cq);
            }
            rethrow();
        }

        private void rethrow() {
            if (failure != null) {
                throw failure;
            }
        }

        @Override
        public void run() {
            int cqFileSize = cqFileSize(src.root().resolve(ClassicStore.CONSUMEQUEUE));
            int queueCount = Math.max(1, src.queues().values().stream().mapToInt(Map::size).sum());
            try (QueueFiles files = new QueueFiles(cq, cqFileSize, QueueFiles.bufferBytes(queueCount))) {
                IndexWriter index = new IndexWriter(idx, o.indexSlots(), o.indexItems());
                try {
                    for (Written w = queue.take(); w != END; w = queue.take()) {
                        for (int i = 0; i < w.messages().size(); i++) {
                            ByteBuffer m = w.messages().get(i);
                            MessageExt msg = MessageDecoder.decode(m, false, false, false);
                            if (!StoreCheck.dispatched(msg.getSysFlag())) {
                                continue;
                            }
                            long[] unit = src.queueUnit(msg.getTopic(), msg.getQueueId(), msg.getQueueOffset());
                            long tagsCode = unit != null && unit[0] == w.offsets()[i] ? unit[2]
                                : MessageExtBrokerInner.tagsString2tagsCode(msg.getTags());
                            files.add(msg.getTopic(), msg.getQueueId(), msg.getQueueOffset(), w.phys()[i],
                                m.limit(), tagsCode);
                            index.add(msg, w.phys()[i]);
                        }
                    }
                } finally {
                    index.close();
                }
            } catch (MigrationException e) {
                failure = e;
            } catch (InterruptedException e) {
                failure = new MigrationException("interrupted while building the queues in " + cq);
            } catch (RuntimeException | Error e) {
                failure = new MigrationException("cannot build the queues and index in " + work + ": " + e);
            }
            if (failure != null) {
                queue.clear();
            }
        }
    }

    /**
     * The ConsumeQueue files being written: units are gathered per queue in a buffer and written as one run, since a
     * queue's units come in queue-offset order; a unit that does not follow the buffered ones, or lies in another
     * file, writes the buffer first. A few files stay open (least recently used closed first).
     */
    private static final class QueueFiles implements AutoCloseable {
        private static final int MAX_OPEN = 64;
        private static final int MIN_BUFFER = 64 * ClassicStore.CQ_UNIT;
        private static final int MAX_BUFFER = 12_800 * ClassicStore.CQ_UNIT;
        /** Heap for all buffers together. */
        private static final int BUFFER_BUDGET = 16 << 20;

        private final Path root;
        private final int fileSize;
        private final int bufferBytes;
        private final Map<String, Buffered> queues = new HashMap<>();
        private final java.util.LinkedHashMap<Path, FileChannel> open = new java.util.LinkedHashMap<>(16, 0.75f,
            true);

        private static final class Buffered {
            final Path dir;
            final String name;
            ByteBuffer buf;
            long bufStart;
            long fileStart;

            Buffered(Path dir, String name) {
                this.dir = dir;
                this.name = name;
            }
        }

        /** A buffer per queue that keeps all of them within the budget, in whole units. */
        static int bufferBytes(int queueCount) {
            int per = BUFFER_BUDGET / queueCount;
            per -= per % ClassicStore.CQ_UNIT;
            return Math.max(MIN_BUFFER, Math.min(MAX_BUFFER, per));
        }

        QueueFiles(Path root, int fileSize, int bufferBytes) {
            this.root = root;
            this.fileSize = fileSize;
            this.bufferBytes = bufferBytes;
        }

        void add(String topic, int queueId, long queueOffset, long phy, int size, long tagsCode) {
            Buffered q = queues.computeIfAbsent(topic + "/" + queueId,
                n -> new Buffered(root.resolve(topic).resolve(Integer.toString(queueId)), n));
            long byteOffset = queueOffset * ClassicStore.CQ_UNIT;
            long fileStart = byteOffset - byteOffset % fileSize;
            if (q.buf == null) {
                q.buf = ByteBuffer.allocate(bufferBytes);
            }
            if (q.buf.position() > 0 && (!q.buf.hasRemaining() || fileStart != q.fileStart
                || byteOffset != q.bufStart + q.buf.position())) {
                write(q);
            }
            if (q.buf.position() == 0) {
                q.bufStart = byteOffset;
                q.fileStart = fileStart;
            }
            q.buf.putLong(phy).putInt(size).putLong(tagsCode);
        }

        private void write(Buffered q) {
            Path f = q.dir.resolve(CommitLogName.of(q.fileStart));
            try {
                FileChannel ch = open.get(f);
                if (ch == null) {
                    if (!Files.exists(f)) {
                        Files.createDirectories(q.dir);
                        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
                            raf.setLength(fileSize);
                        }
                    }
                    ch = FileChannel.open(f, java.nio.file.StandardOpenOption.WRITE);
                    open.put(f, ch);
                    if (open.size() > MAX_OPEN) {
                        var eldest = open.entrySet().iterator().next();
                        Converter.close(eldest.getValue());
                        open.remove(eldest.getKey());
                    }
                }
                q.buf.flip();
                long at = q.bufStart - q.fileStart;
                while (q.buf.hasRemaining()) {
                    at += ch.write(q.buf, at);
                }
                q.buf.clear();
            } catch (IOException e) {
                throw new MigrationException("cannot write the ConsumeQueue of " + q.name + " in " + f + ": "
                    + e.getMessage());
            }
        }

        @Override
        public void close() {
            for (Buffered q : queues.values()) {
                if (q.buf != null && q.buf.position() > 0) {
                    write(q);
                }
            }
            for (FileChannel ch : open.values()) {
                Converter.close(ch);
            }
            open.clear();
        }
    }

    private static int cqFileSize(Path cqRoot) {
        for (Map<Integer, Path> qs : ClassicStore.queues(cqRoot).values()) {
            for (Path q : qs.values()) {
                var files = ClassicStore.dataFiles(q);
                if (!files.isEmpty()) {
                    try {
                        return (int) Files.size(files.firstEntry().getValue());
                    } catch (IOException e) {
                        throw new MigrationException("cannot read " + files.firstEntry().getValue() + ": "
                            + e.getMessage());
                    }
                }
            }
        }
        return DEFAULT_CQ_FILE_SIZE;
    }

    private void checkIndexSize(Path idxRoot) {
        long expected = 40L + 4L * o.indexSlots() + 20L * o.indexItems();
        if (!Files.isDirectory(idxRoot)) {
            return;
        }
        try (Stream<Path> s = Files.list(idxRoot)) {
            for (Path f : s.filter(Files::isRegularFile).toList()) {
                long size = Files.size(f);
                if (size != expected) {
                    throw new MigrationException("index file " + f + " has " + size + " bytes, not the " + expected
                        + " of --index-hash-slots " + o.indexSlots() + " and --index-max-items " + o.indexItems()
                        + ": pass the broker's maxHashSlotNum and maxIndexNum");
                }
            }
        } catch (IOException e) {
            throw new MigrationException("cannot list " + idxRoot + ": " + e.getMessage());
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // files

    private void moveIntoPlace() {
        try (Stream<Path> s = Files.list(work)) {
            for (Path p : s.sorted().toList()) {
                if (p.getFileName().toString().equals(DONE)) {
                    continue;
                }
                Files.move(p, o.to().resolve(p.getFileName().toString()));
            }
            Files.delete(work.resolve(DONE));
            Files.delete(work);
        } catch (IOException e) {
            throw new MigrationException("cannot move the converted store from " + work + " into " + o.to() + ": "
                + e.getMessage() + " (run convert again to finish)");
        }
    }

    static long treeBytes(Path root) {
        if (!Files.isDirectory(root)) {
            return 0;
        }
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(Files::isRegularFile).mapToLong(p -> {
                try {
                    return Files.size(p);
                } catch (IOException e) {
                    return 0;
                }
            }).sum();
        } catch (IOException e) {
            throw new MigrationException("cannot list " + root + ": " + e.getMessage());
        }
    }

    private static void copyTree(Path from, Path to, Progress p) {
        if (!Files.isDirectory(from)) {
            return;
        }
        try (Stream<Path> s = Files.walk(from)) {
            for (Path f : s.sorted().toList()) {
                Path dst = to.resolve(from.relativize(f).toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(dst);
                } else if (Files.isRegularFile(f)) {
                    Files.copy(f, dst, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                    if (p != null) {
                        p.advance(Files.size(f));
                    }
                }
            }
        } catch (IOException e) {
            throw new MigrationException("cannot copy " + from + " to " + to + ": " + e.getMessage());
        }
    }

    private static long sizeOf(Path f) {
        try {
            return Files.size(f);
        } catch (IOException e) {
            throw new MigrationException("cannot read " + f + ": " + e.getMessage());
        }
    }

    static void deleteTree(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        } catch (IOException e) {
            throw new MigrationException("cannot delete " + root + ": " + e.getMessage());
        }
    }

    private static void createDirectories(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new MigrationException("cannot create " + dir + ": " + e.getMessage());
        }
    }

    private static void deleteFile(Path f) {
        try {
            Files.deleteIfExists(f);
        } catch (IOException e) {
            throw new MigrationException("cannot delete " + f + ": " + e.getMessage());
        }
    }

    private static void writeFile(Path f, String text) {
        try {
            Files.writeString(f, text);
        } catch (IOException e) {
            throw new MigrationException("cannot write " + f + ": " + e.getMessage());
        }
    }

    private static void close(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException e) {
            throw new MigrationException("cannot close a ConsumeQueue file: " + e.getMessage());
        }
    }
}
