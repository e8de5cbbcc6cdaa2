package dev.dledger.raft.arch.violations.store;

import dev.dledger.raft.arch.violations.server.Server;

/** A store that calls back into the server: the layering test must flag it. */
public final class LeakyStore {

    public void flushed(Server server) {
        server.wakeUp();
    }
}
