/**
 * The {@code dledger-migrate} command: checks, converts and verifies a master/slave RocketMQ store (or recognizes a
 * stock DLedger-mode store) so that brokers on the Raft log serve its messages.
 */
package dev.dledger.migration;
