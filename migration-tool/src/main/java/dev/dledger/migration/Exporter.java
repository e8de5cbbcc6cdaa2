package dev.dledger.migration;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.store.MetaFiles;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.store.StoreCorruptedException;
import dev.dledger.raft.store.StoreIoException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import org.apache.rocketmq.common.UtilAll;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageExtBrokerInner;
import org.apache.rocketmq.store.CommitLog;

/**
 * {@code export}: the way back. Turns the store of a stopped Raft broker ({@code <from>/dledger-<id>}, the DLedger
 * 0.3.x log whose NORMAL entries are stock messages, plus its {@code consumequeue/} and {@code config/}) into a
 * stock master/slave store in {@code <to>}: {@code commitlog/} files of {@code fileSize} bytes holding the messages in
 * log order, each stamped with its new physical offset, a BLANK record closing each full file as the broker writes
 * it; {@code consumequeue/} built with every unit pointing at the new offsets (the tags code taken from the group's
 * own unit, so that delay-level delivery times stay); {@code index/} built as the broker's IndexService does (unique
 * key, keys, tags), so lookups by key and message id find the whole history; {@code config/} copied (with the delay
 * offsets and the timer checkpoint); the timer wheel ({@code timerwheel}, {@code timerlog/}) carried with the timer
 * log's CommitLog offsets translated to the new ones ({@link TimerFiles}), so pending timer messages are delivered by
 * the stock broker at their time. Then it reads back what it wrote and checks it against the log: the message count,
 * a checksum of every message (its physical offset aside) and, per queue, the max offset against the group's
 * ConsumeQueue.
 *
 * <p>Only committed entries are exported: the log is read up to the commit index its node recorded ({@code
 * checkpoint}, written on every clean stop); entries after it are left out and counted. Everything is written into
 * {@code <to>/.dledger-migrate-export}, fsynced, read back and checked there, and only then moved into {@code <to>}
 * (and the folder fsynced): a failure leaves {@code <to>} as it was, with one line naming what failed and where.
 *
 * <p>A log whose start was deleted by retention is refused, as are queues that do not start at offset 0 (the stock
 * ConsumeQueue recovery stops at an empty unit), and a target that already holds a CommitLog, ConsumeQueues, an
 * index or a timer wheel. A log without messages gives an empty stock store (its {@code config/} copied).
 *
 * <p>Memory: one small record per queue; messages stream through. Each source queue folder is listed once.
 */
final class Exporter {

    /** Stock's {@code CommitLog.END_FILE_MIN_BLANK_LENGTH}: a file keeps room for a BLANK record's two ints. */
    private static final int END_BLANK = 8;
    /**
     * The magic of the broker's own state entries in the Raft log ({@code BrokerStateEntry.MAGIC} of the broker module,
     * which this tool does not depend on at run time).
     */
    private static final int STATE_MAGIC = 0x52535431;
    /** Bytes of the group's log read per batch. */
    private static final long BATCH_BYTES = 4L << 20;
    /** The folder inside the target where an export is written before it is moved into place. */
    static final String STAGE = ".dledger-migrate-export";
    /** What the target must not hold already: the export would mix with it. */
    private static final List<String> OWN = List.of(ClassicStore.COMMITLOG, ClassicStore.CONSUMEQUEUE,
        ClassicStore.INDEX, TimerFiles.TIMERLOG, TimerFiles.TIMERWHEEL);

    /** Makes a file's or a folder's content and entries durable (a seam for tests, which record the calls). */
    interface Sync {
        void force(Path p) throws IOException;
    }

    private final Path from;
    private final Path to;
    private final String selfId;
    private final int fileSize;
    private final PrintStream out;
    private final int indexSlots;
    private final int indexItems;
    private final Sync sync;
    /** Where the export is written before it is moved into {@code to}. */
    private final Path stage;
    /** The source ConsumeQueue files of each queue folder (start offset to file), listed once per folder. */
    private final Map<Path, TreeMap<Long, Path>> sourceQueueFiles = new HashMap<>();
    /** How many source queue folders were listed. */
    private long queueListings;
    /** The Raft entry being exported, for error messages. */
    private long entryIndex = -1;
    /** Set once the checked export is being moved into {@code to}. */
    private boolean placing;
    /** The broker's {@code mappedFileSizeConsumeQueue}: the size of the group's ConsumeQueue files. */
    private int cqFileSize = ClassicStore.CQ_UNIT * 300_000;

