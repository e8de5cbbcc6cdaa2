package dev.dledger.raft.server;

/** Opens {@link MemoryNodeStorage} for tests in other packages. */
public final class MemoryStorageAccess {

    private MemoryStorageAccess() {
    }

    /** A new, empty in-memory node storage. */
    public static NodeStorage open() {
        return new MemoryNodeStorage();
    }
}
