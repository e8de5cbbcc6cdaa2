package dev.dledger.raft.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code dledger} command line: run nodes, talk to a group, inspect a store, benchmark. */
@Command(name = "dledger", mixinStandardHelpOptions = true, version = "dledger 0.1.0",
    description = "A Raft replicated log in DLedger's on-disk format.",
    subcommands = {ServerCommand.Server.class, ServerCommand.Appender.class, ServerCommand.Register.class,
        ClientCommands.Append.class, ClientCommands.Get.class, ClientCommands.Write.class, ClientCommands.Read.class,
        ClientCommands.Status.class, ClientCommands.Transfer.class,
        ClientCommands.PreferredLeader.class, ClientCommands.Member.class, LogCommands.class,
        BenchmarkCommand.class, DemoCommand.class})
public final class DledgerCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getErr());
        return 2;
    }

    /**
     * The entry point; exits with the command's code. Log lines (SLF4J simple, on stderr) carry the time unless the
     * {@code org.slf4j.simpleLogger.*} system properties say otherwise.
     */
    public static void main(String[] args) {
        defaultProperty("org.slf4j.simpleLogger.showDateTime", "true");
        defaultProperty("org.slf4j.simpleLogger.dateTimeFormat", "yyyy-MM-dd HH:mm:ss.SSS");
        defaultProperty("org.slf4j.simpleLogger.log.io.netty", "warn");
        System.exit(execute(args));
    }

    private static void defaultProperty(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }

    /** Runs the command line without exiting (for tests and embedding). */
    public static int execute(String... args) {
        return commandLine().execute(args);
    }

    private static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new DledgerCommand()).setCaseInsensitiveEnumValuesAllowed(true);
        for (String server : new String[] {"server", "appender", "register"}) {
            cl.getSubcommands().get(server).getCommandSpec().usageMessage().footer(ServerCommand.keysHelp());
        }
        CommandLine.IParameterExceptionHandler usage = cl.getParameterExceptionHandler();
        cl.setParameterExceptionHandler((e, args) -> {
            // A typed server option that does not convert: one line naming the flag and its key, as a bad value in
            // the config file is refused (ServerConfig), instead of the usage text.
            if (e.getCause() instanceof CommandLine.TypeConversionException bad
                && e.getArgSpec() instanceof CommandLine.Model.OptionSpec option
                && e.getCommandLine().getCommand() instanceof ServerCommand.Base) {
                e.getCommandLine().getErr().println("error: " + ServerConfig.describeFlag(option.longestName()) + " "
                    + bad.getMessage());
                e.getCommandLine().getErr().flush();
                return 2;
            }
            return usage.handleParseException(e, args);
        });
        return cl;
    }

    /** Runs the command line with its output and errors sent to the given writers. */
    public static int execute(java.io.PrintWriter out, java.io.PrintWriter err, String... args) {
        CommandLine cl = commandLine();
        cl.setOut(out);
        cl.setErr(err);
        return cl.execute(args);
    }
}
