package dev.dledger.raft.arch.violations.config;

import dev.dledger.raft.arch.violations.cli.Command;

/** A library class that reaches into the command line: the layering test must flag it. */
public final class CliAwareConfig {

    public String help() {
        return Command.usage();
    }
}
