package dev.dledger.migration;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.store.CommitLog;

/**
 * A stock (master/slave) RocketMQ store, read without being changed: its CommitLog files are mapped read-only, its
 * ConsumeQueue files are read, nothing is created, renamed or locked for longer than the in-use probe.
 *
 * <p>Layout: {@code ${root}/commitlog/<20-digit start offset>} files of one size, {@code consumequeue/<topic>/<queueId>/}
 * files of 20-byte units, {@code index/}, {@code config/*.json}, {@code checkpoint}, {@code abort} (present after an
 * unclean stop) and {@code lock} (locked by a running broker).
 */
final class ClassicStore implements AutoCloseable {

    static final String COMMITLOG = "commitlog";
    static final String CONSUMEQUEUE = "consumequeue";
    static final String INDEX = "index";
    static final String CONFIG = "config";
    static final String CHECKPOINT = "checkpoint";
    static final String ABORT = "abort";
    static final String LOCK = "lock";
    /** Bytes of one ConsumeQueue unit: physical offset (8), size (4), tags code (8). */
    static final int CQ_UNIT = 20;
    /** The smallest stored message: the fixed fields of a v1 message with empty body, topic and properties. */
    static final int MIN_MESSAGE = 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + 1 + 2;

    /** What a folder holds. */
    enum Kind {
        /** A master/slave store: a {@code commitlog/} folder of data files. */
        CLASSIC,
        /** A stock DLedger-mode store: {@code dledger-<id>/data/} files and no CommitLog files. */
        DLEDGER,
        /** Anything else. */
        NONE
    }

    /** Sees each message of the CommitLog in offset order. */
    interface Visitor {
        /** {@code message} holds exactly the message at {@code offset} (position 0, limit its size); do not keep it. */
        void message(long offset, ByteBuffer message);
    }

    /** Sees each unit of a ConsumeQueue in queue-offset order. */
    interface QueueVisitor {
        /** The unit at {@code queueOffset}. */
        void unit(long queueOffset, long phyOffset, int size, long tagsCode);
    }

    /**
     * The result of a scan.
     *
     * @param messages   messages found
     * @param minOffset  the offset of the first CommitLog file
     * @param endOffset  the end of the last message (the store's max offset)
     * @param bytes      bytes of messages
     */
    record Scan(long messages, long minOffset, long endOffset, long bytes) {
    }

    /** Controller mode's epoch file in the store root, written by the broker's auto-switch HA service. */
    static final String EPOCH_FILE = "epochFileCheckpoint";

    private final Path root;
    private final TreeMap<Long, Path> files;
    private final int fileSize;
    /**
     * Where the log ends for the migration: Long.MAX_VALUE, or in a Controller-mode store the confirm offset (what the
     * sync state set acknowledged); the messages after it were never confirmed and a new master would truncate them.
     */
    private long limit = Long.MAX_VALUE;
    /** Controller mode's epochs: epoch to start offset, or empty. */
    private final TreeMap<Integer, Long> epochs = new TreeMap<>();
    private final Map<Long, MappedByteBuffer> maps = new HashMap<>();
    private final Map<Path, MappedByteBuffer> queueMaps = new HashMap<>();
    private Scan scan;

    private ClassicStore(Path root, TreeMap<Long, Path> files, int fileSize) {
        this.root = root;
        this.files = files;
        this.fileSize = fileSize;
    }

