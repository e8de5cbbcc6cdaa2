/**
 * RocketMQ brokers on the Raft log: {@link dev.dledger.rocketmq.RaftCommitLog} (the CommitLog),
 * {@link dev.dledger.rocketmq.RaftBrokerStartup} (the broker's main class) and the role handling that makes the Raft
 * leader the group's master.
 */
package dev.dledger.rocketmq;
