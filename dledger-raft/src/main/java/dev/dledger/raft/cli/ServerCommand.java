package dev.dledger.raft.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code dledger server}, {@code appender} and {@code register}: run one node (of one or more groups) until SIGTERM.
 * They take the same flags and config file; appender and register start a one-node group when given no peers, and
 * register's state machine is the key-value register.
 */
final class ServerCommand {

    private ServerCommand() {
    }

    /**
     * The flags shared by the three commands. Each flag overrides the config file key of the same meaning; the
     * values stay text here so that {@link ServerConfig} checks them all in one place and names where a bad one came
     * from.
     */
    abstract static class Base implements Callable<Integer> {
        @Option(names = {"-c", "--config"}, description = "a properties file of settings (keys: see below); "
            + "flags override it")
        Path config;

        @Option(names = {"-g", "--group"}, description = "the group's name (default: default)")
        String group;

        @Option(names = {"-i", "--id"}, description = "this node's id, one of --peers")
        String id;

        @Option(names = {"-p", "--peers"}, description = "the group's voters: n0-host:port;n1-host:port;...")
        String peers;

        @Option(names = {"-s", "--store-dir"}, description = "the log goes in STORE_DIR/dledger-<id> "
            + "(default: /tmp/dledgerstore)")
        String storeDir;

        @Option(names = "--state-machine", description = "log or kv (default: log; register: kv)")
        String stateMachine;

        @Option(names = "--flush", description = "sync or async (default: async)")
        String flush;

        @Option(names = "--flush-interval-ms", description = "ms between fsyncs with async flush (default: 10)")
        String flushIntervalMs;

        @Option(names = "--tick-ms", description = "ms per protocol tick (default: 10)")
        String tickMs;

        @Option(names = "--election-timeout-ms", description = "ms without a leader before campaigning, "
            + "randomized up to twice that (default: 300)")
        String electionTimeoutMs;

        @Option(names = "--heartbeat-interval-ms", description = "ms between a leader's heartbeats (default: 30)")
        String heartbeatIntervalMs;

        @Option(names = "--append-timeout-ms", description = "ms before an uncommitted append is answered TIMEOUT "
            + "(default: 3000)")
        String appendTimeoutMs;

        @Option(names = "--max-pending", description = "appends waiting for commit before OVERLOADED "
            + "(default: 10000)")
        String maxPending;

        @Option(names = "--preferred-leader-id", description = "the node that should lead when caught up")
        String preferredLeaderId;

        @Option(names = "--snapshot-threshold", description = "entries between snapshots of a kv state machine, "
            + "0 = never (default: 0)")
        String snapshotThreshold;

        @Option(names = "--bind", description = "the address to listen on (default: 0.0.0.0)")
        String bind;

        @Option(names = "--metrics-port", description = "Prometheus metrics port, 0 = a free one, -1 = off "
            + "(default: -1)")
        String metricsPort;

        @Option(names = "--data-file-size", description = "bytes per data file of a new store (default: 1 GiB)")
        String dataFileSize;

        @Option(names = "--index-file-size", description = "bytes per index file of a new store (default: 160 MiB)")
        String indexFileSize;

        @Option(names = "--secret", description = "the group secret every node shares (prefer the config file: a flag "
            + "shows in ps); without it peers are not authenticated")
        String secret;

        @Option(names = "--client-token", description = "the token clients must prove (--token on client commands)")
        String clientToken;

        @Option(names = "--tls-key-store", description = "PKCS12/JKS file with this node's key; turns on mutual TLS")
        String tlsKeyStore;

        @Option(names = "--tls-key-store-password", description = "the key store's password")
        String tlsKeyStorePassword;

        @Option(names = "--tls-trust-store", description = "PKCS12/JKS file of trusted certificates (default: the "
            + "JDK's)")
        String tlsTrustStore;

        @Option(names = "--tls-trust-store-password", description = "the trust store's password")
        String tlsTrustStorePassword;

        @Option(names = "--max-frame-bytes", description = "largest frame a connection may send (default: 32 MiB)")
        String maxFrameBytes;

