package dev.dledger.raft.arch.violations.transport;

import dev.dledger.raft.arch.violations.server.Server;

/** A transport that reaches into the server: the layering test must flag it. */
public final class LeakyTransport {

    private Server server;

    public void deliver() {
        server.wakeUp();
    }
}