    /** One queue: how many units written, and the file being written. */
    private static final class Queue {
        long next;
        FileChannel file;
        Path path;
        long fileStart = -1;
    }

    Exporter(Path from, Path to, String selfId, int fileSize, int indexSlots, int indexItems, PrintStream out) {
        this(from, to, selfId, fileSize, indexSlots, indexItems, out, Exporter::force);
    }

    Exporter(Path from, Path to, String selfId, int fileSize, int indexSlots, int indexItems, PrintStream out,
             Sync sync) {
        this.sync = sync;
        this.stage = to.resolve(STAGE);
        this.indexSlots = indexSlots;
        this.indexItems = indexItems;
        this.from = from;
        this.to = to;
        this.selfId = selfId;
        this.fileSize = fileSize;
        this.out = out;
    }

    /** Exports and verifies; returns the number of messages. */
    long run() {
        Path node = from.resolve("dledger-" + selfId);
        if (!Files.isDirectory(node.resolve("data"))) {
            throw new MigrationException("no Raft log of " + selfId + " in " + from + ": " + node.resolve("data")
                + " is missing");
        }
        if (Files.exists(to) && !Files.isDirectory(to)) {
            throw new MigrationException("target " + to + " is a file, not a folder");
        }
        for (String sub : OWN) {
            Path p = to.resolve(sub);
            if (Files.isRegularFile(p) || Files.isDirectory(p) && !isEmpty(p)) {
                throw new MigrationException("target " + p + " is not empty: export into a new folder");
            }
        }
        if (Files.exists(stage)) {
            deleteTree(stage);
            out.printf("export: removed %s, left by an earlier export that did not finish%n", stage);
        }
        try {
            return exportLocked(node);
        } catch (MigrationException e) {
            if (placing) {
                throw e; // part of the checked export is in place already: the message says what to do
            }
            deleteTree(stage);
            throw new MigrationException(e.getMessage() + " (nothing was written to " + to + ")", e.exitCode());
        } catch (RuntimeException e) {
            deleteTree(stage);
            throw new MigrationException("export failed at entry " + entryIndex + " of " + node.resolve("data") + ": "
                + e + " (nothing was written to " + to + ")");
        }
    }

    private long exportLocked(Path node) {
        try (FileChannel lockFile = FileChannel.open(node.resolve("lock"), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE); FileLock lock = tryLock(lockFile, node)) {
            StoreConfig cfg = StoreConfig.detect(node, StoreConfig.lean());
            int size = fileSize > 0 ? fileSize : cfg.dataFileSizeBytes();
            cqFileSize = groupQueueFileSize();
            long commitIndex = new MetaFiles(node).readCommitCheckpoint();
            try (SegmentedLogStore log = SegmentedLogStore.open(node, cfg)) {
                return export(log, size, commitIndex, node);
            }
        } catch (IOException e) {
            throw new MigrationException("cannot read the Raft log in " + node + ": " + e.getMessage());
        } catch (StoreCorruptedException | StoreIoException e) {
            throw new MigrationException(e.getMessage());
        }
    }

    private static FileLock tryLock(FileChannel ch, Path node) throws IOException {
        FileLock l;
        try {
            l = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            l = null;
        }
        if (l == null) {
            throw new MigrationException("the Raft log in " + node + " is in use: stop the broker first");
        }
        return l;
    }

