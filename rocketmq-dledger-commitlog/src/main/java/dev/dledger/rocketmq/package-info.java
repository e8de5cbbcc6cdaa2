/**
 * RocketMQ broker storage on the Raft log: the {@code CommitLog} subclass, the launcher and the role handling.
 */
package dev.dledger.rocketmq;
