package dev.dledger.raft.statemachine;

import dev.dledger.raft.core.Entry;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.List;

/**
 * The application on top of the replicated log. The node's apply thread calls every method, one call at a time, in
 * log order; an implementation needs no locking against the node, only against its own readers.
 *
 * <p>{@link #apply(List)} receives committed entries exactly once per node lifetime in index order, NOOP and
 * CONFIG entries included (an application ignores what it does not need). After a restart the node replays from the
 * last snapshot, so an in-memory state machine is rebuilt from {@link #restore(long, InputStream)} plus the replay;
 * one that keeps its own durable state says how far it holds it ({@link #durableThrough()}) and is replayed from there.
 */
public interface StateMachine {

    /**
     * Applies committed entries, in order.
     *
     * @return one result per entry (may be null), handed to the client that appended it
     */
    List<byte[]> apply(List<Entry> committed);

    /**
     * Writes a snapshot of the state after applying {@code lastIndex}. Called only when the application returns
     * true from {@link #canSnapshot()}.
     */
    void snapshot(long lastIndex, OutputStream out) throws java.io.IOException;

    /** Replaces the whole state with a snapshot taken at {@code lastIndex}. */
    void restore(long lastIndex, InputStream in) throws java.io.IOException;

    /**
     * Answers a read-only query against the applied state, on the apply thread like every other call (so it needs
     * no locking against {@link #apply(List)}). The node calls it for a client's linearizable read once it confirmed
     * its leadership and applied everything committed before the read arrived. It must not change the state.
     *
     * @param query the application's encoding of what to read
     * @return the answer, or null when there is nothing to answer with (the client sees NOT_FOUND)
     * @throws UnsupportedOperationException when the application serves no queries (the default; the client sees
     *                                       INVALID)
     * @throws IllegalArgumentException      when the query is malformed (the client sees INVALID)
     */
    default byte[] query(byte[] query) {
        throw new UnsupportedOperationException("this state machine serves no queries");
    }

    /**
     * Whether this state machine supports snapshots. Without them the log is compacted only by a storage retention
     * (a {@code FileNodeStorage} opened with a {@code LogRetention}), which deletes applied entries for good; leave
     * retention off for a state machine that must replay the whole log after a restart.
     */
    default boolean canSnapshot() {
        return false;
    }

    /**
     * The state after everything applied so far, sent with the position when this node's log was compacted by a
     * storage retention rather than by {@link #snapshot} and a follower needs entries it no longer holds. The
     * follower's state machine gets it in {@link #restore} (with the index the log was compacted to, which may be
     * below the state's: the image must say which entries it holds, and the state machine must not apply those again
     * when they arrive). Called on the apply thread, like {@link #apply}. The default, an empty image, sends only the
     * position (the follower's state machine then restores an empty image).
     */
    default byte[] retainedImage() {
        return new byte[0];
    }

    /**
     * The index through which this state machine's state survives a restart without a replay: its own files hold the
     * effect of every committed entry up to it (entries that change nothing in it count as held). Asked once, when
     * the node starts (after {@link #restore} of the snapshot found then); the node applies from the entry after
     * {@code min(this, the commit index it recorded)}, or after its snapshot when that is later. -1, the default:
     * everything after the snapshot is applied again. Overstating it loses the effect of the entries skipped; a
     * state machine that cannot tell returns -1. The node's request table (exactly-once appends) is rebuilt only
     * from what it applies.
     */
    default long durableThrough() {
        return -1;
    }

    /** A plain log: applies nothing, keeps nothing. DLedger's "appender". */
    StateMachine NONE = new StateMachine() {
        @Override
        public List<byte[]> apply(List<Entry> committed) {
            return java.util.Collections.nCopies(committed.size(), null);
        }

        @Override
        public void snapshot(long lastIndex, OutputStream out) {
        }

        @Override
        public void restore(long lastIndex, InputStream in) {
        }
    };
}
