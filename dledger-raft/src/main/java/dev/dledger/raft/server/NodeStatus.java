package dev.dledger.raft.server;

import dev.dledger.raft.core.FollowerProgress;
import dev.dledger.raft.core.Role;
import java.util.List;

/**
 * A point-in-time view of a node, published by its driver thread after every loop pass.
 *
 * @param group        the group
 * @param id           the node
 * @param role         its role
 * @param term         its term
 * @param leaderId     the leader it knows, or null
 * @param lastIndex    its last log index
 * @param commitIndex  its commit index
 * @param appliedIndex the last index applied to its state machine
 * @param voters       the voters in force
 * @param followers    per follower replication state (leader only)
 * @param failed       whether the node stopped after a storage failure
 * @param transferee   on a leader handing its leadership over, the node it hands it to (proposals are refused
 *                     meanwhile); null otherwise
 */
public record NodeStatus(String group, String id, Role role, long term, String leaderId, long lastIndex,
                         long commitIndex, long appliedIndex, List<String> voters, List<FollowerProgress> followers,
                         boolean failed, String transferee) {
}
