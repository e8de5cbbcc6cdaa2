package dev.dledger.migration;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The timer wheel's state of a store carried to a store whose CommitLog offsets differ (rewrite, export).
 *
 * <p>RocketMQ 5.5.1's {@code TimerMessageStore} keeps a pending timer message as a copy in the CommitLog under the
 * topic {@code rmq_sys_wheel_timer} (queue 0), a 52-byte unit in {@code timerlog/} (size, previous unit of the slot,
 * magic, enqueue time, delay, the copy's CommitLog offset at byte 28 and its size at byte 36, topic hash, reserved)
 * and a slot in {@code timerwheel} (time, first and last unit of the slot's chain in the timer log, count). The wheel
 * and the checkpoint ({@code config/timercheck}: read time, timer log flush position, timer queue offsets) hold
 * timer log positions, times and queue offsets, which the conversion keeps; only the timer log's CommitLog offsets
 * change. Each is translated through the timer topic's ConsumeQueues, which both stores have with the same queue
 * offsets: the old offset is looked up (binary search) in the source's queue, which gives its queue offset, and the
 * unit at that queue offset in the target's queue gives the new offset (its size must match). Units whose message the
 * source no longer holds (deleted by retention) get offset -1, which the broker reads as a missing message and skips;
 * they are counted, and those still pending are named in a warning (the source broker could not deliver them either).
 *
 * <p>Memory: the timer log streams through in chunks; the queues are read through the page cache.
 */
final class TimerFiles {

    static final String TIMERWHEEL = "timerwheel";
    static final String TIMERLOG = "timerlog";
    static final String TIMER_TOPIC = "rmq_sys_wheel_timer";
    /** Stock {@code TimerLog.UNIT_SIZE}. */
    static final int UNIT_SIZE = 52;
    private static final int MAGIC_AT = 12;
    private static final int ENQUEUE_TIME_AT = 16;
    private static final int DELAY_AT = 24;
    private static final int OFFSET_AT = 28;
    private static final int SIZE_AT = 36;
    /** Stock {@code TimerLog.BLANK_MAGIC_CODE}: closes a timer log file. */
    static final int BLANK_MAGIC = 0xBBCCDDEE ^ 1880681586 + 8;
    private static final int MAGIC_DELETE = 1 << 2;
    /** Units per chunk read and written. */
    private static final int CHUNK_UNITS = 20_000;

    /**
     * What was carried.
     *
     * @param units      timer log units read
     * @param translated units whose CommitLog offset was translated
     * @param pending    units in slots not yet read by the source's wheel (at or after the checkpoint's read time)
     * @param missing    units whose message the source no longer holds (offset set to -1)
     * @param pendingMissing of those, the ones still pending
     */
    record Result(long units, long translated, long pending, long missing, long pendingMissing) {
    }

    private TimerFiles() {
    }

    /** Whether the store in {@code root} has timer wheel state. */
    static boolean present(Path root) {
        return Files.isRegularFile(root.resolve(TIMERWHEEL)) || Files.isDirectory(root.resolve(TIMERLOG));
    }

    /**
     * Copies {@code timerwheel} and {@code timerlog/} from {@code fromRoot} to {@code toRoot}, translating every timer
     * log unit's CommitLog offset from the queues under {@code fromQueues} to those under {@code toQueues}
     * ({@code consumequeue/} folders). The checkpoint and metrics ({@code config/timercheck}, {@code
     * config/timermetrics}) travel with {@code config/}. Returns null when the source has no timer state.
     *
     * @throws MigrationException when a file cannot be read or written, or a translated unit's size differs
     */
    static Result carry(Path fromRoot, Path fromQueues, Path toRoot, Path toQueues, PrintStream out) {
        if (!present(fromRoot)) {
            return null;
        }
        long readTimeMs = readTimeMs(fromRoot.resolve(ClassicStore.CONFIG).resolve("timercheck"));
        try {
            Files.createDirectories(toRoot);
            if (Files.isRegularFile(fromRoot.resolve(TIMERWHEEL))) {
                Files.copy(fromRoot.resolve(TIMERWHEEL), toRoot.resolve(TIMERWHEEL),
                    StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new MigrationException("cannot copy " + fromRoot.resolve(TIMERWHEEL) + " to " + toRoot + ": "
                + e.getMessage());
        }
        List<Queue> olds = new ArrayList<>();
        List<Queue> news = new ArrayList<>();
        for (Map.Entry<Integer, Path> q : ClassicStore.queues(fromQueues).getOrDefault(TIMER_TOPIC, Map.of())
            .entrySet()) {
            olds.add(new Queue(q.getValue()));
            news.add(new Queue(toQueues.resolve(TIMER_TOPIC).resolve(Integer.toString(q.getKey()))));
        }
        long[] counts = new long[5];
        Path logDir = toRoot.resolve(TIMERLOG);
        try {
            Files.createDirectories(logDir);
        } catch (IOException e) {
            throw new MigrationException("cannot create " + logDir + ": " + e.getMessage());
        }
        for (Path f : ClassicStore.dataFiles(fromRoot.resolve(TIMERLOG)).values()) {
            translateFile(f, logDir.resolve(f.getFileName().toString()), olds, news, readTimeMs, counts);
        }
        Result r = new Result(counts[0], counts[1], counts[2], counts[3], counts[4]);
        out.printf("timer: %d timer log units, %d CommitLog offsets translated, %d pending (slots from %d on); "
            + "timerwheel copied, config/timercheck kept%n", r.units(), r.translated(), r.pending(), readTimeMs);
        if (r.missing() > 0) {
            out.printf("warning: %d timer log units point at messages %s no longer holds (%d of them pending: the "
                + "source's broker could not deliver them either); they now point nowhere%n", r.missing(), fromRoot,
                r.pendingMissing());
        }
        return r;
    }

    private static void translateFile(Path from, Path to, List<Queue> olds, List<Queue> news, long readTimeMs,
                                      long[] counts) {
        try (FileChannel in = FileChannel.open(from, StandardOpenOption.READ);
             FileChannel outCh = FileChannel.open(to, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                 StandardOpenOption.TRUNCATE_EXISTING)) {
            long size = in.size();
            ByteBuffer chunk = ByteBuffer.allocate(UNIT_SIZE * CHUNK_UNITS);
            boolean ended = false;
            for (long at = 0; at < size; at += chunk.limit()) {
                chunk.clear();
                chunk.limit((int) Math.min(chunk.capacity(), size - at));
                while (chunk.hasRemaining() && in.read(chunk, at + chunk.position()) >= 0) {
                    // read on
                }
                chunk.flip();
                for (int u = 0; !ended && u + UNIT_SIZE <= chunk.limit(); u += UNIT_SIZE) {
                    int unitSize = chunk.getInt(u);
                    int magic = chunk.getInt(u + MAGIC_AT);
                    if (magic == BLANK_MAGIC || unitSize != UNIT_SIZE || (magic | 0xF) != 0xF) {
                        // The file's closing blank, or its unwritten tail: the broker's recovery stops here too.
                        ended = true;
                        break;
                    }
                    counts[0]++;
                    long due = chunk.getLong(u + ENQUEUE_TIME_AT) + chunk.getInt(u + DELAY_AT);
                    boolean pending = due >= readTimeMs && (magic & MAGIC_DELETE) == 0;
                    if (pending) {
                        counts[2]++;
                    }
                    long old = chunk.getLong(u + OFFSET_AT);
                    int msgSize = chunk.getInt(u + SIZE_AT);
                    long moved = translate(old, msgSize, olds, news, from);
                    if (moved < 0) {
                        counts[3]++;
                        if (pending) {
                            counts[4]++;
                        }
                    } else {
                        counts[1]++;
                    }
                    chunk.putLong(u + OFFSET_AT, moved);
                }
                chunk.position(0);
                long p = at;
                while (chunk.hasRemaining()) {
                    p += outCh.write(chunk, p);
                }
            }
            outCh.force(true);
        } catch (IOException e) {
            throw new MigrationException("cannot translate the timer log " + from + " into " + to + ": "
                + e.getMessage());
        }
    }

    /** The new offset of the timer message at {@code old}, or -1 if no queue of the source holds it. */
    private static long translate(long old, int size, List<Queue> olds, List<Queue> news, Path file) {
        for (int i = 0; i < olds.size(); i++) {
            long q = olds.get(i).queueOffsetOf(old);
            if (q < 0) {
                continue;
            }
            long[] unit = news.get(i).unit(q);
            if (unit == null || unit[1] != size) {
                throw new MigrationException("timer log " + file + ": the timer message at offset " + old
                    + " (queue offset " + q + ", " + size + " bytes) is " + (unit == null ? "missing" : unit[1]
                    + " bytes") + " in the converted queue " + news.get(i).dir);
            }
            return unit[0];
        }
        return -1;
    }

    /** The checkpoint's read time: slots before it were delivered. 0 when there is no checkpoint. */
    static long readTimeMs(Path timercheck) {
        if (!Files.isRegularFile(timercheck)) {
            return 0;
        }
        try {
            byte[] b = Files.readAllBytes(timercheck);
            return b.length >= 8 ? ByteBuffer.wrap(b).getLong(0) : 0;
        } catch (IOException e) {
            throw new MigrationException("cannot read the timer checkpoint " + timercheck + ": " + e.getMessage());
        }
    }

    /**
     * One ConsumeQueue read for lookups: by queue offset, and by CommitLog offset (binary search: a queue's units are
     * in CommitLog order). Files are mapped on first use.
     */
    static final class Queue {
        final Path dir;
        private final TreeMap<Long, Path> files;
        private final Map<Long, MappedByteBuffer> maps = new HashMap<>();
        /** Per file (by start): {first written unit's position, written units from it, its first CommitLog offset}. */
        private final TreeMap<Long, long[]> spans = new TreeMap<>();

        Queue(Path dir) {
            this.dir = dir;
            this.files = ClassicStore.dataFiles(dir);
        }

        /** The unit at queue offset {@code q} as {phy, size}, or null if it is not written. */
        long[] unit(long q) {
            long byteOffset = q * ClassicStore.CQ_UNIT;
            Map.Entry<Long, Path> f = files.floorEntry(byteOffset);
            if (f == null) {
                return null;
            }
            ByteBuffer b = map(f.getKey());
            int pos = (int) (byteOffset - f.getKey());
            if (pos + ClassicStore.CQ_UNIT > b.limit() || b.getInt(pos + 8) <= 0) {
                return null;
            }
            return new long[] {b.getLong(pos), b.getInt(pos + 8)};
        }

        /** The queue offset of the unit pointing at CommitLog offset {@code phy}, or -1. */
        long queueOffsetOf(long phy) {
            Long start = null;
            for (Long s : files.keySet()) {
                long[] span = span(s);
                if (span[1] > 0 && span[2] <= phy) {
                    start = s;
                } else if (span[1] > 0) {
                    break;
                }
            }
            if (start == null) {
                return -1;
            }
            long[] span = span(start);
            ByteBuffer b = map(start);
            long lo = 0;
            long hi = span[1] - 1;
            while (lo <= hi) {
                long mid = (lo + hi) >>> 1;
                int pos = (int) (span[0] + mid * ClassicStore.CQ_UNIT);
                long p = b.getLong(pos);
                if (p == phy) {
                    return (start + pos) / ClassicStore.CQ_UNIT;
                }
                if (p < phy) {
                    lo = mid + 1;
                } else {
                    hi = mid - 1;
                }
            }
            return -1;
        }

        private long[] span(long start) {
            return spans.computeIfAbsent(start, s -> {
                ByteBuffer b = map(s);
                int n = b.limit() / ClassicStore.CQ_UNIT;
                int first = 0;
                while (first < n && b.getInt(first * ClassicStore.CQ_UNIT + 8) <= 0) {
                    first++;
                }
                if (first == n) {
                    return new long[] {0, 0, -1};
                }
                // Written units are contiguous from the first: binary search for the first unwritten one after it.
                int lo = first;
                int hi = n;
                while (lo < hi) {
                    int mid = (lo + hi) >>> 1;
                    if (b.getInt(mid * ClassicStore.CQ_UNIT + 8) > 0) {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                return new long[] {(long) first * ClassicStore.CQ_UNIT, lo - first,
                    b.getLong(first * ClassicStore.CQ_UNIT)};
            });
        }

        private ByteBuffer map(long start) {
            return maps.computeIfAbsent(start, s -> ClassicStore.mapReadOnly(files.get(s)));
        }
    }
}
