package dev.dledger.rocketmq;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.store.FileOpener;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * The Raft logs of a stopped broker group, opened read-only with the library's own store, compared entry by entry
 * over what each node had committed, and read back as messages.
 *
 * <p>Read-only: every file is opened for reading only, so a store that would need a repair to open (a torn tail)
 * fails to open instead of being changed; the group is stopped cleanly before, so none should.
 */
final class ReplicaLogs implements AutoCloseable {

    /** A message as stored in the log: its entry, commit log offset, queue position and message id. */
    record Copy(long index, long commitLogOffset, int queueId, long queueOffset, String msgId) {
    }

    /** What the comparison found: entries that differ or are missing, and the first few problems in words. */
    record Comparison(int reference, long referenceCommitIndex, long divergentEntries, long comparedEntries,
                      List<String> problems) {
    }

    private static final int MAX_PROBLEMS = 20;
    private static final long BATCH_BYTES = 4 << 20;
    private static final FileOpener READ_ONLY = ReplicaLogs::openForReading;

    private final List<SegmentedLogStore> stores;

    private ReplicaLogs(List<SegmentedLogStore> stores) {
        this.stores = stores;
    }

    /**
     * Opens each folder's log for reading only.
     *
     * @throws IllegalStateException naming the folder when one cannot be opened so
     */
    static ReplicaLogs openReadOnly(List<Path> dirs) {
        List<SegmentedLogStore> stores = new ArrayList<>();
        for (Path dir : dirs) {
            try {
                if (!Files.isDirectory(dir.resolve("data")) || !Files.isDirectory(dir.resolve("index"))) {
                    throw new IllegalStateException(dir + " holds no raft log (no data/ and index/ folders)");
                }
                stores.add(SegmentedLogStore.open(dir, StoreConfig.detect(dir, StoreConfig.defaults()), READ_ONLY));
            } catch (IOException | RuntimeException e) {
                for (SegmentedLogStore s : stores) {
                    s.close();
                }
                throw new IllegalStateException("cannot open the raft log in " + dir + " read-only: " + e, e);
            }
        }
        return new ReplicaLogs(stores);
    }

    private static FileChannel openForReading(Path path, OpenOption... options) throws IOException {
        return FileChannel.open(path, StandardOpenOption.READ);
    }

    /** The last index in node {@code node}'s log. */
    long lastIndex(int node) {
        return stores.get(node).lastIndex();
    }

    /**
     * Compares the committed prefixes: the node with the highest commit index is the reference, and every entry any
     * node had committed (from the first index all of them still hold up to its commit index) must be in the
     * reference with the same term, type, position and bytes. An entry that differs or that a node lacks counts
     * once per node.
     *
     * @param commitIndex each node's commit index, as it reported it before it stopped
     */
    Comparison compare(long[] commitIndex) {
        int ref = 0;
        for (int i = 1; i < stores.size(); i++) {
            if (commitIndex[i] > commitIndex[ref]) {
                ref = i;
            }
        }
        SegmentedLogStore r = stores.get(ref);
        List<String> problems = new ArrayList<>();
        long divergent = 0;
        long compared = 0;
        if (r.lastIndex() < commitIndex[ref]) {
            divergent += commitIndex[ref] - r.lastIndex();
            problem(problems, "n" + ref + " reported commit index " + commitIndex[ref] + " but its log ends at "
                + r.lastIndex());
        }
        for (int i = 0; i < stores.size(); i++) {
            SegmentedLogStore s = stores.get(i);
            long hi = Math.min(commitIndex[i], s.lastIndex());
            if (s.lastIndex() < commitIndex[i]) {
                divergent += commitIndex[i] - s.lastIndex();
                problem(problems, "n" + i + " reported commit index " + commitIndex[i] + " but its log ends at "
                    + s.lastIndex());
            }
            if (i == ref) {
                continue;
            }
            long lo = Math.max(s.firstIndex(), r.firstIndex());
            long refHi = Math.min(hi, r.lastIndex());
            if (refHi < hi) {
                divergent += hi - refHi;
                problem(problems, "n" + i + " committed up to " + hi + " but the reference n" + ref + " holds only up to "
                    + r.lastIndex());
            }
            for (long at = lo; at <= refHi; ) {
                List<Entry> mine = s.entries(at, refHi + 1, BATCH_BYTES);
                List<Entry> theirs = r.entries(at, at + mine.size(), Long.MAX_VALUE);
                for (int k = 0; k < mine.size(); k++) {
                    Entry a = mine.get(k);
                    Entry b = k < theirs.size() ? theirs.get(k) : null;
                    compared++;
                    String diff = difference(a, b, s.position(a.index()), b == null ? -1 : r.position(b.index()));
                    if (diff != null) {
                        divergent++;
                        problem(problems, "entry " + a.index() + " of n" + i + " differs from n" + ref + ": " + diff);
                    }
                }
                at += mine.size();
            }
        }
        return new Comparison(ref, commitIndex[ref], divergent, compared, problems);
    }

