package dev.dledger.distribution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

/** What the package's end-to-end tests share: unpacking the tar.gz the build made, running its scripts, its confs. */
final class PackageCopies {

    /** The longest a script may run before the test fails. */
    static final Duration SCRIPT_WAIT = Duration.ofSeconds(240);

    private PackageCopies() {
    }

    /** What a script printed (stdout and stderr together) and its exit code. */
    record Result(int exit, String output) {
    }

    /** Unpacks the package built by this module into {@code folder}; returns the package's folder there. */
    static Path unpack(Path folder) throws Exception {
        Path tarball = Path.of(System.getProperty("dist.tarball", "target/missing.tar.gz"));
        assertTrue(Files.isRegularFile(tarball), "no package at " + tarball + " (run mvn package first)");
        Files.createDirectories(folder);
        Result untar = exec(List.of("tar", "xzf", tarball.toString(), "-C", folder.toString()), folder, Map.of());
        assertEquals(0, untar.exit(), "tar failed: " + untar.output());
        Path home = folder.resolve(System.getProperty("dist.name", "dledger-rocketmq"));
        assertTrue(Files.isDirectory(home), "the package does not unpack to " + home.getFileName());
        return home;
    }

    /** Runs {@code command} in {@code dir} with {@code env} added, waits up to {@link #SCRIPT_WAIT}. */
    static Result exec(List<String> command, Path dir, Map<String, String> env) throws Exception {
        Path out = Files.createTempFile(dir, "out", ".txt");
        try {
            ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(out.toFile()).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            pb.environment().putAll(env);
            Process p = pb.start();
            if (!p.waitFor(SCRIPT_WAIT.toSeconds(), TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError(command + " did not finish in " + SCRIPT_WAIT + ":\n" + Files.readString(out));
            }
            return new Result(p.exitValue(), Files.readString(out));
        } finally {
            Files.deleteIfExists(out);
        }
    }

    /** Sets {@code key} on its (uncommented) line of a conf file; fails when the file has no such line. */
    static void setKey(Path file, String key, String value) throws IOException {
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        boolean found = false;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith(key + "=")) {
                lines.set(i, key + "=" + value);
                found = true;
            }
        }
        assertTrue(found, file.getFileName() + " has no " + key + "= line");
        Files.write(file, lines, StandardCharsets.UTF_8);
    }

    /** The value of {@code key} in a properties file, as RocketMQ reads it. */
    static String confValue(Path file, String key) throws IOException {
        Properties p = new Properties();
        try (var in = Files.newInputStream(file)) {
            p.load(in);
        }
        return p.getProperty(key);
    }

    /** Whether {@code port} can be bound on {@code host} now. */
    static boolean isFree(String host, int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(InetAddress.getByName(host), port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * This JVM's Java, small heaps, C1 only and RocketMQ's remoting without TLS (no test speaks it; its default makes
     * each server generate a key at its start): the servers start faster on a small shared machine.
     */
    static Map<String, String> smallServers(Path data) {
        return Map.of("JAVA_HOME", System.getProperty("java.home"),
            "DLEDGER_DATA", data.toString(),
            "DLEDGER_NAMESRV_HEAP", "128m",
            "DLEDGER_BROKER_HEAP", "256m",
            "DLEDGER_BROKER_DIRECT", "128m",
            "JAVA_OPT_EXT", "-XX:TieredStopAtLevel=1 -Dtls.server.mode=disabled",
            "DLEDGER_START_TIMEOUT", "180");
    }
}