        @Option(names = "--max-inflight-requests", description = "unanswered client requests per connection before "
            + "OVERLOADED (default: 4096)")
        String maxInflightRequests;

        @Option(names = "--max-connections-per-address", description = "inbound connections per IP address "
            + "(default: 64)")
        String maxConnectionsPerAddress;

        @Spec
        CommandLine.Model.CommandSpec spec;

        /** What this command brings to the settings. */
        abstract ServerConfig.CommandDefaults defaults();

        /** The flags given, by config key; and which flag set each key. */
        private void collectFlags(Map<String, String> values, Map<String, String> flags) {
            for (ServerConfig.Key k : ServerConfig.KEYS) {
                if (k.flag() == null) {
                    continue;
                }
                CommandLine.Model.OptionSpec o = spec.findOption(k.flag());
                if (o != null && o.getValue() != null) {
                    values.put(k.name(), o.getValue().toString());
                    flags.put(k.name(), o.longestName());
                }
            }
        }

        @Override
        public Integer call() throws InterruptedException {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            Map<String, String> values = new LinkedHashMap<>();
            Map<String, String> flags = new LinkedHashMap<>();
            collectFlags(values, flags);
            RunningServer server;
            try {
                server = RunningServer.start(ServerConfig.load(config, values, flags, defaults()));
            } catch (ServerConfig.ConfigException e) {
                err.println("error: " + e.getMessage());
                err.flush();
                return 2;
            }
            server.describe(out);
            CountDownLatch closed = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                server.close();
                out.println("dledger server: stopped");
                out.flush();
                closed.countDown();
            }, "dledger-shutdown"));
            while (!closed.await(200, TimeUnit.MILLISECONDS)) {
                if (server.anyFailed()) {
                    err.println("error: a node stopped after a storage or state machine failure (see the log); "
                        + "exiting so that it can be looked at and restarted");
                    err.flush();
                    return 1;
                }
            }
            return 0;
        }
    }

    /** {@code dledger server}: one node, peers and id required. */
    @Command(name = "server", mixinStandardHelpOptions = true,
        description = "Run one node of a group (or of several groups sharing its port) until SIGTERM.")
    static final class Server extends Base {
        @Override
        ServerConfig.CommandDefaults defaults() {
            return new ServerConfig.CommandDefaults("server", false, "log");
        }
    }

    /** {@code dledger appender}: a plain log, one node on localhost:20911 unless told otherwise. */
    @Command(name = "appender", mixinStandardHelpOptions = true,
        description = "Run a plain replicated log node; without --peers a one-node group n0 on localhost:20911.")
    static final class Appender extends Base {
        @Override
        ServerConfig.CommandDefaults defaults() {
            return new ServerConfig.CommandDefaults("appender", true, "log");
        }
    }

    /** {@code dledger register}: the key-value register, one node on localhost:20911 unless told otherwise. */
    @Command(name = "register", mixinStandardHelpOptions = true,
        description = "Run a key-value register node (use write and read against it); without --peers a one-node "
            + "group n0 on localhost:20911.")
    static final class Register extends Base {
        @Override
        ServerConfig.CommandDefaults defaults() {
            return new ServerConfig.CommandDefaults("register", true, "kv");
        }
    }

    /** The config file keys, for the help of the three commands: one block per key, wrapped for 80 columns. */
    static String keysHelp() {
        StringBuilder b = new StringBuilder("%nConfig file keys (properties; a flag overrides its key):%n");
        for (ServerConfig.Key k : ServerConfig.KEYS) {
            b.append("  ").append(k.name()).append(k.flag() == null ? " (file only)" : " (" + k.flag() + ")")
                .append("%n");
            wrap(b, k.description() + ". Default: " + k.defaultValue());
        }
        return b.toString();
    }

    private static void wrap(StringBuilder b, String text) {
        StringBuilder line = new StringBuilder();
        for (String word : text.replace("%", "%%").split(" ")) {
            if (line.length() > 0 && line.length() + 1 + word.length() > 72) {
                b.append("      ").append(line).append("%n");
                line.setLength(0);
            }
            line.append(line.length() == 0 ? "" : " ").append(word);
        }
        b.append("      ").append(line).append("%n");
    }
}
