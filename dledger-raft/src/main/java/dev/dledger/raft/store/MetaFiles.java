package dev.dledger.raft.store;

import dev.dledger.raft.core.HardState;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Properties;

/**
 * The term and vote, in DLedger's {@code currterm} file (Java properties {@code currTerm} and {@code voteLeader}) so
 * that a stock store opens in place, and a commit-index checkpoint in {@code checkpoint}. Unlike stock DLedger, both
 * are replaced atomically and durably ({@link AtomicFiles}), and a failed write is an error, not a log line.
 *
 * <p>The checkpoint is the file stock DLedger writes on shutdown and every few seconds ({@code committedIndex} and
 * {@code endIndex}): ours is read from {@code commitIndex}, or from stock's {@code committedIndex} when a stock node
 * wrote it last, and carries stock's key too, so that either reader finds the commit index.
 */
public final class MetaFiles {

    private static final String TERM_FILE = "currterm";
    private static final String CHECKPOINT_FILE = "checkpoint";
    private static final String COMMIT_KEY = "commitIndex";
    /** Stock DLedger's key for the same value. */
    private static final String STOCK_COMMIT_KEY = "committedIndex";

    private final Path dir;

    public MetaFiles(Path dir) {
        this.dir = dir;
    }

    /** The persisted term and vote, {@link HardState#INITIAL} when none. */
    public HardState readHardState() {
        try {
            Properties p = AtomicFiles.readProperties(dir.resolve(TERM_FILE));
            if (p == null) {
                return HardState.INITIAL;
            }
            long term = Long.parseLong(p.getProperty("currTerm", "0").trim());
            String vote = p.getProperty("voteLeader");
            return new HardState(term, vote == null || vote.isBlank() || vote.equals("null") ? null : vote.trim());
        } catch (IOException | RuntimeException e) {
            throw new StoreCorruptedException(dir.resolve(TERM_FILE) + " cannot be read: " + e.getMessage());
        }
    }

    /** Persists the term and vote durably. */
    public void writeHardState(HardState hs) {
        Properties p = new Properties();
        p.setProperty("currTerm", Long.toString(hs.term()));
        if (hs.votedFor() != null) {
            p.setProperty("voteLeader", hs.votedFor());
        }
        try {
            AtomicFiles.writeProperties(dir.resolve(TERM_FILE), p);
        } catch (IOException e) {
            throw new StoreIoException("cannot persist term and vote in " + dir + ": " + e.getMessage(), e);
        }
    }

    /** The checkpointed commit index, or -1. */
    public long readCommitCheckpoint() {
        try {
            Properties p = AtomicFiles.readProperties(dir.resolve(CHECKPOINT_FILE));
            if (p == null) {
                return -1;
            }
            return Long.parseLong(p.getProperty(COMMIT_KEY, p.getProperty(STOCK_COMMIT_KEY, "-1")).trim());
        } catch (IOException | RuntimeException e) {
            throw new StoreCorruptedException(dir.resolve(CHECKPOINT_FILE) + " cannot be read: " + e.getMessage());
        }
    }

    /**
     * Records the commit index, without fsync: it is a restart hint, and an older value is still a true one (the
     * commit index only grows).
     */
    public void writeCommitCheckpoint(long commitIndex) {
        Properties p = new Properties();
        p.setProperty(COMMIT_KEY, Long.toString(commitIndex));
        p.setProperty(STOCK_COMMIT_KEY, Long.toString(commitIndex));
        try {
            AtomicFiles.writePropertiesLazily(dir.resolve(CHECKPOINT_FILE), p);
        } catch (IOException e) {
            throw new StoreIoException("cannot write the checkpoint in " + dir + ": " + e.getMessage(), e);
        }
    }
}
