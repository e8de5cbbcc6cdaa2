package dev.dledger.raft.cli;

import dev.dledger.raft.server.FlushMode;
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
     * The flags shared by the three commands, each a typed field: picocli converts a flag with the converter of
     * {@link SettingConverters} named on it, and refuses a bad one with one line naming the flag and its key
     * ({@link DledgerCommand}). Each field's {@link ConfigKey} names the config file key it overrides, with its default
     * and unit; the file's text for that key goes through the same converter ({@link ServerConfig#load}). A field left
     * null was not given. Ranges and the rules between settings are checked in one place, {@link ServerConfig}.
     */
    abstract static class Base implements Callable<Integer> {
        @Option(names = {"-c", "--config"}, converter = SettingConverters.PathValue.class,
            description = "a properties file of settings (keys: see below); flags override it")
        Path config;

        @ConfigKey(name = "group", defaultValue = "default", description = "the group's name")
        @Option(names = {"-g", "--group"}, description = "the group's name (default: default)")
        String group;

        @ConfigKey(name = "selfId", defaultValue = "n0 (appender, register); required for server",
            description = "this node's id; one of peers")
        @Option(names = {"-i", "--id"}, description = "this node's id, one of --peers")
        String id;

        @ConfigKey(name = "peers", defaultValue = "<selfId>-localhost:20911 (appender, register); required for server",
            description = "every voter of the group, id-host:port;id-host:port;... (ids without '-')")
        @Option(names = {"-p", "--peers"}, description = "the group's voters: n0-host:port;n1-host:port;...")
        String peers;

        @ConfigKey(name = "storeBaseDir", defaultValue = "/tmp/dledgerstore",
            description = "the node keeps its log in <storeBaseDir>/dledger-<selfId>, DLedger's layout")
        @Option(names = {"-s", "--store-dir"}, converter = SettingConverters.PathValue.class,
            description = "the log goes in STORE_DIR/dledger-<id> (default: /tmp/dledgerstore)")
        Path storeDir;

        @ConfigKey(name = "stateMachine", defaultValue = "log (server, appender); kv (register)",
            description = "log: a plain replicated log; kv: a key-value register served by write and read")
        @Option(names = "--state-machine", converter = SettingConverters.StateMachineValue.class,
            description = "log or kv (default: log; register: kv)")
        SettingConverters.StateMachineKind stateMachine;

        @ConfigKey(name = "flush", defaultValue = "async",
            description = "sync: an entry counts toward commit once fsynced; async: once written, fsynced every "
                + "flushFileInterval")
        @Option(names = "--flush", converter = SettingConverters.FlushValue.class,
            description = "sync or async (default: async)")
        FlushMode flush;

        @ConfigKey(name = "flushFileInterval", defaultValue = "10",
            description = "milliseconds between fsyncs of the log (async)")
        @Option(names = "--flush-interval-ms", converter = SettingConverters.LongValue.class,
            description = "ms between fsyncs with async flush (default: 10)")
        Long flushIntervalMs;

        @ConfigKey(name = "tickMs", defaultValue = "10",
            description = "milliseconds per protocol tick; the timeouts are whole ticks")
        @Option(names = "--tick-ms", converter = SettingConverters.IntValue.class,
            description = "ms per protocol tick (default: 10)")
        Integer tickMs;

        @ConfigKey(name = "electionTimeoutMs", defaultValue = "300",
            description = "milliseconds; a follower that hears no leader for a random time in [t, 2t) campaigns")
        @Option(names = "--election-timeout-ms", converter = SettingConverters.IntValue.class,
            description = "ms without a leader before campaigning, randomized up to twice that (default: 300)")
        Integer electionTimeoutMs;

        @ConfigKey(name = "heartbeatIntervalMs", defaultValue = "30",
            description = "milliseconds between a leader's heartbeats; below electionTimeoutMs")
        @Option(names = "--heartbeat-interval-ms", converter = SettingConverters.IntValue.class,
            description = "ms between a leader's heartbeats (default: 30)")
        Integer heartbeatIntervalMs;

        @ConfigKey(name = "appendTimeoutMs", defaultValue = "3000",
            description = "milliseconds; an append not committed by then is answered TIMEOUT (it may still commit)")
        @Option(names = "--append-timeout-ms", converter = SettingConverters.LongValue.class,
            description = "ms before an uncommitted append is answered TIMEOUT (default: 3000)")
        Long appendTimeoutMs;

        @ConfigKey(name = "maxPendingRequestsNum", defaultValue = "10000",
            description = "appends waiting for commit; more are refused with OVERLOADED")
        @Option(names = "--max-pending", converter = SettingConverters.IntValue.class,
            description = "appends waiting for commit before OVERLOADED (default: 10000)")
        Integer maxPending;

        @ConfigKey(name = "preferredLeaderId", defaultValue = "(none)",
            description = "the node that should lead when caught up")
        @Option(names = "--preferred-leader-id", description = "the node that should lead when caught up")
        String preferredLeaderId;

        @ConfigKey(name = "snapshotThreshold", defaultValue = "0",
            description = "entries applied between snapshots of a kv state machine (the log below is compacted); "
                + "0 = never")
        @Option(names = "--snapshot-threshold", converter = SettingConverters.LongValue.class,
            description = "entries between snapshots of a kv state machine, 0 = never (default: 0)")
        Long snapshotThreshold;

        @ConfigKey(name = "bindAddress", defaultValue = "0.0.0.0",
            description = "the address to listen on; the port is this node's in peers")
        @Option(names = "--bind", description = "the address to listen on (default: 0.0.0.0)")
        String bind;

        @ConfigKey(name = "metricsPort", defaultValue = "-1",
            description = "Prometheus metrics on http://<host>:<port>/metrics; -1 = off, 0 = a free port")
        @Option(names = "--metrics-port", converter = SettingConverters.IntValue.class,
            description = "Prometheus metrics port, 0 = a free one, -1 = off (default: -1)")
        Integer metricsPort;

        @ConfigKey(name = "mappedFileSizeForEntryData", defaultValue = "1073741824",
            description = "bytes per data file of a new store; an existing store keeps its own")
        @Option(names = "--data-file-size", converter = SettingConverters.LongValue.class,
            description = "bytes per data file of a new store (default: 1 GiB)")
        Long dataFileSize;

        @ConfigKey(name = "mappedFileSizeForEntryIndex", defaultValue = "167772160",
            description = "bytes per index file of a new store, a multiple of 32; an existing store keeps its own")
        @Option(names = "--index-file-size", converter = SettingConverters.LongValue.class,
            description = "bytes per index file of a new store (default: 160 MiB)")
        Long indexFileSize;

        @ConfigKey(name = "secret", defaultValue = "(none: peers not authenticated, a WARN at start)",
            description = "the secret every node of the groups shares, at least 16 characters; peers prove it to "
                + "each other when they connect (HMAC challenge-response, never sent); prefer the file, a flag shows "
                + "in ps")
        @Option(names = "--secret", description = "the group secret every node shares (prefer the config file: a flag "
            + "shows in ps); without it peers are not authenticated")
        String secret;

        @ConfigKey(name = "clientToken", defaultValue = "(none: clients not authenticated)",
            description = "the token clients must prove (dledger append --token ...), at least 8 characters; a client "
                + "without it is refused with an error and disconnected")
        @Option(names = "--client-token", description = "the token clients must prove (--token on client commands)")
        String clientToken;

        @ConfigKey(name = "tlsKeyStore", defaultValue = "(none: no TLS)",
            description = "a PKCS12 or JKS file with this node's key and certificate; turns on mutual TLS for every "
                + "connection (peers and clients must show a certificate the trust store vouches for)")
        @Option(names = "--tls-key-store", converter = SettingConverters.PathValue.class,
            description = "PKCS12/JKS file with this node's key; turns on mutual TLS")
        Path tlsKeyStore;

        @ConfigKey(name = "tlsKeyStorePassword", defaultValue = "(none)",
            description = "the password of tlsKeyStore and of its key")
        @Option(names = "--tls-key-store-password", description = "the key store's password")
        String tlsKeyStorePassword;

        @ConfigKey(name = "tlsTrustStore", defaultValue = "(the JDK's default trust store)",
            description = "a PKCS12 or JKS file of the certificates to trust (may be tlsKeyStore itself for one shared "
                + "self-signed certificate)")
        @Option(names = "--tls-trust-store", converter = SettingConverters.PathValue.class,
            description = "PKCS12/JKS file of trusted certificates (default: the JDK's)")
        Path tlsTrustStore;

        @ConfigKey(name = "tlsTrustStorePassword", defaultValue = "(none)", description = "the password of tlsTrustStore")
        @Option(names = "--tls-trust-store-password", description = "the trust store's password")
        String tlsTrustStorePassword;

        @ConfigKey(name = "maxFrameBytes", defaultValue = "33554432",
            description = "bytes; the largest frame a connection may send, a larger one closes it")
        @Option(names = "--max-frame-bytes", converter = SettingConverters.IntValue.class,
            description = "largest frame a connection may send (default: 32 MiB)")
        Integer maxFrameBytes;

        @ConfigKey(name = "maxInflightRequestsPerConnection", defaultValue = "4096",
            description = "client requests one connection may have unanswered; more are answered OVERLOADED")
        @Option(names = "--max-inflight-requests", converter = SettingConverters.IntValue.class,
            description = "unanswered client requests per connection before OVERLOADED (default: 4096)")
        Integer maxInflightRequests;

        @ConfigKey(name = "maxConnectionsPerAddress", defaultValue = "64",
            description = "inbound connections open at once from one IP address; more are refused and closed")
        @Option(names = "--max-connections-per-address", converter = SettingConverters.IntValue.class,
            description = "inbound connections per IP address (default: 64)")
        Integer maxConnectionsPerAddress;

        @Spec
        CommandLine.Model.CommandSpec spec;

        /** What this command brings to the settings. */
        abstract ServerConfig.CommandDefaults defaults();

        /** The flags given, typed, by config key; and which flag set each key. */
        private void collectFlags(Map<String, Object> values, Map<String, String> flags) {
            for (ServerConfig.Key k : ServerConfig.KEYS) {
                if (k.flag() == null) {
                    continue;
                }
                CommandLine.Model.OptionSpec o = spec.findOption(k.flag());
                if (o != null && o.getValue() != null) {
                    values.put(k.name(), o.getValue());
                    flags.put(k.name(), o.longestName());
                }
            }
        }

        @Override
        public Integer call() throws InterruptedException {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            Map<String, Object> values = new LinkedHashMap<>();
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
