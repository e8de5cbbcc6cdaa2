package dev.dledger.migration;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.store.EntryFormat;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * The {@code verify} of a converted store against its source: every source message must be in the target with the
 * same bytes (but for the physical offset field in rewrite mode), so the same body, properties, topic, queue and
 * queue offset, and the target's ConsumeQueue must point at it. Stops at the first difference.
 */
final class Verifier {

    /**
     * What was verified.
     *
     * @param mode      the target's layout
     * @param messages  source messages found in the target
     * @param queued    of those, found through the target's ConsumeQueues
     * @param newer     target entries after the migrated ones (written by a broker since)
     */
    record Result(Converter.Mode mode, long messages, long queued, long newer) {
    }

    private final PrintStream err;
    private final Map<Path, TreeMap<Long, Path>> queueFiles = new HashMap<>();
    private final Map<Path, ByteBuffer> queueMaps = new HashMap<>();

    Verifier(PrintStream err) {
        this.err = err;
    }

    /**
     * Verifies {@code to} against {@code from}.
     *
     * @throws MigrationException with exit status 1 naming the first difference, or 2 for bad input
     */
    Result verify(Path from, String commitLog, Path to) {
        if (Files.exists(to.resolve(Converter.PARTIAL))) {
            throw new MigrationException("target " + to + " holds an unfinished conversion (" + Converter.PARTIAL
                + "): run convert again to finish it");
        }
        try (ClassicStore src = ClassicStore.open(from, commitLog)) {
            if (!ClassicStore.dataFiles(to.resolve(ClassicStore.COMMITLOG)).isEmpty()) {
                try (ClassicStore dst = ClassicStore.open(to)) {
                    return bridge(src, dst);
                }
            }
            Path node = raftFolder(to);
            return rewrite(src, to, node);
        }
    }

    private static Path raftFolder(Path to) {
        if (Files.isDirectory(to)) {
            try (Stream<Path> s = Files.list(to)) {
                for (Path p : s.sorted().toList()) {
                    if (p.getFileName().toString().startsWith("dledger-")
                        && !ClassicStore.dataFiles(p.resolve("data")).isEmpty()) {
                        return p;
                    }
                }
            } catch (IOException e) {
                throw new MigrationException("cannot list " + to + ": " + e.getMessage());
            }
        }
        throw new MigrationException("target " + to + " is not a converted store: no commitlog/ files and no "
            + "dledger-<id>/data/ files");
    }

    private Result bridge(ClassicStore src, ClassicStore dst) {
        long[] n = {0, 0};
        Progress p = new Progress(err, "verify", src.fileBytes());
        src.scan((offset, m) -> {
            ByteBuffer t = dst.messageAt(offset);
            if (t == null) {
                throw differ(n[0], offset, "no message at that offset in the target");
            }
            compare(n[0], offset, m, t, offset);
            n[1] += queued(dst.root(), n[0], offset, m, offset) ? 1 : 0;
            n[0]++;
        }, p);
        p.finish();
        return new Result(Converter.Mode.BRIDGE, n[0], n[1], 0);
    }

    private Result rewrite(ClassicStore src, Path to, Path node) {
        StoreConfig cfg;
        try {
            cfg = StoreConfig.detect(node, StoreConfig.lean());
        } catch (IOException e) {
            throw new MigrationException("cannot read the Raft log in " + node + ": " + e.getMessage());
        }
        try (SegmentedLogStore log = SegmentedLogStore.open(node, cfg)) {
            long[] at = {log.firstIndex()};
            long[] n = {0, 0};
            Progress p = new Progress(err, "verify", src.fileBytes());
            src.scan((offset, m) -> {
                while (at[0] <= log.lastIndex() && log.info(at[0]).type() != EntryType.NORMAL) {
                    at[0]++;
                }
                if (at[0] > log.lastIndex()) {
                    throw differ(n[0], offset, "missing: the target's Raft log ends at entry " + log.lastIndex());
                }
                Entry e = log.entries(at[0], at[0] + 1, Long.MAX_VALUE).get(0);
                long phy = log.position(at[0]) + EntryFormat.HEADER_SIZE;
                compare(n[0], offset, m, ByteBuffer.wrap(e.data()), phy);
                n[1] += queued(to, n[0], offset, m, phy) ? 1 : 0;
                at[0]++;
                n[0]++;
            }, p);
            p.finish();
            long newer = 0;
            for (long i = at[0]; i <= log.lastIndex(); i++) {
                newer += log.info(i).type() == EntryType.NORMAL ? 1 : 0;
            }
            return new Result(Converter.Mode.REWRITE, n[0], n[1], newer);
        }
    }

