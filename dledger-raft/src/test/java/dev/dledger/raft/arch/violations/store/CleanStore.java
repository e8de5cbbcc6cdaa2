package dev.dledger.raft.arch.violations.store;

import dev.dledger.raft.arch.violations.core.CleanCore;
import java.nio.ByteBuffer;
import java.util.List;

/** A store that depends on the core only, which is allowed. */
public final class CleanStore {

    public ByteBuffer write(CleanCore core) {
        return core.encode(List.of("a"));
    }
}
