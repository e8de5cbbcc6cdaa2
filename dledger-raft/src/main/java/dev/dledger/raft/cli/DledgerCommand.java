package dev.dledger.raft.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code dledger} command line: run nodes, talk to a group, inspect a store, benchmark. */
@Command(name = "dledger", mixinStandardHelpOptions = true, version = "dledger 0.1.0",
    description = "A Raft replicated log in DLedger's on-disk format.",
    subcommands = {ClientCommands.Append.class, ClientCommands.Get.class, ClientCommands.Status.class,
        ClientCommands.Transfer.class, ClientCommands.Member.class, LogCommands.class, BenchmarkCommand.class,
        DemoCommand.class})
public final class DledgerCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }

    /** The entry point; exits with the command's code. */
    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the command line without exiting (for tests and embedding). */
    public static int execute(String... args) {
        return new CommandLine(new DledgerCommand()).setCaseInsensitiveEnumValuesAllowed(true).execute(args);
    }

    /** Runs the command line with its output and errors sent to the given writers. */
    public static int execute(java.io.PrintWriter out, java.io.PrintWriter err, String... args) {
        CommandLine cl = new CommandLine(new DledgerCommand()).setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOut(out);
        cl.setErr(err);
        return cl.execute(args);
    }
}
