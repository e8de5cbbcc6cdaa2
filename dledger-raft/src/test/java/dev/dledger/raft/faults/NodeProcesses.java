package dev.dledger.raft.faults;

import dev.dledger.raft.cli.DledgerCommand;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The {@code dledger server} processes of one group, each a child JVM whose peer list comes from a
 * {@link ProxyMesh} (its own real address, and a proxy toward every peer). Each node appends its output to
 * {@code <dir>/<id>.log} across restarts and keeps its store in {@code <dir>/store/dledger-<id>}.
 *
 * <p>Each node runs with {@code -XX:+ExitOnOutOfMemoryError}: a node out of memory crashes (and is seen by
 * {@link #exitedOnTheirOwn}) rather than living on with a stopped driver. Process faults: {@link #kill} (SIGKILL),
 * {@link #pause} and {@link #resume} (SIGSTOP and SIGCONT, sent with the {@code kill} command since Java has no API
 * for them), {@link #start} again with the same command line. Calls are synchronized; a process is killed or stopped
 * only by its own handle, never by name.
 */
final class NodeProcesses implements AutoCloseable {

    /**
     * Heap of each node. The default flow control lets a leader keep 32 MiB in flight to each follower, which a
     * catching-up follower may hold decoded in its queue while it applies; 128 MiB was seen to run out.
     */
    static final String HEAP = "256m";

    private final Path dir;
    private final ProxyMesh mesh;
    private final List<String> extraArgs;
    private final Map<String, Process> processes = new LinkedHashMap<>();
    private final Map<String, Boolean> paused = new LinkedHashMap<>();
    /** The processes this class killed or stopped (their exit is expected). */
    private final Set<Process> ended = new HashSet<>();
    /** Processes that exited on their own, already reported. */
    private final Set<Process> reported = new HashSet<>();
    private int starts;

    /**
     * @param dir       the run's folder (node logs and stores)
     * @param mesh      the proxies, which give every node its peer list
     * @param extraArgs more {@code server} flags for every node (e.g. {@code --flush sync})
     */
    NodeProcesses(Path dir, ProxyMesh mesh, List<String> extraArgs) {
        this.dir = dir;
        this.mesh = mesh;
        this.extraArgs = List.copyOf(extraArgs);
    }

    /** The folder of node {@code id}'s store. */
    Path storeDir(String id) {
        return dir.resolve("store").resolve("dledger-" + id);
    }

    /** Node {@code id}'s output, appended across restarts. */
    Path log(String id) {
        return dir.resolve(id + ".log");
    }

    /** How many processes were started, restarts included. */
    synchronized int starts() {
        return starts;
    }

    /**
     * Starts node {@code id} (again), with its command line of every start.
     *
     * @throws IllegalStateException if it is running
     */
    synchronized void start(String id) {
        Process running = processes.get(id);
        if (running != null && running.isAlive()) {
            throw new IllegalStateException(id + " is running (pid " + running.pid() + ")");
        }
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx" + HEAP, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError", "-cp",
            System.getProperty("java.class.path"),
            DledgerCommand.class.getName(), "server", "--id", id, "--peers", mesh.peerListFor(id), "--store-dir",
            dir.resolve("store").toString(), "--bind", "127.0.0.1", "--state-machine", "kv"));
        cmd.addAll(extraArgs);
        try {
            Files.createDirectories(dir);
            Files.writeString(log(id), "===== start " + (starts + 1) + " of the run: " + String.join(" ", cmd)
                + System.lineSeparator(), StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log(id).toFile())).start();
            processes.put(id, p);
            paused.put(id, false);
            starts++;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start node " + id, e);
        }
    }

    /** Whether node {@code id}'s process runs (paused counts as running). */
    synchronized boolean alive(String id) {
        Process p = processes.get(id);
        return p != null && p.isAlive();
    }

    /** Whether node {@code id} is paused by {@link #pause}. */
    synchronized boolean paused(String id) {
        return Boolean.TRUE.equals(paused.get(id));
    }

    /** The process id of node {@code id}, or -1 when it does not run. */
    synchronized long pid(String id) {
        Process p = processes.get(id);
        return p != null && p.isAlive() ? p.pid() : -1;
    }

    /** SIGKILL, then waits until the process is gone. */
    synchronized void kill(String id) {
        Process p = processes.get(id);
        if (p == null || !p.isAlive()) {
            return;
        }
        ended.add(p);
        p.destroyForcibly();
        await(p, id, "SIGKILL");
        paused.put(id, false);
    }

    /**
     * The nodes whose process exited without being killed or stopped here (a crash, e.g. out of memory) since the
     * last call, each with its exit code; each such exit is reported once.
     */
    synchronized Map<String, Integer> exitedOnTheirOwn() {
        Map<String, Integer> exited = new LinkedHashMap<>();
        for (Map.Entry<String, Process> e : processes.entrySet()) {
            Process p = e.getValue();
            if (!p.isAlive() && !ended.contains(p) && reported.add(p)) {
                exited.put(e.getKey(), p.exitValue());
            }
        }
        return exited;
    }

    /** SIGSTOP: the process stays, frozen (threads, timers and sockets included). */
    synchronized void pause(String id) {
        signal(id, "STOP");
        paused.put(id, true);
    }

    /** SIGCONT. */
    synchronized void resume(String id) {
        signal(id, "CONT");
        paused.put(id, false);
    }

    private void signal(String id, String signal) {
        Process p = processes.get(id);
        if (p == null || !p.isAlive()) {
            return;
        }
        try {
            Process k = new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).redirectErrorStream(true)
                .start();
            if (!k.waitFor(10, TimeUnit.SECONDS) || k.exitValue() != 0) {
                throw new IllegalStateException("kill -" + signal + " " + p.pid() + " (node " + id + ") failed: "
                    + new String(k.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run kill -" + signal + " for node " + id, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while signalling node " + id, e);
        }
    }

    /**
     * Resumes every paused node, sends SIGTERM to all and waits for them; one that does not stop within
     * {@code timeoutSeconds} is killed.
     *
     * @return the nodes that had to be killed (none when every node stopped cleanly)
     */
    synchronized List<String> stopAll(long timeoutSeconds) {
        for (String id : processes.keySet()) {
            if (paused(id)) {
                resume(id);
            }
        }
        for (Process p : processes.values()) {
            ended.add(p);
            p.destroy();
        }
        List<String> killed = new ArrayList<>();
        for (Map.Entry<String, Process> e : processes.entrySet()) {
            try {
                if (!e.getValue().waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                    killed.add(e.getKey());
                    e.getValue().destroyForcibly();
                    await(e.getValue(), e.getKey(), "SIGKILL after SIGTERM");
                }
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while stopping the nodes", ie);
            }
        }
        return killed;
    }

    private static void await(Process p, String id, String what) {
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                throw new IllegalStateException("node " + id + " (pid " + p.pid() + ") still runs 30 s after " + what);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for node " + id, e);
        }
    }

    /** The last {@code lines} lines of node {@code id}'s output. */
    String tail(String id, int lines) {
        try {
            List<String> all = Files.readAllLines(log(id));
            return String.join(System.lineSeparator(), all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(cannot read " + log(id) + ": " + e.getMessage() + ")";
        }
    }

    /** Kills whatever still runs. */
    @Override
    public synchronized void close() {
        for (Map.Entry<String, Process> e : processes.entrySet()) {
            if (e.getValue().isAlive()) {
                e.getValue().destroyForcibly();
            }
        }
    }
}