    private static String difference(Entry a, Entry b, long posA, long posB) {
        if (b == null) {
            return "missing from the reference";
        }
        if (a.term() != b.term()) {
            return "term " + a.term() + " vs " + b.term();
        }
        if (a.type() != b.type()) {
            return "type " + a.type() + " vs " + b.type();
        }
        if (posA != posB) {
            return "position " + posA + " vs " + posB;
        }
        if (!Arrays.equals(a.data(), b.data())) {
            return "bytes differ (" + a.data().length + " vs " + b.data().length + " bytes)";
        }
        return null;
    }

    private static void problem(List<String> problems, String p) {
        if (problems.size() < MAX_PROBLEMS) {
            problems.add(p);
        }
    }

    /**
     * The messages of {@code topic} in node {@code node}'s log up to {@code upTo}, by key, in log order. Raft's own
     * entries, the broker's state entries and other topics are left out.
     */
    Map<String, List<Copy>> messagesByKey(int node, long upTo, String topic) {
        SegmentedLogStore s = stores.get(node);
        Map<String, List<Copy>> out = new HashMap<>();
        long hi = Math.min(upTo, s.lastIndex());
        for (long at = s.firstIndex(); at <= hi; ) {
            List<Entry> batch = s.entries(at, hi + 1, BATCH_BYTES);
            for (Entry e : batch) {
                if (e.type() != EntryType.NORMAL || BrokerStateEntry.isStateEntry(e.data())) {
                    continue;
                }
                MessageExt m = MessageDecoder.decode(ByteBuffer.wrap(e.data()), false, false);
                if (m == null || !topic.equals(m.getTopic()) || m.getKeys() == null) {
                    continue;
                }
                out.computeIfAbsent(m.getKeys(), k -> new ArrayList<>()).add(new Copy(e.index(), m.getCommitLogOffset(),
                    m.getQueueId(), m.getQueueOffset(), m.getProperty(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX)));
            }
            at += batch.size();
        }
        return out;
    }

    /** A consumer offset commit in the log: at entry {@code index}, queue {@code queueId}'s offset became {@code offset}. */
    record OffsetCommitAt(long index, int queueId, long offset) {
    }

    /**
     * The consumer offset commits of {@code group} on {@code topic} in node {@code node}'s log up to {@code upTo}, in
     * log order.
     */
    List<OffsetCommitAt> offsetCommits(int node, long upTo, String group, String topic) {
        SegmentedLogStore s = stores.get(node);
        List<OffsetCommitAt> out = new ArrayList<>();
        long hi = Math.min(upTo, s.lastIndex());
        for (long at = s.firstIndex(); at <= hi; ) {
            List<Entry> batch = s.entries(at, hi + 1, BATCH_BYTES);
            for (Entry e : batch) {
                if (e.type() != EntryType.NORMAL || !BrokerStateEntry.isStateEntry(e.data())) {
                    continue;
                }
                for (BrokerStateEntry.Op op : BrokerStateEntry.decode(e.data()).ops()) {
                    if (op instanceof BrokerStateEntry.OffsetCommit c && c.group().equals(group)
                        && c.topic().equals(topic)) {
                        out.add(new OffsetCommitAt(e.index(), c.queueId(), c.offset()));
                    }
                }
            }
            at += batch.size();
        }
        return out;
    }

    /** Queue offsets in the log: offsets held by two messages (conflicts, with examples) and offsets held by none. */
    record QueueCheck(long conflicts, List<String> examples, long gaps) {
    }

    /**
     * Checks the queue offsets of the messages given: in each queue, no offset may be held by two messages. Gaps
     * (offsets held by no message between a queue's first and last) are counted too; a put that was never committed
     * can leave one behind.
     */
    static QueueCheck checkQueueOffsets(Map<String, List<Copy>> byKey) {
        Map<Integer, TreeMap<Long, Copy>> queues = new TreeMap<>();
        List<String> examples = new ArrayList<>();
        long conflicts = 0;
        for (Map.Entry<String, List<Copy>> e : byKey.entrySet()) {
            for (Copy c : e.getValue()) {
                Copy before = queues.computeIfAbsent(c.queueId(), q -> new TreeMap<>()).put(c.queueOffset(), c);
                if (before != null) {
                    conflicts++;
                    problem(examples, "queue " + c.queueId() + " offset " + c.queueOffset() + " is held by entry "
                        + before.index() + " and by entry " + c.index() + " (key " + e.getKey() + ")");
                }
            }
        }
        long gaps = 0;
        for (TreeMap<Long, Copy> offsets : queues.values()) {
            gaps += offsets.lastKey() - offsets.firstKey() + 1 - offsets.size();
        }
        return new QueueCheck(conflicts, examples, gaps);
    }

    @Override
    public void close() {
        for (SegmentedLogStore s : stores) {
            s.close();
        }
    }
}
