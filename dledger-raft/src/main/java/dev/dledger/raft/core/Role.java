package dev.dledger.raft.core;

/** The role of a node in its group (Raft paper section 5.2, with the pre-vote phase of the thesis, section 9.6). */
public enum Role {
    FOLLOWER,
    PRE_CANDIDATE,
    CANDIDATE,
    LEADER
}