    /** What {@code root} holds. */
    static Kind kind(Path root) {
        if (!Files.isDirectory(root)) {
            return Kind.NONE;
        }
        if (!dataFiles(root.resolve(COMMITLOG)).isEmpty()) {
            return Kind.CLASSIC;
        }
        try (Stream<Path> s = Files.list(root)) {
            for (Path p : s.toList()) {
                if (p.getFileName().toString().startsWith("dledger-") && !dataFiles(p.resolve("data")).isEmpty()) {
                    return Kind.DLEDGER;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Kind.NONE;
    }

    /**
     * Opens the store in {@code root} for reading.
     *
     * @throws MigrationException if it is not a master/slave store, or its CommitLog files are truncated or missing
     */
    static ClassicStore open(Path root) {
        return open(root, null);
    }

    /**
     * Opens the store in {@code root} for reading, its CommitLog files in the folders of {@code commitLogPaths} (the
     * broker's {@code storePathCommitLog}, {@code :}-separated for a multi-path CommitLog), or in {@code
     * root/commitlog} when null.
     *
     * @throws MigrationException if it is not a master/slave store, or its CommitLog files are truncated, missing, or
     *                            in two folders at once
     */
    static ClassicStore open(Path root, String commitLogPaths) {
        List<Path> dirs = commitLogDirs(root, commitLogPaths);
        String where = dirs.size() == 1 ? dirs.get(0).toString() : dirs.toString();
        Kind kind = commitLogPaths == null ? kind(root) : Kind.CLASSIC;
        if (kind == Kind.DLEDGER) {
            throw new MigrationException(root + " is a stock DLedger-mode store: our brokers open it in place (set "
                + "storePathRootDir to it), there is nothing to convert");
        }
        if (kind == Kind.NONE) {
            throw new MigrationException(root + " is not a RocketMQ store: " + (Files.isDirectory(root)
                ? "it has no CommitLog files in " + root.resolve(COMMITLOG) : "no such folder"));
        }
        TreeMap<Long, Path> files = new TreeMap<>();
        for (Path d : dirs) {
            for (Map.Entry<Long, Path> f : dataFiles(d).entrySet()) {
                Path other = files.put(f.getKey(), f.getValue());
                if (other != null) {
                    throw new MigrationException("CommitLog file " + f.getValue().getFileName() + " is in both "
                        + other.getParent() + " and " + d + " of --commitlog " + commitLogPaths);
                }
            }
        }
        if (files.isEmpty()) {
            throw new MigrationException(root + " is not a RocketMQ store: no CommitLog files in " + where);
        }
        long size;
        try {
            size = Files.size(files.lastEntry().getValue());
            for (Map.Entry<Long, Path> f : files.entrySet()) {
                long s = Files.size(f.getValue());
                if (s != size || size <= 0 || size > Integer.MAX_VALUE) {
                    throw new MigrationException("CommitLog file " + f.getValue() + " has " + s + " bytes but the "
                        + "last one has " + size + ": the file is truncated (or mappedFileSizeCommitLog changed)");
                }
            }
        } catch (IOException e) {
            throw new MigrationException("cannot read " + where + ": " + e.getMessage());
        }
        long expected = files.firstKey();
        for (long start : files.keySet()) {
            if (start != expected) {
                throw new MigrationException("CommitLog file " + CommitLogName.of(expected) + " is missing in "
                    + where + " (the next one is " + CommitLogName.of(start) + ")" + (commitLogPaths == null
                    ? "; if storePathCommitLog lists several folders, give it with --commitlog" : ""));
            }
            expected += size;
        }
        if (files.firstKey() % size != 0) {
            throw new MigrationException("CommitLog file " + files.firstEntry().getValue() + " does not start at a "
                + "multiple of the file size " + size);
        }
        long filesEnd = files.lastKey() + size;
        for (Map.Entry<String, Map<Integer, Path>> t : queues(root.resolve(CONSUMEQUEUE)).entrySet()) {
            for (Map.Entry<Integer, Path> q : t.getValue().entrySet()) {
                long end = lastUnitEnd(q.getValue());
                if (end > filesEnd && !appendedSince(dirs, end - 1 - Math.floorMod(end - 1, size))) {
                    // The broker dispatches a message to its queue only after writing it: its file is elsewhere.
                    throw new MigrationException("ConsumeQueue " + t.getKey() + "/" + q.getKey() + " points at "
                        + "CommitLog offset " + (end - 1) + ", past the end " + filesEnd + " of the CommitLog files in "
                        + where + ": CommitLog file " + CommitLogName.of(end - 1 - Math.floorMod(end - 1, size))
                        + " is missing" + (commitLogPaths == null
                        ? "; if storePathCommitLog lists several folders, give it with --commitlog" : ""));
                }
            }
        }
        ClassicStore s = new ClassicStore(root, files, (int) size);
        if (Files.exists(root.resolve(EPOCH_FILE))) {
            s.readControllerState();
        }
        return s;
    }

    /**
     * A Controller-mode store: reads the epoch file ({@code <count>}, {@code <crc32>}, then {@code epoch-startOffset}
     * lines) and the checkpoint's confirm offset (bytes 32..40 of {@code checkpoint}), which becomes the end of the
     * log for the migration.
     */
    private void readControllerState() {
        Path f = root.resolve(EPOCH_FILE);
        List<String> lines;
        try {
            lines = Files.readAllLines(f, java.nio.charset.StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new MigrationException("cannot read the epoch file " + f + ": " + e.getMessage());
        }
        if (lines.size() < 2) {
            throw new MigrationException("epoch file " + f + " has " + lines.size() + " lines, not a count, a CRC and "
                + "the epochs");
        }
        int count;
        try {
            count = Integer.parseInt(lines.get(0).trim());
        } catch (NumberFormatException e) {
            throw new MigrationException("epoch file " + f + ": line 1 '" + lines.get(0) + "' is not the entry count");
        }
        long lastStart = -1;
        for (int i = 2; i < lines.size(); i++) {
            String line = lines.get(i).trim();
            if (line.isEmpty()) {
                continue;
            }
            String[] kv = line.split("-");
            int epoch;
            long start;
            try {
                epoch = Integer.parseInt(kv[0]);
                start = Long.parseLong(kv[1]);
            } catch (RuntimeException e) {
                throw new MigrationException("epoch file " + f + ": line " + (i + 1) + " '" + line + "' is not "
                    + "epoch-startOffset");
            }
            if ((!epochs.isEmpty() && epoch <= epochs.lastKey()) || start < lastStart) {
                throw new MigrationException("epoch file " + f + ": line " + (i + 1) + " '" + line + "' does not "
                    + "follow the epoch before it");
            }
            epochs.put(epoch, start);
            lastStart = start;
        }
        if (epochs.size() != count) {
            throw new MigrationException("epoch file " + f + " says " + count + " epochs but holds " + epochs.size());
        }
        Path cp = root.resolve(CHECKPOINT);
        long confirm = 0;
        try {
            if (Files.exists(cp) && Files.size(cp) >= 40) {
                try (FileChannel ch = FileChannel.open(cp, StandardOpenOption.READ)) {
                    ByteBuffer b = ByteBuffer.allocate(8);
                    ch.read(b, 32);
                    confirm = b.getLong(0);
                }
            }
        } catch (IOException e) {
            throw new MigrationException("cannot read the confirm offset in " + cp + ": " + e.getMessage());
        }
        if (confirm > 0) {
            limit = confirm;
        }
    }

    /** Controller mode's epochs (epoch to start offset); empty for a master/slave store. */
    TreeMap<Integer, Long> epochs() {
        return epochs;
    }

    /**
     * The start of the first file a live pass leaves for later: the last file (the broker writes it), or the file of
     * a Controller-mode store's confirm offset if that comes first (what follows it may still be truncated).
     */
    long liveEnd() {
        Long f = files.floorKey(limit);
        return f == null ? files.firstKey() : Math.min(files.lastKey(), f);
    }

    /** The end of the log for the migration: the confirm offset of a Controller-mode store, else Long.MAX_VALUE. */
    long limit() {
        return limit;
    }

    /** The end of the last message in the files, past the confirm offset too (scans from the confirm offset's file). */
    long rawEnd() {
        long l = limit;
        limit = Long.MAX_VALUE;
        try {
            Long from = files.floorKey(l);
            return scan(from == null ? files.firstKey() : from, Long.MAX_VALUE, (o, m) -> {
            }, null).endOffset();
        } finally {
            limit = l;
        }
    }

    /**
     * One line on a Controller-mode store (epochs, confirm offset, bytes after it left out), or null for a master/slave
     * store.
     */
    String controllerSummary() {
        if (epochs.isEmpty() && limit == Long.MAX_VALUE) {
            return null;
        }
        String head = "Controller-mode store: " + epochs.size() + " epochs " + epochs + " in " + root.resolve(EPOCH_FILE);
        if (limit == Long.MAX_VALUE) {
            return head + ", no confirm offset recorded: the whole log is taken";
        }
        long raw = rawEnd();
        long end = Math.min(raw, limit);
        return head + ", confirm offset " + limit + ": the log is taken up to " + end + ", " + (raw - end)
            + " bytes after it were never confirmed and are left out";
    }

    /** The CommitLog folders: those of a {@code :}-separated {@code storePathCommitLog}, or {@code root/commitlog}. */
    static List<Path> commitLogDirs(Path root, String commitLogPaths) {
        if (commitLogPaths == null) {
            return List.of(root.resolve(COMMITLOG));
        }
        List<Path> dirs = new ArrayList<>();
        for (String p : commitLogPaths.split(":")) {
            if (!p.isBlank()) {
                dirs.add(Path.of(p.trim()));
            }
        }
        if (dirs.isEmpty()) {
            throw new MigrationException("--commitlog '" + commitLogPaths + "' names no folder");
        }
        return dirs;
    }

    static TreeMap<Long, Path> dataFiles(Path dir) {
        TreeMap<Long, Path> out = new TreeMap<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.toList()) {
                String name = p.getFileName().toString();
                if (name.length() == 20 && name.chars().allMatch(Character::isDigit) && Files.isRegularFile(p)) {
                    out.put(Long.parseLong(name), p);
                }
            }
        } catch (IOException e) {
            throw new MigrationException("cannot list " + dir + ": " + e.getMessage());
        }
        return out;
    }

    Path root() {
        return root;
    }

    int fileSize() {
        return fileSize;
    }

    TreeMap<Long, Path> files() {
        return files;
    }

    /** Bytes of the CommitLog files. */
    long fileBytes() {
        return (long) files.size() * fileSize;
    }

    /** Whether the last broker on this store stopped cleanly (no {@code abort} file). */
    boolean cleanShutdown() {
        return !Files.exists(root.resolve(ABORT));
    }

    /**
     * Whether a running broker holds the store's lock. Probes with a lock on the first byte of {@code lock}, taken
     * and released at once; the file is never created or written.
     */
    static boolean inUse(Path root) {
        Path lock = root.resolve(LOCK);
        if (!Files.exists(lock)) {
            return false;
        }
        try (FileChannel ch = FileChannel.open(lock, StandardOpenOption.WRITE)) {
            FileLock l = ch.tryLock(0, 1, false);
            if (l == null) {
                return true;
            }
            l.release();
            return false;
        } catch (OverlappingFileLockException e) {
            return true;
        } catch (IOException e) {
            throw new MigrationException("cannot probe the lock " + lock + ": " + e.getMessage());
        }
    }

    /** Refuses a store a broker is running on. */
    void ensureNotInUse() {
        if (inUse(root)) {
            throw new MigrationException("store " + root + " is in use by a running broker (it holds " + root.resolve(LOCK)
                + "); stop the broker first");
        }
    }

    /** Scans every message once (cached): counts, offsets. */
    Scan scan() {
        if (scan == null) {
            scan = scan((o, m) -> {
            }, null);
        }
        return scan;
    }

    /**
     * Visits every message in offset order, as stock recovery reads the files: a BLANK record ends a file, the
     * first record that is not a message ends the log.
     *
     * @param progress advanced by the bytes of each file, or null
     * @throws MigrationException if a record that is not a message lies before data in a later file
     */
    Scan scan(Visitor v, Progress progress) {
        return scan(files.firstKey(), Long.MAX_VALUE, v, progress);
    }

    /**
     * Visits the messages of the files starting in {@code [fromFile, toFile)} (file start offsets), as
     * {@link #scan(Visitor, Progress)} does for all of them; the result counts only those messages and its
     * {@code minOffset} is {@code fromFile}.
     */
    Scan scan(long fromFile, long toFile, Visitor v, Progress progress) {
        long count = 0;
        long bytes = 0;
        long end = fromFile;
        boolean ended = false;
        boolean cut = false;
        for (Map.Entry<Long, Path> f : files.subMap(fromFile, true, toFile, false).entrySet()) {
            long start = f.getKey();
            ByteBuffer b = map(start);
            if (cut) {
                continue;
            }
            if (ended) {
                if (b.getInt(0) != 0) {
                    throw new MigrationException("CommitLog file " + f.getValue() + " holds data after the end of the "
                        + "log at offset " + end + " (a corrupted record there)");
                }
                continue;
            }
            int pos = 0;
            while (pos + 8 <= fileSize) {
                int total = b.getInt(pos);
                int magic = b.getInt(pos + 4);
                if (magic == CommitLog.BLANK_MAGIC_CODE) {
                    end = start + fileSize;
                    break;
                }
                boolean message = (magic == MessageDecoder.MESSAGE_MAGIC_CODE
                    || magic == MessageDecoder.MESSAGE_MAGIC_CODE_V2) && total >= MIN_MESSAGE && pos + total <= fileSize;
                if (!message) {
                    ended = true;
                    break;
                }
                if (start + pos >= limit) {
                    // Controller mode: the end of what was confirmed; the rest is left out.
                    cut = true;
                    break;
                }
                if (start + pos + total > limit) {
                    throw new MigrationException("the confirm offset " + limit + " of " + root.resolve(CHECKPOINT)
                        + " lies inside the message at offset " + (start + pos) + " of " + f.getValue());
                }
                v.message(start + pos, b.slice(pos, total));
                count++;
                bytes += total;
                pos += total;
                end = start + pos;
            }
            if (progress != null) {
                progress.advance(fileSize);
            }
        }
        return new Scan(count, fromFile, end, bytes);
    }

    /** The message at {@code offset} (position 0, limit its size), or null if no message starts there. */
    ByteBuffer messageAt(long offset) {
        Map.Entry<Long, Path> f = files.floorEntry(offset);
        if (f == null || offset - f.getKey() + 8 > fileSize) {
            return null;
        }
        ByteBuffer b = map(f.getKey());
        int pos = (int) (offset - f.getKey());
        int total = b.getInt(pos);
        int magic = b.getInt(pos + 4);
        if ((magic != MessageDecoder.MESSAGE_MAGIC_CODE && magic != MessageDecoder.MESSAGE_MAGIC_CODE_V2)
            || total < MIN_MESSAGE || pos + total > fileSize) {
            return null;
        }
        return b.slice(pos, total);
    }

    private ByteBuffer map(long start) {
        return maps.computeIfAbsent(start, s -> mapReadOnly(files.get(s)));
    }

    static MappedByteBuffer mapReadOnly(Path p) {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size());
        } catch (IOException e) {
            throw new MigrationException("cannot read " + p + ": " + e.getMessage());
        }
    }

