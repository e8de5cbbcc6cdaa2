package dev.dledger.rocketmq;

import java.util.ArrayList;
import java.util.List;
import org.apache.rocketmq.store.CommitLogDispatcher;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.DispatchRequest;
import org.apache.rocketmq.store.index.IndexFile;

/**
 * What a store's recovery hands each message of the log it scans again: the consume queues and every other dispatcher
 * get the messages from {@code queuesFrom} on (the queues skip what they hold already), the message index gets every
 * message it does not hold. The index is not idempotent: a message dispatched to it twice is found twice by
 * {@code queryMsgByKey}. And after a crash RocketMQ's index service deletes every index file that is not full (its
 * end lies past the checkpoint's index time, which only a full file sets), so the messages such a file held must be
 * indexed again from the log, not only those the queues lack.
 */
final class RecoveryDispatch {

    /** The stock store's dispatcher of the message index (a package-private inner class of DefaultMessageStore). */
    private static final String INDEX_DISPATCHER = DefaultMessageStore.class.getName() + "$CommitLogDispatcherBuildIndex";

    private final List<CommitLogDispatcher> others = new ArrayList<>();
    private final CommitLogDispatcher index;
    /** The commit log offset of the last message the index holds; -1 when it holds none, or the index is off. */
    private final long indexedThrough;
    private final long queuesFrom;
    private long dispatched;
    private long indexed;

    private RecoveryDispatch(List<CommitLogDispatcher> others, CommitLogDispatcher index, long indexedThrough,
                             long queuesFrom) {
        this.others.addAll(others);
        this.index = index;
        this.indexedThrough = indexedThrough;
        this.queuesFrom = queuesFrom;
    }

    /**
     * The dispatch of a recovery whose queues are dispatched again from {@code queuesFrom} (the start of an entry, or
     * of a message in a CommitLog file from before the Raft log). With the broker's {@code messageIndexEnable} false,
     * or a dispatcher list without the stock index dispatcher, every dispatcher gets what the queues get.
     */
    static RecoveryDispatch of(DefaultMessageStore store, long queuesFrom) {
        List<CommitLogDispatcher> others = new ArrayList<>();
        CommitLogDispatcher index = null;
        for (CommitLogDispatcher d : store.getDispatcherList()) {
            if (index == null && d.getClass().getName().equals(INDEX_DISPATCHER)) {
                index = d;
            } else {
                others.add(d);
            }
        }
        long through = -1;
        if (index != null && store.getMessageStoreConfig().isMessageIndexEnable()) {
            // The last index file (created here when there is none or the last is full, as the first dispatch would).
            // Its end is the offset of the last message it indexed; a new file starts at its predecessor's end.
            IndexFile last = store.getIndexService().retryGetAndCreateIndexFile();
            if (last == null) {
                // The index cannot be written (the service flagged it); the reput meets the same.
                index = null;
            } else if (last.getEndPhyOffset() > 0) {
                through = last.getEndPhyOffset();
            }
        } else if (index != null) {
            others.add(index);
            index = null;
        }
        return new RecoveryDispatch(others, index, through, queuesFrom);
    }

    /** Whether messages before {@link #queuesFrom} need the index: it holds none, or none past a message there. */
    boolean indexesBefore(long offset) {
        return index != null && indexedThrough < offset;
    }

    /** The commit log offset of the last message the index holds; -1 when it holds none or is off. */
    long indexedThrough() {
        return indexedThrough;
    }

    /** Hands {@code r} (a message, or a request every dispatcher skips) to the dispatchers that lack it. */
    void accept(DispatchRequest r) throws Exception {
        long at = r.getCommitLogOffset();
        if (at >= queuesFrom) {
            for (CommitLogDispatcher d : others) {
                d.dispatch(r);
            }
            dispatched++;
        }
        if (index != null && at > indexedThrough) {
            index.dispatch(r);
            indexed++;
        }
    }

    /** Records handed to the queues' dispatchers. */
    long dispatched() {
        return dispatched;
    }

    /** Records handed to the index (it skips what is no message a consumer sees). */
    long indexed() {
        return indexed;
    }
}
