package dev.dledger.raft.core;

import java.util.List;

/**
 * AppendEntries (Raft paper section 5.3). With no entries it is the leader's heartbeat.
 *
 * @param prevLogIndex index of the entry just before {@code entries} (-1 when they start the log)
 * @param prevLogTerm  term of that entry
 * @param entries      consecutive entries starting at {@code prevLogIndex + 1}; may be empty
 * @param leaderCommit the leader's commit index, capped at what the follower is known to hold
 * @param seq          the leader's broadcast sequence number when this was sent; echoed in the response, it lets
 *                     the leader confirm its leadership for read index and lease reads (thesis section 6.4)
 * @param dataDurableIndex the highest index every data member of the configuration holds durably, never above
 *                     {@code leaderCommit}; -1 when unknown or in a group without witnesses. Only a witness reads it:
 *                     it may drop entry bodies up to it (the drop rule on {@link Membership})
 */
public record AppendEntriesRequest(String from, String to, long term, long prevLogIndex, long prevLogTerm,
                                   List<Entry> entries, long leaderCommit, long seq, long dataDurableIndex)
    implements Message {

    public AppendEntriesRequest {
        entries = List.copyOf(entries);
    }

    /** A request that tells no data-durable index (-1), as from a group without witnesses. */
    public AppendEntriesRequest(String from, String to, long term, long prevLogIndex, long prevLogTerm,
                                List<Entry> entries, long leaderCommit, long seq) {
        this(from, to, term, prevLogIndex, prevLogTerm, entries, leaderCommit, seq, -1);
    }

    /** Index of the last entry carried, or {@code prevLogIndex} when there is none. */
    public long lastIndex() {
        return prevLogIndex + entries.size();
    }

    @Override
    public String toString() {
        return "AppendEntriesRequest[" + from + "->" + to + " t" + term + " prev=" + prevLogIndex + "@" + prevLogTerm
            + " n=" + entries.size() + " commit=" + leaderCommit + " seq=" + seq
            + (dataDurableIndex >= 0 ? " dataDurable=" + dataDurableIndex : "") + "]";
    }
}