    private long export(SegmentedLogStore log, int size, long commitIndex, Path node) {
        if (log.snapshot().index() >= 0 || log.firstIndex() > 0) {
            throw new MigrationException("the Raft log in " + log.dir() + " starts at entry " + log.firstIndex()
                + " (its start was deleted): export needs the whole history");
        }
        if (commitIndex < 0 && log.lastIndex() >= log.firstIndex()) {
            throw new MigrationException("no commit index recorded in " + node.resolve("checkpoint") + ": which entries "
                + "of " + log.dir() + " are committed is unknown; start the broker group and stop this broker cleanly "
                + "(it records the commit index), then export again");
        }
        long end = Math.min(log.lastIndex(), commitIndex);
        Path commitlog = stage.resolve(ClassicStore.COMMITLOG);
        createDirectories(commitlog);
        Map<String, Queue> queues = new HashMap<>();
        Map<String, RandomAccessFile> sourceQueues = new HashMap<>();
        CRC32C sum = new CRC32C();
        long messages = 0;
        long stateEntries = 0;
        long offset = 0;
        FileChannel file = null;
        createDirectories(stage.resolve(ClassicStore.INDEX));
        IndexWriter index = new IndexWriter(stage.resolve(ClassicStore.INDEX), indexSlots, indexItems);
        try {
            long i = log.firstIndex();
            while (i <= end) {
                List<Entry> batch = log.entries(i, end + 1, BATCH_BYTES);
                for (Entry e : batch) {
                    i = e.index() + 1;
                    entryIndex = e.index();
                    if (e.type() != EntryType.NORMAL) {
                        continue;
                    }
                    ByteBuffer m = ByteBuffer.wrap(e.data());
                    if (m.remaining() >= 8 && m.getInt(4) == STATE_MAGIC) {
                        // The broker's own state (offsets, topics, ...): its files in config/ hold it.
                        stateEntries++;
                        continue;
                    }
                    if (m.remaining() < ClassicStore.MIN_MESSAGE || m.getInt(0) != m.remaining()
                        || (m.getInt(4) != MessageDecoder.MESSAGE_MAGIC_CODE
                        && m.getInt(4) != MessageDecoder.MESSAGE_MAGIC_CODE_V2)) {
                        throw new MigrationException("entry " + e.index() + " of " + log.dir() + " is not a stored "
                            + "message (" + m.remaining() + " bytes, size field " + (m.remaining() >= 4 ? m.getInt(0)
                            : -1) + ")");
                    }
                    long oldOffset = m.getLong(MessageDecoder.PHY_POS_POSITION);
                    long room = size - Math.floorMod(offset, (long) size);
                    if (m.remaining() + END_BLANK > room) {
                        if (file != null) {
                            ByteBuffer blank = ByteBuffer.allocate(END_BLANK);
                            blank.putInt((int) room).putInt(CommitLog.BLANK_MAGIC_CODE).flip();
                            write(file, blank, Math.floorMod(offset, (long) size), fileAt(commitlog, offset));
                            // Stock files have their full size: the broker maps them.
                            write(file, ByteBuffer.allocate(1), size - 1, fileAt(commitlog, offset));
                        }
                        offset += room;
                        closeQuietly(file);
                        file = null;
                    }
                    if (file == null) {
                        file = create(fileAt(commitlog, offset));
                    }
                    m.putLong(MessageDecoder.PHY_POS_POSITION, offset);
                    checksum(sum, m);
                    write(file, m.duplicate(), Math.floorMod(offset, (long) size), fileAt(commitlog, offset));
                    MessageExt msg = MessageDecoder.decode(m.duplicate(), false, false);
                    long tagsCode = sourceTagsCode(sourceQueues, msg, oldOffset);
                    unit(queues, msg, e.index(), m.remaining(), offset, tagsCode, log.dir());
                    index.add(msg, offset);
                    offset += m.remaining();
                    messages++;
                }
            }
            if (file != null) {
                write(file, ByteBuffer.allocate(1), size - 1, fileAt(commitlog, offset - 1));
            }
        } catch (IOException e) {
            throw new MigrationException("cannot read the Raft log " + log.dir() + " at entry " + entryIndex + ": "
                + e.getMessage());
        } finally {
            index.close();
            closeQuietly(file);
            for (Queue q : queues.values()) {
                closeQuietly(q.file);
            }
            for (RandomAccessFile f : sourceQueues.values()) {
                try {
                    f.close();
                } catch (IOException ignored) {
                    // only read
                }
            }
        }
        entryIndex = -1;
        copyConfig(from.resolve(ClassicStore.CONFIG), stage.resolve(ClassicStore.CONFIG));
        out.printf("export: %d messages of %s (entries up to the commit index %d) written to %s (%d bytes of "
            + "CommitLog in files of %d), %d ConsumeQueues, index/; %d broker state entries left out (config/ holds "
            + "that state)%n", messages, log.dir(), end, to.resolve(ClassicStore.COMMITLOG), offset, size,
            queues.size(), stateEntries);
        if (log.lastIndex() > end) {
            out.printf("export: %d entries after the commit index %d of %s left out (not known to be committed)%n",
                log.lastIndex() - end, end, node.resolve("checkpoint"));
        }
        TimerFiles.carry(from, from.resolve(ClassicStore.CONSUMEQUEUE), stage,
            stage.resolve(ClassicStore.CONSUMEQUEUE), out);
        // Durable before it is checked and before anything says it is done.
        syncTree(stage);
        verify(messages, sum.getValue(), queues, size);
        placing = true;
        moveIntoPlace();
        out.printf("export verified: %d messages, checksum %s, %d queues with the group's max offsets, in %s%n",
            messages, Long.toHexString(sum.getValue()), queues.size(), to);
        return messages;
    }

