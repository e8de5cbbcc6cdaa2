package dev.dledger.rocketmq;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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
        try {
            if (!stop(Duration.ofSeconds(seconds))) {
                throw new IllegalStateException(name + " did not end within " + seconds + " s of SIGTERM");
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return process.exitValue();
    }

    /**
     * Asks the process to stop (SIGTERM, after SIGCONT in case it is paused) and waits up to {@code timeout} for it;
     * kills it (SIGKILL) when it does not end in time.
     *
     * @return true when it ended by itself within the time
     */
    boolean stop(Duration timeout) throws IOException, InterruptedException {
        terminate();
        return awaitExit(timeout);
    }

    /** Asks the process to stop (SIGCONT in case it is paused, then SIGTERM) without waiting. */
    void terminate() throws IOException, InterruptedException {
        if (process == null || !process.isAlive()) {
            return;
        }
        resume();
        process.destroy();
    }

    /**
     * Waits up to {@code timeout} for the process to end; kills it (SIGKILL) when it does not.
     *
     * @return true when it ended by itself within the time
     */
    boolean awaitExit(Duration timeout) throws InterruptedException {
        if (process == null || process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            return true;
        }
        kill();
        return false;
    }

    /** The exit code of the process, which has ended. */
    int exitCode() {
        if (process == null || process.isAlive()) {
            throw new IllegalStateException(name + " has not ended");
        }
        return process.exitValue();
    }

    /** Freezes the process (SIGSTOP): it keeps its sockets and memory but runs nothing until {@link #resume()}. */
    void pause() throws IOException, InterruptedException {
        signal("STOP");
    }

    /** Lets a paused process run again (SIGCONT); nothing happens to a running one. */
    void resume() throws IOException, InterruptedException {
        signal("CONT");
    }

    private void signal(String name) throws IOException, InterruptedException {
        if (process == null || !process.isAlive()) {
            return;
        }
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid()))
            .redirectErrorStream(true).start();
        String said = new String(kill.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (kill.waitFor() != 0 && process.isAlive()) {
            throw new IOException("kill -" + name + " " + process.pid() + " (" + this.name + ") failed: " + said);
        }
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
