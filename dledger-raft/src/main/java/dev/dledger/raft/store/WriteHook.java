package dev.dledger.raft.store;

import dev.dledger.raft.core.Entry;

/**
 * Sees every entry just before the store encodes it at its data-file position. An application whose entries must
 * carry their own position (RocketMQ messages hold their physical offset, {@code pos + 48}) patches the entry's
 * body in place here; the body CRC is computed afterwards, and the leader replicates the patched bytes because it
 * sends entries only after it stored them.
 *
 * <p>Runs on the store's writer thread; it must be fast, must not change the body's length, and must not throw.
 */
@FunctionalInterface
public interface WriteHook {

    /** Called for {@code entry}, about to be written at data-file position {@code pos}. */
    void beforeWrite(Entry entry, long pos);
}