    /** Every queue folder: topic, then queue id, then its folder. */
    Map<String, Map<Integer, Path>> queues() {
        return queues(root.resolve(CONSUMEQUEUE));
    }

    static Map<String, Map<Integer, Path>> queues(Path cqRoot) {
        Map<String, Map<Integer, Path>> out = new TreeMap<>();
        if (!Files.isDirectory(cqRoot)) {
            return out;
        }
        try (Stream<Path> topics = Files.list(cqRoot)) {
            for (Path t : topics.filter(Files::isDirectory).toList()) {
                try (Stream<Path> qs = Files.list(t)) {
                    for (Path q : qs.filter(Files::isDirectory).toList()) {
                        String name = q.getFileName().toString();
                        if (name.chars().allMatch(Character::isDigit) && !name.isEmpty()) {
                            out.computeIfAbsent(t.getFileName().toString(), k -> new TreeMap<>())
                                .put(Integer.parseInt(name), q);
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new MigrationException("cannot list " + cqRoot + ": " + e.getMessage());
        }
        return out;
    }

    /**
     * Visits the written units of the queue in {@code dir}: units with a size, from the first such unit to the
     * first unwritten one.
     */
    static void readQueue(Path dir, QueueVisitor v) {
        TreeMap<Long, Path> qf = dataFiles(dir);
        boolean started = false;
        for (Map.Entry<Long, Path> f : qf.entrySet()) {
            ByteBuffer b = mapReadOnly(f.getValue());
            for (int pos = 0; pos + CQ_UNIT <= b.limit(); pos += CQ_UNIT) {
                long phy = b.getLong(pos);
                int size = b.getInt(pos + 8);
                long tags = b.getLong(pos + 12);
                if (size <= 0) {
                    if (started) {
                        return;
                    }
                    continue;
                }
                started = true;
                v.unit((f.getKey() + pos) / CQ_UNIT, phy, size, tags);
            }
        }
    }

    /** Whether a running broker created the CommitLog file starting at {@code start} in one of {@code dirs} by now. */
    private static boolean appendedSince(List<Path> dirs, long start) {
        for (Path d : dirs) {
            if (dataFiles(d).containsKey(start)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The end (physical offset plus size) of the last written unit of the queue in {@code dir}, read from its last
     * file that holds one; 0 if none.
     */
    static long lastUnitEnd(Path dir) {
        TreeMap<Long, Path> qf = dataFiles(dir);
        for (Path f : qf.descendingMap().values()) {
            ByteBuffer b = mapReadOnly(f);
            for (int pos = b.limit() - b.limit() % CQ_UNIT - CQ_UNIT; pos >= 0; pos -= CQ_UNIT) {
                int size = b.getInt(pos + 8);
                if (size > 0) {
                    return b.getLong(pos) + size;
                }
            }
        }
        return 0;
    }

    /** The unit of {@code topic}/{@code queueId} at {@code queueOffset} as {phy, size, tagsCode}, or null. */
    long[] queueUnit(String topic, int queueId, long queueOffset) {
        Path dir = root.resolve(CONSUMEQUEUE).resolve(topic).resolve(Integer.toString(queueId));
        TreeMap<Long, Path> qf = queueFiles.computeIfAbsent(dir, ClassicStore::dataFiles);
        long byteOffset = queueOffset * CQ_UNIT;
        Map.Entry<Long, Path> f = qf.floorEntry(byteOffset);
        if (f == null) {
            return null;
        }
        MappedByteBuffer b = queueMaps.computeIfAbsent(f.getValue(), ClassicStore::mapReadOnly);
        int pos = (int) (byteOffset - f.getKey());
        if (pos + CQ_UNIT > b.limit()) {
            return null;
        }
        return new long[] {b.getLong(pos), b.getInt(pos + 8), b.getLong(pos + 12)};
    }

    private final Map<Path, TreeMap<Long, Path>> queueFiles = new HashMap<>();

    /** The {@code config/*.json} files. */
    List<Path> configFiles() {
        return configFiles(root);
    }

    static List<Path> configFiles(Path root) {
        Path dir = root.resolve(CONFIG);
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(p -> p.getFileName().toString().endsWith(".json") && Files.isRegularFile(p)).sorted()
                .forEach(out::add);
        } catch (NoSuchFileException e) {
            return out;
        } catch (IOException e) {
            throw new MigrationException("cannot list " + dir + ": " + e.getMessage());
        }
        return out;
    }

    @Override
    public void close() {
        maps.clear();
        queueMaps.clear();
    }
}