    /** The same bytes, but for the physical offset field, which must be {@code phy}. */
    private static void compare(long k, long offset, ByteBuffer src, ByteBuffer dst, long phy) {
        MessageExt a = MessageDecoder.decode(src.duplicate(), true, false, false);
        MessageExt b = MessageDecoder.decode(dst.duplicate(), true, false, false);
        check(k, offset, "topic", a.getTopic(), b.getTopic());
        check(k, offset, "queue id", a.getQueueId(), b.getQueueId());
        check(k, offset, "queue offset", a.getQueueOffset(), b.getQueueOffset());
        check(k, offset, "properties", a.getProperties(), b.getProperties());
        check(k, offset, "flag", a.getFlag(), b.getFlag());
        check(k, offset, "system flag", a.getSysFlag(), b.getSysFlag());
        check(k, offset, "store timestamp", a.getStoreTimestamp(), b.getStoreTimestamp());
        check(k, offset, "born timestamp", a.getBornTimestamp(), b.getBornTimestamp());
        check(k, offset, "physical offset", phy, b.getCommitLogOffset());
        if (!Arrays.equals(a.getBody(), b.getBody())) {
            throw differ(k, offset, "the body differs");
        }
        if (src.limit() != dst.limit()) {
            throw differ(k, offset, "size " + src.limit() + " in the source, " + dst.limit() + " in the target");
        }
        int pos = MessageDecoder.PHY_POS_POSITION;
        if (src.slice(0, pos).mismatch(dst.slice(0, pos)) >= 0
            || src.slice(pos + 8, src.limit() - pos - 8).mismatch(dst.slice(pos + 8, dst.limit() - pos - 8)) >= 0) {
            throw differ(k, offset, "the stored bytes differ");
        }
    }

    private boolean queued(Path root, long k, long offset, ByteBuffer m, long phy) {
        MessageExt a = MessageDecoder.decode(m.duplicate(), false, false, false);
        if (!StoreCheck.dispatched(a.getSysFlag())) {
            return false;
        }
        long[] unit = unit(root, a.getTopic(), a.getQueueId(), a.getQueueOffset());
        if (unit == null || unit[1] <= 0) {
            throw differ(k, offset, "the target's ConsumeQueue " + a.getTopic() + "/" + a.getQueueId() + " has no "
                + "unit at queue offset " + a.getQueueOffset());
        }
        if (unit[0] != phy || unit[1] != m.limit()) {
            throw differ(k, offset, "the target's ConsumeQueue " + a.getTopic() + "/" + a.getQueueId() + " unit "
                + a.getQueueOffset() + " points at " + unit[0] + " (" + unit[1] + " bytes), not " + phy);
        }
        return true;
    }

    private long[] unit(Path root, String topic, int queueId, long queueOffset) {
        Path dir = root.resolve(ClassicStore.CONSUMEQUEUE).resolve(topic).resolve(Integer.toString(queueId));
        TreeMap<Long, Path> files = queueFiles.computeIfAbsent(dir, ClassicStore::dataFiles);
        long byteOffset = queueOffset * ClassicStore.CQ_UNIT;
        Map.Entry<Long, Path> f = files.floorEntry(byteOffset);
        if (f == null) {
            return null;
        }
        ByteBuffer b = queueMaps.computeIfAbsent(f.getValue(), ClassicStore::mapReadOnly);
        int pos = (int) (byteOffset - f.getKey());
        if (pos + ClassicStore.CQ_UNIT > b.limit()) {
            return null;
        }
        return new long[] {b.getLong(pos), b.getInt(pos + 8)};
    }

    private static void check(long k, long offset, String what, Object a, Object b) {
        if (!Objects.equals(a, b)) {
            throw differ(k, offset, what + " is " + a + " in the source, " + b + " in the target");
        }
    }

    private static MigrationException differ(long k, long offset, String what) {
        return new MigrationException("message " + k + " (source offset " + offset + "): " + what,
            MigrateCommand.EXIT_UNSAFE);
    }
}
