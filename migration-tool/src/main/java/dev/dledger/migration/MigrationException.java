package dev.dledger.migration;

/** Bad input or an unsafe migration: the message is one line naming what is wrong and where. */
public final class MigrationException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** The exit status of the command that fails with it. */
    private final int exitCode;

    /** A failure with exit status 2 (bad input). */
    public MigrationException(String message) {
        this(message, MigrateCommand.EXIT_BAD_INPUT);
    }

    /** A failure with the given exit status. */
    public MigrationException(String message, int exitCode) {
        super(message);
        this.exitCode = exitCode;
    }

    /** The exit status: 1 for an unsafe migration or a difference found, 2 for bad input. */
    public int exitCode() {
        return exitCode;
    }
}
