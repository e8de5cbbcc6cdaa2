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

    private final Path root;
    private final TreeMap<Long, Path> files;
    private final int fileSize;
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
        Kind kind = kind(root);
        if (kind == Kind.DLEDGER) {
            throw new MigrationException(root + " is a stock DLedger-mode store: our brokers open it in place (set "
                + "storePathRootDir to it), there is nothing to convert");
        }
        if (kind == Kind.NONE) {
            throw new MigrationException(root + " is not a RocketMQ store: " + (Files.isDirectory(root)
                ? "it has no CommitLog files in " + root.resolve(COMMITLOG) : "no such folder"));
        }
        TreeMap<Long, Path> files = dataFiles(root.resolve(COMMITLOG));
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
            throw new MigrationException("cannot read " + root.resolve(COMMITLOG) + ": " + e.getMessage());
        }
        long expected = files.firstKey();
        for (long start : files.keySet()) {
            if (start != expected) {
                throw new MigrationException("CommitLog file " + CommitLogName.of(expected) + " is missing in "
                    + root.resolve(COMMITLOG) + " (the next one is " + CommitLogName.of(start) + ")");
            }
            expected += size;
        }
        if (files.firstKey() % size != 0) {
            throw new MigrationException("CommitLog file " + files.firstEntry().getValue() + " does not start at a "
                + "multiple of the file size " + size);
        }
        return new ClassicStore(root, files, (int) size);
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
        for (Map.Entry<Long, Path> f : files.subMap(fromFile, true, toFile, false).entrySet()) {
            long start = f.getKey();
            ByteBuffer b = map(start);
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