    private static Path fileAt(Path commitlog, long offset) {
        return commitlog.resolve(UtilAll.offset2FileName(offset));
    }

    /** Moves the checked export from the stage folder into {@code to}, then makes the renames durable. */
    private void moveIntoPlace() {
        List<Path> items;
        try (Stream<Path> s = Files.list(stage)) {
            items = s.sorted().toList();
        } catch (IOException e) {
            throw new MigrationException("cannot list " + stage + ": " + e.getMessage());
        }
        List<String> moved = new java.util.ArrayList<>();
        try {
            for (Path item : items) {
                Path dst = to.resolve(item.getFileName().toString());
                if (item.getFileName().toString().equals(ClassicStore.CONFIG) && Files.isDirectory(dst)) {
                    // config/ of the target (if any) takes the group's files over its own.
                    mergeInto(item, dst);
                } else {
                    if (Files.isDirectory(dst)) {
                        Files.delete(dst); // checked empty before the export
                    }
                    Files.move(item, dst, StandardCopyOption.ATOMIC_MOVE);
                }
                moved.add(item.getFileName().toString());
            }
            Files.delete(stage);
            sync.force(to);
            if (Files.isDirectory(to.resolve(ClassicStore.CONFIG))) {
                sync.force(to.resolve(ClassicStore.CONFIG));
            }
        } catch (IOException e) {
            throw new MigrationException("the export was checked in " + stage + " but moving it into " + to
                + " failed after " + moved + ": " + e.getMessage() + "; move the rest of " + stage + " by hand",
                MigrateCommand.EXIT_UNSAFE);
        }
    }

