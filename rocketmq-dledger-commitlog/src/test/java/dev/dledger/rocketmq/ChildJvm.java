package dev.dledger.rocketmq;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A child JVM on the test classpath, its output (stdout and stderr) going to one file, for tests that run servers as
 * real processes.
 */
final class ChildJvm implements AutoCloseable {

    private final String name;
    private final List<String> command;
    private final Path output;
    private Process process;

    /**
     * @param name      a short name for messages
     * @param jvmArgs   JVM options (heap, system properties)
     * @param mainClass the main class, on the test classpath
     * @param args      the program arguments
     * @param output    the file that receives stdout and stderr (appended to on a restart)
     */
    ChildJvm(String name, List<String> jvmArgs, String mainClass, List<String> args, Path output) {
        this.name = name;
        this.output = output;
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass);
        cmd.addAll(args);
        this.command = List.copyOf(cmd);
    }

    /** Starts the process (again, after {@link #kill()}). */
    ChildJvm start() throws IOException {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException(name + " is already running");
        }
        Files.createDirectories(output.getParent());
        process = new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(output.toFile()))
            .start();
        return this;
    }

    String name() {
        return name;
    }

    /** The process id while it runs (or after it ended), -1 before the first start. */
    long pid() {
        return process == null ? -1 : process.pid();
    }

    boolean isAlive() {
        return process != null && process.isAlive();
    }

    /** Kills the process at once (SIGKILL) and waits until it is gone. */
    void kill() throws InterruptedException {
        if (process == null) {
            return;
        }
        process.destroyForcibly();
        if (!process.waitFor(20, TimeUnit.SECONDS)) {
            throw new IllegalStateException(name + " did not die within 20 s of SIGKILL");
        }
    }

    /**
     * Stops the process gracefully (SIGTERM, so its shutdown hooks run) and waits until it is gone.
     *
     * @return the exit code (143 for a JVM that ended on SIGTERM)
     * @throws IllegalStateException if it did not end within {@code seconds}; it is then killed
     */
    int terminate(long seconds) throws InterruptedException {
        if (process == null) {
            throw new IllegalStateException(name + " was never started");
        }
        process.destroy();
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            kill();
            throw new IllegalStateException(name + " did not end within " + seconds + " s of SIGTERM");
        }
        return process.exitValue();
    }

    /** The last {@code lines} lines of the process output, for a failure report. */
    String tail(int lines) {
        return tailOf(output, lines);
    }

    static String tailOf(Path file, int lines) {
        try {
            if (!Files.exists(file)) {
                return "(no file " + file + ")";
            }
            List<String> all = List.of(new String(Files.readAllBytes(file), StandardCharsets.UTF_8).split("\\R"));
            return String.join(System.lineSeparator(), all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException | RuntimeException e) {
            return "(cannot read " + file + ": " + e + ")";
        }
    }

    @Override
    public void close() throws InterruptedException {
        kill();
    }
}
