package dev.dledger.rocketmq;

import dev.dledger.raft.core.OneLine;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/**
 * The main class of {@code bin/mqbrokercontainer -c FILE}: reads the container's config (see
 * {@link RaftBrokerContainer} for its keys) and runs every broker of {@code brokerConfigPaths} in this process on the
 * Raft log. A wrong config is refused with one line naming the file and key, and exit code 2; a boot that fails
 * otherwise (a port taken, a store that does not open) stops what had started and exits with code 1.
 */
public final class RaftBrokerContainerStartup {

    private RaftBrokerContainerStartup() {
    }

    public static void main(String[] args) throws Exception {
        RaftBrokerContainer container;
        try {
            container = new RaftBrokerContainer(read(args));
        } catch (IllegalArgumentException e) {
            System.err.println("broker container config: " + OneLine.of(e.getMessage()));
            System.exit(2);
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(container::close, "ContainerShutdownHook"));
        try {
            container.start();
        } catch (IllegalArgumentException e) {
            // start() stopped what had started
            System.err.println("broker container: " + OneLine.of(String.valueOf(e.getMessage())));
            System.exit(2);
            return;
        } catch (Exception | Error e) {
            // A boot that failed half way (a port taken, a store that does not open): start() stopped what had
            // started; the process must not stay up with part of its brokers.
            System.err.println("broker container failed to start: " + OneLine.of(String.valueOf(e)));
            e.printStackTrace();
            System.exit(1);
            return;
        }
        System.out.printf("The broker container on the Raft log boots successfully: admin port %d, brokers %s%n",
            container.listenPort(), container.brokers().keySet());
    }

    /**
     * The container's config of {@code -c FILE}; relative {@code brokerConfigPaths} are made absolute against the
     * file's folder.
     *
     * @throws IllegalArgumentException naming the file when it is missing or unreadable
     */
    static Properties read(String[] args) {
        String file = null;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("-c") && i + 1 < args.length) {
                file = args[i + 1];
            }
        }
        if (file == null) {
            throw new IllegalArgumentException("usage: mqbrokercontainer -c FILE (the container's config file)");
        }
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(Path.of(file))) {
            p.load(r);
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException("config file " + file + " cannot be read: "
                + OneLine.of(String.valueOf(e)), e);
        }
        Properties trimmed = new Properties();
        for (String k : p.stringPropertyNames()) {
            trimmed.setProperty(k.trim(), p.getProperty(k).trim());
        }
        String paths = trimmed.getProperty("brokerConfigPaths");
        if (paths != null) {
            trimmed.setProperty("brokerConfigPaths", resolve(paths, Path.of(file).toAbsolutePath().getParent()));
        }
        return trimmed;
    }

    /**
     * {@code brokerConfigPaths} ({@code :}-separated) with each relative path made absolute against {@code base}, the
     * container config's folder (so {@code conf/container/container-0.conf} can list {@code broker-a-n0.conf}).
     */
    static String resolve(String brokerConfigPaths, Path base) {
        java.util.List<String> out = new java.util.ArrayList<>();
        for (String p : brokerConfigPaths.split(":")) {
            if (p.isBlank()) {
                continue;
            }
            Path path = Path.of(p.trim());
            out.add((path.isAbsolute() || base == null ? path : base.resolve(path)).normalize().toString());
        }
        return String.join(":", out);
    }
}
