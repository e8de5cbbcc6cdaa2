package dev.dledger.raft.arch.violations.cli;

/** Stands for the command-line layer in the layering fixtures. */
public final class Command {

    public static String usage() {
        return "usage";
    }
}
