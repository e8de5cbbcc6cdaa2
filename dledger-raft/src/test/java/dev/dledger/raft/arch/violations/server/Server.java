package dev.dledger.raft.arch.violations.server;

/** Stands for the driver layer in the layering fixtures. */
public final class Server {

    public void wakeUp() {
    }
}
