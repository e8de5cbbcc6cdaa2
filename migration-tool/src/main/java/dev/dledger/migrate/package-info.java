/**
 * The {@code dledger-migrate} command: moves a master/slave CommitLog or a stock DLedger store under the Raft log.
 */
package dev.dledger.migrate;