    private void mergeInto(Path src, Path dst) throws IOException {
        try (Stream<Path> s = Files.walk(src)) {
            for (Path f : s.sorted().toList()) {
                Path d = dst.resolve(src.relativize(f).toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(d);
                } else {
                    Files.move(f, d, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                    sync.force(d.getParent());
                }
            }
        }
        deleteTree(src);
    }

    /** Forces every file and folder under {@code root}, and {@code root} itself. */
    private void syncTree(Path root) {
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                sync.force(p);
            }
        } catch (IOException e) {
            throw new MigrationException("cannot fsync the export in " + root + ": " + e.getMessage());
        }
    }

    /** fsync of a file's content or a folder's entries. */
    private static void force(Path p) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    /** How many source ConsumeQueue folders were listed (once each). */
    long queueListings() {
        return queueListings;
    }

    /** Every message's bytes except its physical offset, which the export changes. */
    private static void checksum(CRC32C sum, ByteBuffer m) {
        ByteBuffer a = m.duplicate();
        a.limit(MessageDecoder.PHY_POS_POSITION);
        sum.update(a);
        ByteBuffer b = m.duplicate();
        b.position(MessageDecoder.PHY_POS_POSITION + 8);
        sum.update(b);
    }

    /**
     * The tags code of the group's own ConsumeQueue unit for this message when it points at it (a delay-level message
     * keeps its delivery time there), else the one computed from the tags.
     */
    private long sourceTagsCode(Map<String, RandomAccessFile> open, MessageExt msg, long oldOffset)
        throws IOException {
        Path dir = from.resolve(ClassicStore.CONSUMEQUEUE).resolve(msg.getTopic())
            .resolve(Integer.toString(msg.getQueueId()));
        long at = msg.getQueueOffset() * ClassicStore.CQ_UNIT;
        TreeMap<Long, Path> files = sourceQueueFiles.computeIfAbsent(dir, d -> {
            queueListings++;
            return Files.isDirectory(d) ? ClassicStore.dataFiles(d) : new TreeMap<>();
        });
        Map.Entry<Long, Path> f0 = files.floorEntry(at);
        Path file = null;
        long start = 0;
        if (f0 != null && at + ClassicStore.CQ_UNIT <= f0.getKey() + Files.size(f0.getValue())) {
            file = f0.getValue();
            start = f0.getKey();
        }
        if (file != null) {
            RandomAccessFile f = open.get(file.toString());
            if (f == null) {
                f = new RandomAccessFile(file.toFile(), "r");
                open.put(file.toString(), f);
            }
            byte[] unit = new byte[ClassicStore.CQ_UNIT];
            f.seek(at - start);
            f.readFully(unit);
            ByteBuffer u = ByteBuffer.wrap(unit);
            if (u.getLong(0) == oldOffset) {
                return u.getLong(12);
            }
        }
        return MessageExtBrokerInner.tagsString2tagsCode(msg.getTags());
    }

    private void unit(Map<String, Queue> queues, MessageExt msg, long index, int size, long offset, long tagsCode,
                      Path logDir) {
        String key = msg.getTopic() + "/" + msg.getQueueId();
        Queue q = queues.computeIfAbsent(key, k -> new Queue());
        if (msg.getQueueOffset() != q.next) {
            throw new MigrationException("queue " + key + ": the message of entry " + index + " of " + logDir
                + " has queue offset " + msg.getQueueOffset() + ", expected " + q.next + " (export needs every queue "
                + "from offset 0, in order)");
        }
        long at = q.next * ClassicStore.CQ_UNIT;
        long start = at - Math.floorMod(at, (long) cqFileSize);
        if (q.fileStart != start) {
            closeQuietly(q.file);
            Path dir = stage.resolve(ClassicStore.CONSUMEQUEUE).resolve(msg.getTopic())
                .resolve(Integer.toString(msg.getQueueId()));
            createDirectories(dir);
            q.path = dir.resolve(UtilAll.offset2FileName(start));
            q.file = create(q.path);
            write(q.file, ByteBuffer.allocate(1), cqFileSize - 1, q.path);
            q.fileStart = start;
        }
        ByteBuffer u = ByteBuffer.allocate(ClassicStore.CQ_UNIT);
        u.putLong(offset).putInt(size).putLong(tagsCode).flip();
        write(q.file, u, at - start, q.path);
        q.next++;
    }

    /** Reads back the CommitLog written and compares it, and each queue's max offset with the group's. */
    private void verify(long messages, long checksum, Map<String, Queue> queues, int size) {
        long[] count = {0};
        CRC32C sum = new CRC32C();
        if (messages == 0) {
            if (!ClassicStore.dataFiles(stage.resolve(ClassicStore.COMMITLOG)).isEmpty()) {
                throw new MigrationException("export check failed: " + stage.resolve(ClassicStore.COMMITLOG)
                    + " holds CommitLog files, no message was exported");
            }
            return;
        }
        try (ClassicStore s = ClassicStore.open(stage)) {
            s.scan(s.files().firstKey(), s.files().lastKey() + size, (off, m) -> {
                if (m.getLong(MessageDecoder.PHY_POS_POSITION) != off) {
                    throw new MigrationException("exported message at " + off + " says it lies at "
                        + m.getLong(MessageDecoder.PHY_POS_POSITION));
                }
                checksum(sum, m);
                count[0]++;
            }, null);
        }
        if (count[0] != messages || sum.getValue() != checksum) {
            throw new MigrationException("export check failed: " + count[0] + " messages read back from " + stage
                + " (checksum " + Long.toHexString(sum.getValue()) + "), " + messages + " exported (checksum "
                + Long.toHexString(checksum) + ")");
        }
        TreeMap<String, Long> differ = new TreeMap<>();
        for (Map.Entry<String, Queue> q : queues.entrySet()) {
            long groupMax = groupQueueMax(q.getKey());
            if (groupMax >= 0 && groupMax != q.getValue().next) {
                differ.put(q.getKey(), groupMax);
            }
        }
        if (!differ.isEmpty()) {
            String k = differ.firstKey();
            throw new MigrationException("export check failed: queue " + k + " ends at " + queues.get(k).next
                + " in the export but at " + differ.get(k) + " in the group's ConsumeQueue " + from.resolve(
                ClassicStore.CONSUMEQUEUE).resolve(k) + " (" + differ.size() + " queues differ; the commit index "
                + "recorded by the node may be behind its log: start the group and stop it cleanly)");
        }
    }

    /** The size of the group's ConsumeQueue files (all have the broker's one size), or stock's default. */
    private int groupQueueFileSize() {
        Path cq = from.resolve(ClassicStore.CONSUMEQUEUE);
        if (!Files.isDirectory(cq)) {
            return cqFileSize;
        }
        try (Stream<Path> s = Files.walk(cq, 3)) {
            for (Path f : s.filter(Files::isRegularFile).toList()) {
                long n = Files.size(f);
                if (n > 0 && n % ClassicStore.CQ_UNIT == 0) {
                    return (int) n;
                }
            }
        } catch (IOException e) {
            throw new MigrationException("cannot list " + cq + ": " + e.getMessage());
        }
        return cqFileSize;
    }

    /** The max offset of the group's ConsumeQueue {@code topic/queueId}: units up to the first empty one; -1 if none. */
    private long groupQueueMax(String key) {
        int slash = key.lastIndexOf('/');
        Path dir = from.resolve(ClassicStore.CONSUMEQUEUE).resolve(key.substring(0, slash))
            .resolve(key.substring(slash + 1));
        if (!Files.isDirectory(dir)) {
            return -1;
        }
        try (Stream<Path> s = Files.list(dir)) {
            List<Path> files = s.sorted().toList();
            if (files.isEmpty()) {
                return -1;
            }
            Path last = files.get(files.size() - 1);
            byte[] b = Files.readAllBytes(last);
            ByteBuffer u = ByteBuffer.wrap(b);
            long n = 0;
            while ((n + 1) * ClassicStore.CQ_UNIT <= b.length && u.getLong((int) (n * ClassicStore.CQ_UNIT)) >= 0
                && u.getInt((int) (n * ClassicStore.CQ_UNIT) + 8) > 0) {
                n++;
            }
            return Long.parseLong(last.getFileName().toString()) / ClassicStore.CQ_UNIT + n;
        } catch (IOException | NumberFormatException e) {
            throw new MigrationException("cannot read the group's ConsumeQueue " + dir + ": " + e.getMessage());
        }
    }

    /** Copies the broker's {@code config/} (topics, subscription groups, consumer offsets, delay offsets). */
    private static void copyConfig(Path src, Path dst) {
        if (!Files.isDirectory(src)) {
            return;
        }
        try (Stream<Path> s = Files.walk(src)) {
            for (Path f : s.sorted().toList()) {
                Path d = dst.resolve(src.relativize(f).toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(d);
                } else if (Files.isRegularFile(f)) {
                    Files.copy(f, d, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (IOException e) {
            throw new MigrationException("cannot copy " + src + " to " + dst + ": " + e.getMessage());
        }
    }

    private static void write(FileChannel ch, ByteBuffer b, long at, Path file) {
        long p = at;
        try {
            while (b.hasRemaining()) {
                p += ch.write(b, p);
            }
        } catch (IOException e) {
            throw new MigrationException("cannot write " + file + " at " + p + ": " + e.getMessage());
        }
    }

    private static FileChannel create(Path file) {
        try {
            return FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw new MigrationException("cannot create " + file + ": " + e.getMessage());
        }
    }

    private static void createDirectories(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new MigrationException("cannot create " + dir + ": " + e.getMessage());
        }
    }

    private static void deleteTree(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new MigrationException("cannot delete " + root + ": " + e.getMessage());
        }
    }

    private static boolean isEmpty(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        } catch (IOException e) {
            throw new MigrationException("cannot list " + dir + ": " + e.getMessage());
        }
    }

    private static void closeQuietly(FileChannel ch) {
        if (ch == null) {
            return;
        }
        try {
            ch.close();
        } catch (IOException ignored) {
            // written data is in the page cache; the check reads it back
        }
    }
}
