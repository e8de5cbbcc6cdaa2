package dev.dledger.migration;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
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
import java.nio.file.StandardOpenOption;
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
 * own unit, so that delay-level delivery times stay); {@code config/} copied. Then it reads back what it wrote and
 * checks it against the log: the message count, a checksum of every message (its physical offset aside) and, per
 * queue, the max offset against the group's ConsumeQueue.
 *
 * <p>Not exported: {@code index/} (the stock broker serves queries by key only for messages it indexed itself),
 * {@code timerwheel/} and {@code timerlog/} (see issue 17). A log whose start was deleted by retention is refused,
 * as are queues that do not start at offset 0 (the stock ConsumeQueue recovery stops at an empty unit).
 *
 * <p>Memory: one small record per queue; messages stream through.
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

    private final Path from;
    private final Path to;
    private final String selfId;
    private final int fileSize;
    private final PrintStream out;
    /** The broker's {@code mappedFileSizeConsumeQueue}: the size of the group's ConsumeQueue files. */
    private int cqFileSize = ClassicStore.CQ_UNIT * 300_000;

    /** One queue: how many units written, and the file being written. */
    private static final class Queue {
        long next;
        FileChannel file;
        long fileStart = -1;
    }

    Exporter(Path from, Path to, String selfId, int fileSize, PrintStream out) {
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
        if (Files.isDirectory(to.resolve(ClassicStore.COMMITLOG)) && !isEmpty(to.resolve(ClassicStore.COMMITLOG))) {
            throw new MigrationException("target " + to.resolve(ClassicStore.COMMITLOG) + " is not empty");
        }
        try (FileChannel lockFile = FileChannel.open(node.resolve("lock"), StandardOpenOption.CREATE,
            StandardOpenOption.WRITE); FileLock lock = tryLock(lockFile, node)) {
            StoreConfig cfg = StoreConfig.detect(node, StoreConfig.defaults());
            int size = fileSize > 0 ? fileSize : cfg.dataFileSizeBytes();
            cqFileSize = groupQueueFileSize();
            try (SegmentedLogStore log = SegmentedLogStore.open(node, cfg)) {
                return export(log, size);
            }
        } catch (IOException e) {
            throw new MigrationException("cannot read " + node + ": " + e.getMessage());
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

    private long export(SegmentedLogStore log, int size) throws IOException {
        if (log.snapshot().index() >= 0 || log.firstIndex() > 0) {
            throw new MigrationException("the Raft log in " + log.dir() + " starts at entry " + log.firstIndex()
                + " (its start was deleted): export needs the whole history");
        }
        Path commitlog = to.resolve(ClassicStore.COMMITLOG);
        Files.createDirectories(commitlog);
        Map<String, Queue> queues = new HashMap<>();
        Map<String, RandomAccessFile> sourceQueues = new HashMap<>();
        CRC32C sum = new CRC32C();
        long messages = 0;
        long stateEntries = 0;
        long offset = 0;
        FileChannel file = null;
        try {
            long i = log.firstIndex();
            while (i <= log.lastIndex()) {
                List<Entry> batch = log.entries(i, log.lastIndex() + 1, BATCH_BYTES);
                for (Entry e : batch) {
                    i = e.index() + 1;
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
                            write(file, blank, Math.floorMod(offset, (long) size));
                            // Stock files have their full size: the broker maps them.
                            write(file, ByteBuffer.allocate(1), size - 1);
                        }
                        offset += room;
                        closeQuietly(file);
                        file = null;
                    }
                    if (file == null) {
                        file = FileChannel.open(commitlog.resolve(UtilAll.offset2FileName(offset)),
                            StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                    }
                    m.putLong(MessageDecoder.PHY_POS_POSITION, offset);
                    checksum(sum, m);
                    write(file, m.duplicate(), Math.floorMod(offset, (long) size));
                    MessageExt msg = MessageDecoder.decode(m.duplicate(), false, false);
                    long tagsCode = sourceTagsCode(sourceQueues, msg, oldOffset);
                    unit(queues, msg, offset, m.remaining(), tagsCode);
                    offset += m.remaining();
                    messages++;
                }
            }
            if (file != null) {
                write(file, ByteBuffer.allocate(1), size - 1);
                file.force(true);
            }
        } finally {
            closeQuietly(file);
            for (Queue q : queues.values()) {
                closeQuietly(q.file);
            }
            for (RandomAccessFile f : sourceQueues.values()) {
                f.close();
            }
        }
        copyConfig(from.resolve(ClassicStore.CONFIG), to.resolve(ClassicStore.CONFIG));
        out.printf("export: %d messages of %s written to %s (%d bytes of CommitLog in files of %d), %d "
            + "ConsumeQueues; %d broker state entries left out (config/ holds that state)%n", messages, log.dir(),
            commitlog, offset, size, queues.size(), stateEntries);
        verify(messages, sum.getValue(), queues, size);
        return messages;
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
        Path file = null;
        long start = 0;
        if (Files.isDirectory(dir)) {
            try (Stream<Path> s = Files.list(dir)) {
                for (Path p : s.sorted().toList()) {
                    long st = Long.parseLong(p.getFileName().toString());
                    if (st <= at && at + ClassicStore.CQ_UNIT <= st + Files.size(p)) {
                        file = p;
                        start = st;
                    }
                }
            } catch (NumberFormatException e) {
                file = null;
            }
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

    private void unit(Map<String, Queue> queues, MessageExt msg, long offset, int size, long tagsCode)
        throws IOException {
        String key = msg.getTopic() + "/" + msg.getQueueId();
        Queue q = queues.computeIfAbsent(key, k -> new Queue());
        if (msg.getQueueOffset() != q.next) {
            throw new MigrationException("queue " + key + ": the message at offset " + offset + " has queue offset "
                + msg.getQueueOffset() + ", expected " + q.next + " (export needs every queue from offset 0, in order)");
        }
        long at = q.next * ClassicStore.CQ_UNIT;
        long start = at - Math.floorMod(at, (long) cqFileSize);
        if (q.fileStart != start) {
            closeQuietly(q.file);
            Path dir = to.resolve(ClassicStore.CONSUMEQUEUE).resolve(msg.getTopic())
                .resolve(Integer.toString(msg.getQueueId()));
            Files.createDirectories(dir);
            q.file = FileChannel.open(dir.resolve(UtilAll.offset2FileName(start)), StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE);
            q.file.truncate(cqFileSize);
            write(q.file, ByteBuffer.allocate(1), cqFileSize - 1);
            q.fileStart = start;
        }
        ByteBuffer u = ByteBuffer.allocate(ClassicStore.CQ_UNIT);
        u.putLong(offset).putInt(size).putLong(tagsCode).flip();
        write(q.file, u, at - start);
        q.next++;
    }

    /** Reads back the CommitLog written and compares it, and each queue's max offset with the group's. */
    private void verify(long messages, long checksum, Map<String, Queue> queues, int size) {
        long[] count = {0};
        CRC32C sum = new CRC32C();
        try (ClassicStore s = ClassicStore.open(to)) {
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
            throw new MigrationException("export check failed: " + count[0] + " messages read back from " + to
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
                + " in " + to + " but at " + differ.get(k) + " in the group's ConsumeQueue (" + differ.size()
                + " queues differ)");
        }
        out.printf("export verified: %d messages, checksum %s, %d queues with the group's max offsets%n", messages,
            Long.toHexString(checksum), queues.size());
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

    private static void write(FileChannel ch, ByteBuffer b, long at) throws IOException {
        long p = at;
        while (b.hasRemaining()) {
            p += ch.write(b, p);
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
