package dev.dledger.raft.core;

import java.util.List;

/**
 * The Raft protocol of one node of one group, as a deterministic state machine. STUB: the implementation follows.
 */
public final class RaftNode {

    public RaftNode(RaftConfig config, LogView log, InitialState initial, RandomSource random, CoreLog out) {
        throw new UnsupportedOperationException("stub");
    }

    public String id() {
        throw new UnsupportedOperationException("stub");
    }

    public void tick() {
        throw new UnsupportedOperationException("stub");
    }

    public void step(Message m) {
        throw new UnsupportedOperationException("stub");
    }

    public ProposeResult propose(byte[] data) {
        throw new UnsupportedOperationException("stub");
    }

    public ProposeResult propose(List<byte[]> batch) {
        throw new UnsupportedOperationException("stub");
    }

    public ProposeResult addVoter(String peer) {
        throw new UnsupportedOperationException("stub");
    }

    public ProposeResult removeVoter(String peer) {
        throw new UnsupportedOperationException("stub");
    }

    public ProposeResult transferLeadership(String target) {
        throw new UnsupportedOperationException("stub");
    }

    public ProposeResult readIndex(long requestId, boolean lease) {
        throw new UnsupportedOperationException("stub");
    }

    public void reportSnapshotFailed(String peer) {
        throw new UnsupportedOperationException("stub");
    }

    public boolean hasReady() {
        throw new UnsupportedOperationException("stub");
    }

    public Ready ready() {
        throw new UnsupportedOperationException("stub");
    }

    public void advance(Ready rd) {
        throw new UnsupportedOperationException("stub");
    }

    public Role role() {
        throw new UnsupportedOperationException("stub");
    }

    public long term() {
        throw new UnsupportedOperationException("stub");
    }

    public String votedFor() {
        throw new UnsupportedOperationException("stub");
    }

    public String leaderId() {
        throw new UnsupportedOperationException("stub");
    }

    public long commitIndex() {
        throw new UnsupportedOperationException("stub");
    }

    public long appliedIndex() {
        throw new UnsupportedOperationException("stub");
    }

    public long lastIndex() {
        throw new UnsupportedOperationException("stub");
    }

    public Membership membership() {
        throw new UnsupportedOperationException("stub");
    }

    public Membership membershipAt(long index) {
        throw new UnsupportedOperationException("stub");
    }

    public List<FollowerProgress> progress() {
        throw new UnsupportedOperationException("stub");
    }
}
