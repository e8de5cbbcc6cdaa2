package dev.dledger.rocketmq;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.ListIterator;
import java.util.function.LongUnaryOperator;
import org.apache.rocketmq.store.CommitLogDispatcher;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.DispatchRequest;
import org.apache.rocketmq.store.index.IndexFile;
import org.rocksdb.RocksDBException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a store's recovery dispatches again, and how the message index (what {@code mqadmin queryMsgByKey} and
 * {@code queryMsgByUniqueKey} read) gets back what it lacks. The consume queues and every other dispatcher get the
 * records from {@code queuesFrom} on (the queues skip what they hold already). The index gets every message after the
 * last one it holds, once: it is not idempotent (a message dispatched to it twice is found twice), and after a crash
 * RocketMQ's index service deletes every index file whose end lies past the store checkpoint's index time, which only
 * a full file's flush sets, so the messages such a file held must be indexed again from the log, not only those the
 * queues lack.
 *
 * <p>That catch-up holds up neither the start nor the consume queues: the store's index dispatcher is replaced by
 * {@link IndexCatchUp}, which reads the log from the index's end on a thread of its own from reput's first dispatch on
 * (the Raft node runs and acknowledges meanwhile, reput dispatches to the queues), and from then on gives the stock
 * index dispatcher only messages after what it held.
 */
final class RecoveryDispatch {

    private static final Logger LOG = LoggerFactory.getLogger(RecoveryDispatch.class);
    /** The stock store's dispatcher of the message index (a package-private inner class of DefaultMessageStore). */
    private static final String INDEX_DISPATCHER = DefaultMessageStore.class.getName() + "$CommitLogDispatcherBuildIndex";
    /** The size of an index file's header (RocketMQ's IndexHeader): 4 longs, then the slot and index counts. */
    private static final int HEADER_BYTES = 40;

    /** Reads the log's records from one position to another, in order. */
    @FunctionalInterface
    interface LogScan {
        /** Hands each record in [from, to) to {@code each} with its position; stops at the first unreadable one. */
        void scan(long from, long to, RecordSink each) throws Exception;
    }

    /** Takes the records of a {@link LogScan}. */
    @FunctionalInterface
    interface RecordSink {
        void accept(long position, DispatchRequest r) throws Exception;
    }

    private final List<CommitLogDispatcher> others;
    private final long queuesFrom;
    private final IndexCatchUp index;
    private long dispatched;

    private RecoveryDispatch(List<CommitLogDispatcher> others, long queuesFrom, IndexCatchUp index) {
        this.others = others;
        this.queuesFrom = queuesFrom;
        this.index = index;
    }

    /**
     * The dispatch of a recovery whose queues are dispatched again from {@code queuesFrom} (the start of an entry, or of
     * a message in a CommitLog file from before the Raft log). With the broker's {@code messageIndexEnable} true it
     * puts an {@link IndexCatchUp} in the store's dispatcher list in place of the stock index dispatcher, and
     * {@code indexFrom} (given the offset of the last message the index holds, -1 for none) says where its catch-up
     * reads from; it reads up to {@code end} with {@code log}. Recovery runs before reput: nothing dispatches meanwhile.
     */
    static RecoveryDispatch install(DefaultMessageStore store, long queuesFrom, long end,
                                    LongUnaryOperator indexFrom, LogScan log) {
        List<CommitLogDispatcher> others = new ArrayList<>();
        IndexCatchUp catchUp = null;
        ListIterator<CommitLogDispatcher> it = store.getDispatcherList().listIterator();
        while (it.hasNext()) {
            CommitLogDispatcher d = it.next();
            if (catchUp == null && d.getClass().getName().equals(INDEX_DISPATCHER)
                && store.getMessageStoreConfig().isMessageIndexEnable()) {
                long through = indexedThrough(store);
                if (through != Long.MIN_VALUE) {
                    catchUp = new IndexCatchUp(d, through, indexFrom.applyAsLong(through), end, log);
                    it.set(catchUp);
                    continue;
                }
            }
            if (!(d instanceof IndexCatchUp)) {
                others.add(d);
            }
        }
        return new RecoveryDispatch(others, queuesFrom, catchUp);
    }

    /**
     * The offset of the last message the store's index holds, -1 when it holds none, or {@link Long#MIN_VALUE} when no
     * index file can be written (the index service then flags the error, as at any dispatch). The last index file is
     * created here when there is none or the last is full, as the first dispatch would; a new one, still empty, gets its
     * hash slots written ahead ({@link #prefillSlots}).
     */
    private static long indexedThrough(DefaultMessageStore store) {
        IndexFile last = store.getIndexService().retryGetAndCreateIndexFile();
        if (last == null) {
            return Long.MIN_VALUE;
        }
        // A file that holds no key yet starts at its predecessor's end (0 when it has none); any other ends at the
        // offset of the last message it indexed, 0 included (a message at the start of an old CommitLog file).
        boolean empty = holdsNoKey(last);
        if (empty) {
            prefillSlots(last, store.getMessageStoreConfig().getMaxHashSlotNum());
        }
        return empty && last.getEndPhyOffset() == 0 ? -1 : last.getEndPhyOffset();
    }

    /** Whether the index file {@code f} holds no key, as its header says (false when the header cannot be read). */
    private static boolean holdsNoKey(IndexFile f) {
        Path file = Path.of(f.getFileName());
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES);
            while (header.hasRemaining() && ch.read(header, header.position()) > 0) {
                // the header is at the file's start
            }
            return !header.hasRemaining() && header.getInt(32) == 0 && header.getInt(36) <= 1;
        } catch (IOException | RuntimeException e) {
            LOG.warn("could not read the header of the index file {}: {}", file, e.toString());
            return false;
        }
    }

    /**
     * Writes the hash slots of {@code f}, which holds no key, zeros over zeros, through the file. A new index file
     * is sparse and each key lands on a random slot, so until most of its 4 KiB pages were written once nearly every key
     * costs a page fault that allocates a block (here 24 us a key against 1 us): a start after a crash indexes its log
     * again, and what it catches up on, into such a file. Only an empty file, and only in recovery, before reput runs:
     * nothing writes the file meanwhile. The slots are best effort: a failure to write them is logged, nothing else.
     */
    private static void prefillSlots(IndexFile f, int hashSlotNum) {
        Path file = Path.of(f.getFileName());
        long end = HEADER_BYTES + 4L * hashSlotNum;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            if (ch.size() >= end) {
                ByteBuffer zeros = ByteBuffer.allocate(1 << 20);
                long at = HEADER_BYTES;
                while (at < end) {
                    zeros.clear().limit((int) Math.min(zeros.capacity(), end - at));
                    at += ch.write(zeros, at);
                }
            }
        } catch (IOException | RuntimeException e) {
            LOG.warn("could not write the hash slots of the index file {} ahead: {}", file, e.toString());
        }
    }

    /** Hands the record at {@code position} to the dispatchers other than the index when the queues lack it. */
    void accept(long position, DispatchRequest r) throws Exception {
        if (position >= queuesFrom) {
            for (CommitLogDispatcher d : others) {
                d.dispatch(r);
            }
            dispatched++;
        }
    }

    /** Records handed to the queues' dispatchers. */
    long dispatched() {
        return dispatched;
    }

    /** What the index's catch-up will do, for the recovery's log line. */
    String indexPlan() {
        if (index == null) {
            return "no message index";
        }
        String holds = index.indexedThrough < 0 ? "the message index holds no message"
            : "the message index holds messages through offset " + index.indexedThrough;
        return index.from < index.to ? holds + "; it indexes the messages from " + index.from + " to " + index.to
            + " after that from reput's first dispatch on" : holds;
    }

    /** The index's catch-up, when there is one (to stop with the store), or null. */
    IndexCatchUp indexCatchUp() {
        return index;
    }

    /**
     * The store's index dispatcher after recovery. At its first dispatch it starts a thread that indexes the messages of
     * [from, to) after the last one the index held; meanwhile the messages reput dispatches wait in a queue (reput goes
     * on with the consume queues; it waits only when {@value #MAX_WAITING} are queued) and are indexed after them, in
     * log order, by the same thread, which then hands the index back to reput. From then on the stock dispatcher gets
     * only messages after the last one the index held. {@link #close} stops the thread before the store's index service
     * closes its files (the store shuts its commit log down first); what was not indexed then is at the next start.
     */
    static final class IndexCatchUp implements CommitLogDispatcher, AutoCloseable {
        /** The most messages held back while the catch-up runs (about 200 bytes each). */
        static final int MAX_WAITING = 100_000;

        private final CommitLogDispatcher stock;
        private final long indexedThrough;
        private final long from;
        private final long to;
        private final LogScan log;
        private final Object lock = new Object();
        /** Messages reput dispatched while the catch-up runs, in order; under {@link #lock}. */
        private final ArrayDeque<DispatchRequest> waiting = new ArrayDeque<>();
        /** Whether the catch-up thread owns the index; under {@link #lock}. */
        private boolean catchingUp;
        /** Whether the store stops: nothing more is indexed; written under {@link #lock}. */
        private volatile boolean stopped;
        /** Read and written on the reput thread only. */
        private boolean started;
        private volatile Thread thread;

        IndexCatchUp(CommitLogDispatcher stock, long indexedThrough, long from, long to, LogScan log) {
            this.stock = stock;
            this.indexedThrough = indexedThrough;
            this.from = from;
            this.to = to;
            this.log = log;
        }

        @Override
        public void dispatch(DispatchRequest request) throws RocksDBException {
            if (!started) {
                started = true;
                if (from < to) {
                    synchronized (lock) {
                        catchingUp = !stopped;
                    }
                    Thread t = new Thread(this::catchUp, "MessageIndexCatchUp");
                    t.setDaemon(true);
                    thread = t;
                    t.start();
                }
            }
            if (request.getCommitLogOffset() <= indexedThrough) {
                return;
            }
            synchronized (lock) {
                while (catchingUp && waiting.size() >= MAX_WAITING) {
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
                if (stopped) {
                    return;
                }
                if (catchingUp) {
                    waiting.add(request);
                    return;
                }
            }
            stock.dispatch(request);
        }

        private void catchUp() {
            long began = System.currentTimeMillis();
            long[] indexed = new long[1];
            try {
                log.scan(from, to, (position, r) -> {
                    if (stopped) {
                        throw new IllegalStateException("the store stops");
                    }
                    if (r.getCommitLogOffset() > indexedThrough) {
                        stock.dispatch(r);
                        indexed[0]++;
                    }
                });
                LOG.info("message index caught up: {} records from {} to {} indexed in {} ms", indexed[0], from, to,
                    System.currentTimeMillis() - began);
            } catch (Exception e) {
                // The queues and the log are whole; only lookups by key of these messages miss.
                LOG.warn("message index catch-up stopped after {} records from {} (of [{}, {})): {}; messages in the rest "
                    + "of that range are not found by key", indexed[0], from, from, to, e.toString());
            }
            while (true) {
                List<DispatchRequest> batch;
                synchronized (lock) {
                    if (waiting.isEmpty() || stopped) {
                        waiting.clear();
                        catchingUp = false;
                        lock.notifyAll();
                        return;
                    }
                    batch = new ArrayList<>(waiting);
                    waiting.clear();
                    lock.notifyAll();
                }
                for (DispatchRequest r : batch) {
                    try {
                        stock.dispatch(r);
                    } catch (Exception e) {
                        LOG.warn("message index: the message at {} not indexed: {}", r.getCommitLogOffset(), e.toString());
                    }
                }
            }
        }

        /** Stops the catch-up and waits for its thread (at most 10 s); nothing is indexed after. */
        @Override
        public void close() throws InterruptedException {
            synchronized (lock) {
                stopped = true;
                lock.notifyAll();
            }
            Thread t = thread;
            if (t != null) {
                t.join(10_000);
            }
        }
    }
}
