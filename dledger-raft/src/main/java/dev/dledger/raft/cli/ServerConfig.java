package dev.dledger.raft.cli;

import dev.dledger.raft.config.Peers;
import dev.dledger.raft.core.OneLine;
import dev.dledger.raft.core.RaftConfig;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.server.NodeOptions;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.TlsSettings;
import dev.dledger.raft.transport.TransportOptions;
import java.io.IOException;
import java.lang.reflect.Field;
import java.io.Reader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.TypeConversionException;

/**
 * The settings of one {@code dledger server} process, from a properties file and command-line flags (a flag wins
 * over the file). Every key is listed in {@link #KEYS} with its flag, type, default and unit, read from the typed
 * options of {@link ServerCommand.Base}; a file value is converted to its key's type by the converter of its flag,
 * and a key the file does not know is refused. Keys named like DLedger's ({@code selfId}, {@code peers}, {@code storeBaseDir},
 * {@code flushFileInterval}, {@code maxPendingRequestsNum}, {@code mappedFileSizeForEntryData}...) mean what they
 * mean there; the timeouts are ours (DLedger's default failover takes about 6 s, ours well under 1 s).
 *
 * <p>One process runs one node of each group it lists: one group by default ({@code group}, {@code selfId},
 * {@code peers}), or several with {@code groups=a,b} and per group {@code a.peers}, optionally {@code a.selfId} and
 * {@code a.preferredLeaderId}. All groups share the process's port, so this node's port must be the same in each.
 */
final class ServerConfig {

    /**
     * A setting that is wrong, as one line: what is wrong, where it came from, and what to do. A line break or other
     * control character in a value it quotes is shown escaped ({@code \n}, {@code \u0000}), so the line stays one.
     */
    static final class ConfigException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        ConfigException(String message) {
            super(OneLine.of(message));
        }
    }

    /**
     * A documented key.
     *
     * @param name         the key in the properties file
     * @param flag         the command-line flag that overrides it, or null for a file-only key
     * @param type         the type of its value: a flag is converted to it by picocli, the file's text by
     *                     {@link SettingConverters#convert} (the same converter)
     * @param defaultValue the default, as written in the file
     * @param description  what it sets, with its unit
     */
    record Key(String name, String flag, Class<?> type, String defaultValue, String description) {
    }

    /** The keys only a config file sets: the groups of a multi-group process. */
    private static final List<Key> FILE_ONLY_KEYS = List.of(
        new Key("groups", null, String.class, "(none)", "several groups in one process: names separated by commas; "
            + "then <name>.peers (required), <name>.selfId and <name>.preferredLeaderId per group"));

    /**
     * Every key of the file, in the order the documentation lists them: the typed options of
     * {@link ServerCommand.Base} with their {@link ConfigKey}, then the file-only keys.
     */
    static final List<Key> KEYS = keys();

    private static List<Key> keys() {
        List<Key> out = new ArrayList<>();
        for (Field f : ServerCommand.Base.class.getDeclaredFields()) {
            ConfigKey k = f.getAnnotation(ConfigKey.class);
            if (k == null) {
                continue;
            }
            CommandLine.Option o = f.getAnnotation(CommandLine.Option.class);
            if (o == null) {
                throw new IllegalStateException("config key " + k.name() + " has no command-line option");
            }
            String flag = Arrays.stream(o.names()).max(Comparator.comparingInt(String::length)).orElseThrow();
            out.add(new Key(k.name(), flag, f.getType(), k.defaultValue(), k.description()));
        }
        out.addAll(FILE_ONLY_KEYS);
        return List.copyOf(out);
    }

    private static final Set<String> GROUP_KEYS = Set.of("peers", "selfId", "preferredLeaderId");
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.]{1,64}");
    private static final Pattern GROUP_NAME = Pattern.compile("[A-Za-z0-9_-]{1,64}");

    /**
     * One group this process serves.
     *
     * @param group           the group's name
     * @param selfId          this node's id in it
     * @param peers           every voter by id, in the order given
     * @param nodeDir         the node's store folder
     * @param preferredLeader the id that should lead, or null
     */
    record GroupSpec(String group, String selfId, Map<String, InetSocketAddress> peers, Path nodeDir,
                     String preferredLeader) {

        /** This node's port, from peers. */
        int port() {
            return peers.get(selfId).getPort();
        }
    }

    /** The defaults a subcommand brings: appender and register start a one-node group when no peers are given. */
    record CommandDefaults(String command, boolean singleNodeDefault, String stateMachine) {
    }

    final List<GroupSpec> groups;
    final String stateMachine;
    final FlushMode flush;
    final long flushIntervalMs;
    final int tickMs;
    final int electionTimeoutMs;
    final int heartbeatIntervalMs;
    final long appendTimeoutMs;
    final int maxPending;
    final long snapshotThreshold;
    final String bindAddress;
    final int metricsPort;
    final StoreConfig storeConfig;
    final TransportOptions transportOptions;

    /** Key to value, each of its key's type (a group's keys: text). */
    private final Map<String, Object> values;
    private final Map<String, String> origins;

    private ServerConfig(Map<String, Object> given, Map<String, String> origins, CommandDefaults defaults) {
        this.origins = origins;
        this.values = typed(given);
        Object kind = values.get("stateMachine");
        this.stateMachine = kind instanceof SettingConverters.StateMachineKind k ? k.text()
            : new SettingConverters.StateMachineValue().convert(defaults.stateMachine()).text();
        this.flush = values.get("flush") instanceof FlushMode m ? m : FlushMode.ASYNC;
        this.flushIntervalMs = number("flushFileInterval", 10, 1, 60_000);
        this.tickMs = (int) number("tickMs", 10, 1, 1000);
        this.electionTimeoutMs = (int) number("electionTimeoutMs", 300, 2L * tickMs, 600_000);
        this.heartbeatIntervalMs = (int) number("heartbeatIntervalMs", 30, tickMs, 600_000);
        if (heartbeatIntervalMs / tickMs >= electionTimeoutMs / tickMs) {
            throw bad("heartbeatIntervalMs", "is " + heartbeatIntervalMs + " ms, not below electionTimeoutMs "
                + electionTimeoutMs + " ms; lower it (a tenth of the election timeout is usual)");
        }
        this.appendTimeoutMs = number("appendTimeoutMs", 3000, 1, 3_600_000);
        this.maxPending = (int) number("maxPendingRequestsNum", 10_000, 1, 10_000_000);
        this.snapshotThreshold = number("snapshotThreshold", 0, 0, Long.MAX_VALUE);
        this.bindAddress = get("bindAddress", "0.0.0.0");
        this.metricsPort = (int) number("metricsPort", -1, -1, 65535);
        StoreConfig d = StoreConfig.defaults();
        long data = number("mappedFileSizeForEntryData", d.dataFileSizeBytes(), 4096, Integer.MAX_VALUE);
        long index = number("mappedFileSizeForEntryIndex", d.indexFileSizeBytes(), 32, Integer.MAX_VALUE);
        if (index % 32 != 0) {
            throw bad("mappedFileSizeForEntryIndex", "is " + index + ", not a multiple of 32 (the index unit)");
        }
        this.storeConfig = d.withFileSizes((int) data, (int) index);
        this.transportOptions = transportOptions();
        this.groups = List.copyOf(groups(defaults));
    }

    /**
     * Reads the settings.
     *
     * @param file     the properties file, or null
     * @param flags    key to value of the flags given on the command line (they win over the file): of the key's
     *                 type as picocli converted it, or text to convert as the file's
     * @param flagName key to the flag that set it, for error messages
     * @param defaults what the subcommand brings
     * @throws ConfigException naming the key, where it came from and what to do
     */
    static ServerConfig load(Path file, Map<String, ?> flags, Map<String, String> flagName,
                             CommandDefaults defaults) {
        Map<String, Object> values = new LinkedHashMap<>();
        Map<String, String> origins = new LinkedHashMap<>();
        if (file != null) {
            Properties p = readFile(file);
            String groupList = p.getProperty("groups", "");
            Set<String> declared = splitGroups(groupList);
            for (String key : p.stringPropertyNames()) {
                if (!isKnown(key, declared)) {
                    throw new ConfigException("unknown key '" + key + "' in " + file + "; the keys are "
                        + KEYS.stream().map(Key::name).collect(Collectors.joining(", "))
                        + " (see dledger server --help)");
                }
                values.put(key, p.getProperty(key).trim());
                origins.put(key, "in " + file);
            }
        }
        for (Map.Entry<String, ?> f : flags.entrySet()) {
            values.put(f.getKey(), f.getValue() instanceof String text ? text.trim() : f.getValue());
            origins.put(f.getKey(), flagName.getOrDefault(f.getKey(), f.getKey()));
        }
        return new ServerConfig(values, origins, defaults);
    }

    private static Properties readFile(Path file) {
        if (Files.isDirectory(file)) {
            throw new ConfigException("config file " + file + " is a folder; give the path of a .properties file");
        }
        if (!Files.exists(file)) {
            throw new ConfigException("config file " + file + " does not exist; check the path given to --config");
        }
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            p.load(r);
        } catch (IOException | IllegalArgumentException e) {
            throw new ConfigException("cannot read config file " + file + ": " + e.getMessage()
                + "; it must be a properties file (key=value per line, UTF-8)");
        }
        return p;
    }

    private static Set<String> splitGroups(String list) {
        Set<String> out = new LinkedHashSet<>();
        for (String g : list.split(",")) {
            if (!g.isBlank()) {
                out.add(g.trim());
            }
        }
        return out;
    }

    private static boolean isKnown(String key, Set<String> groups) {
        if (KEYS.stream().anyMatch(k -> k.name().equals(key))) {
            return true;
        }
        int dot = key.lastIndexOf('.');
        return dot > 0 && groups.contains(key.substring(0, dot)) && GROUP_KEYS.contains(key.substring(dot + 1));
    }

    private List<GroupSpec> groups(CommandDefaults defaults) {
        Path base = path("storeBaseDir", "/tmp/dledgerstore");
        Set<String> names = splitGroups(get("groups", ""));
        List<GroupSpec> out = new ArrayList<>();
        if (names.isEmpty()) {
            String group = get("group", "default");
            checkName("group", group, GROUP_NAME);
            String self = text("selfId");
            String peers = text("peers");
            if (self == null && defaults.singleNodeDefault()) {
                self = peers == null ? "n0" : null;
            }
            if (self == null) {
                throw new ConfigException("this node's id is missing; give --id (or selfId in the config file), one "
                    + "of the ids in --peers");
            }
            checkName("selfId", self, NAME);
            if (peers == null && defaults.singleNodeDefault()) {
                peers = self + "-localhost:20911";
            }
            if (peers == null) {
                throw new ConfigException("the group's nodes are missing; give --peers n0-host:port;n1-host:port;... "
                    + "(or peers in the config file)");
            }
            out.add(group(group, self, "peers", peers, base.resolve("dledger-" + self), get("preferredLeaderId", null)));
            return out;
        }
        for (String flag : List.of("group", "peers")) {
            if (values.containsKey(flag)) {
                throw bad(flag, "sets one group, but groups=" + names + " lists several; set <group>." + flag
                    + " per group in the config file instead");
            }
        }
        Integer port = null;
        String firstGroup = null;
        for (String g : names) {
            checkName("groups", g, GROUP_NAME);
            String self = get(g + ".selfId", text("selfId"));
            if (self == null) {
                throw new ConfigException("this node's id in group " + g + " is missing; set " + g + ".selfId or selfId"
                    + " in the config file, or give --id");
            }
            checkName(g + ".selfId", self, NAME);
            String peers = text(g + ".peers");
            if (peers == null) {
                throw new ConfigException("group " + g + " has no peers; set " + g + ".peers=n0-host:port;... "
                    + originOf("groups"));
            }
            GroupSpec spec = group(g, self, g + ".peers", peers, base.resolve(g).resolve("dledger-" + self),
                get(g + ".preferredLeaderId", get("preferredLeaderId", null)));
            if (port != null && spec.port() != port) {
                throw bad(g + ".peers", "puts this node (" + self + ") on port " + spec.port() + " but group "
                    + firstGroup + " puts it on " + port + "; one process listens on one port, use the same in every "
                    + "group");
            }
            port = spec.port();
            firstGroup = g;
            out.add(spec);
        }
        return out;
    }

    private GroupSpec group(String group, String self, String peersKey, String peerList, Path nodeDir,
                            String preferred) {
        Map<String, InetSocketAddress> peers;
        try {
            peers = Peers.parse(peerList);
        } catch (IllegalArgumentException e) {
            throw bad(peersKey, "is malformed: " + e.getMessage());
        }
        for (String id : peers.keySet()) {
            checkName(peersKey, id, NAME);
        }
        if (!peers.containsKey(self)) {
            throw new ConfigException("self id '" + self + "' is not in " + peersKey + " " + peers.keySet() + " "
                + originOf(peersKey) + "; give --id one of " + peers.keySet() + " or add " + self + " to the peers");
        }
        checkPorts(peersKey, peers);
        if (preferred != null && !peers.containsKey(preferred)) {
            throw bad("preferredLeaderId", "is '" + preferred + "', not one of the peers " + peers.keySet());
        }
        return new GroupSpec(group, self, peers, nodeDir, preferred);
    }

    /** Two nodes on one machine cannot share a port: refuse peers that would. */
    private void checkPorts(String peersKey, Map<String, InetSocketAddress> peers) {
        List<Map.Entry<String, InetSocketAddress>> list = new ArrayList<>(peers.entrySet());
        for (int i = 0; i < list.size(); i++) {
            for (int j = i + 1; j < list.size(); j++) {
                InetSocketAddress a = list.get(i).getValue();
                InetSocketAddress b = list.get(j).getValue();
                if (a.getPort() == b.getPort() && sameMachine(a, b)) {
                    throw bad(peersKey, "gives " + list.get(i).getKey() + " and " + list.get(j).getKey()
                        + " the same port " + a.getPort() + " on one machine (" + a.getHostString() + ", "
                        + b.getHostString() + "); give each node its own port");
                }
            }
        }
    }

    private static boolean sameMachine(InetSocketAddress a, InetSocketAddress b) {
        if (a.getHostString().equalsIgnoreCase(b.getHostString())) {
            return true;
        }
        if (a.isUnresolved() || b.isUnresolved()) {
            return false;
        }
        return a.getAddress().equals(b.getAddress()) || (isLocal(a.getAddress()) && isLocal(b.getAddress()));
    }

    private static boolean isLocal(InetAddress address) {
        if (address.isLoopbackAddress() || address.isAnyLocalAddress()) {
            return true;
        }
        try {
            return NetworkInterface.getByInetAddress(address) != null;
        } catch (SocketException e) {
            return false;
        }
    }

    /** The transport's settings: two I/O threads, the limits, and the secret, token and TLS when set. */
    private TransportOptions transportOptions() {
        int frame = (int) number("maxFrameBytes", TransportOptions.DEFAULT_MAX_FRAME_BYTES, 1024, Integer.MAX_VALUE - 8);
        int inflight = (int) number("maxInflightRequestsPerConnection", TransportOptions.DEFAULT_MAX_INFLIGHT_REQUESTS,
            1, 1_000_000);
        int connections = (int) number("maxConnectionsPerAddress",
            TransportOptions.DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, 1, 100_000);
        String secret = get("secret", null);
        if (secret != null && secret.length() < TransportOptions.MIN_SECRET_CHARS) {
            throw bad("secret", "has " + secret.length() + " characters; use at least "
                + TransportOptions.MIN_SECRET_CHARS + " (a random string, the same on every node)");
        }
        String token = get("clientToken", null);
        if (token != null && token.length() < TransportOptions.MIN_TOKEN_CHARS) {
            throw bad("clientToken", "has " + token.length() + " characters; use at least "
                + TransportOptions.MIN_TOKEN_CHARS);
        }
        return TransportOptions.defaults().withIoThreads(2).withLimits(frame, inflight, connections)
            .withGroupSecret(secret).withClientToken(token).withTls(tls());
    }

    private TlsSettings tls() {
        String keyStore = get("tlsKeyStore", null);
        String trustStore = get("tlsTrustStore", null);
        if (keyStore == null) {
            if (trustStore != null) {
                throw bad("tlsTrustStore", "is set but tlsKeyStore is not; mutual TLS needs this node's certificate "
                    + "in tlsKeyStore");
            }
            return null;
        }
        String password = get("tlsKeyStorePassword", null);
        if (password == null) {
            throw bad("tlsKeyStore", "is set without tlsKeyStorePassword; give the store's password");
        }
        for (String key : List.of("tlsKeyStore", "tlsTrustStore")) {
            Path file = path(key, null);
            if (file != null && !Files.isRegularFile(file)) {
                throw bad(key, "is " + file + ", not a file; give the path of a PKCS12 or JKS store");
            }
        }
        TlsSettings tls = new TlsSettings(path("tlsKeyStore", null), password, path("tlsTrustStore", null),
            get("tlsTrustStorePassword", null));
        try {
            tls.serverContext();
        } catch (IllegalArgumentException e) {
            throw bad("tlsKeyStore", "cannot be used: " + e.getMessage());
        }
        return tls;
    }

    /** The node options of one group. */
    NodeOptions nodeOptions(GroupSpec g) {
        RaftConfig raft = RaftConfig.defaults(g.selfId())
            .withTimeouts(electionTimeoutMs / tickMs, heartbeatIntervalMs / tickMs)
            .withPreferredLeader(g.preferredLeader());
        NodeOptions d = NodeOptions.defaults(g.group(), g.selfId());
        return new NodeOptions(g.group(), raft, tickMs, flush, appendTimeoutMs, maxPending, d.maxQueuedInputs(),
            snapshotThreshold, d.snapshotChunkBytes(), d.randomSeed());
    }

    /**
     * The values with each key's text converted to the key's type, by the converter its flag uses; a value picocli
     * converted already stays. Empty text of a typed key counts as not given (its default applies).
     *
     * @throws ConfigException naming the key and where it came from when the text does not convert
     */
    private Map<String, Object> typed(Map<String, Object> given) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : given.entrySet()) {
            Class<?> type = typeOf(e.getKey());
            Object v = e.getValue();
            if (v instanceof String text && type != String.class) {
                if (text.isEmpty()) {
                    continue;
                }
                try {
                    v = SettingConverters.convert(type, text);
                } catch (TypeConversionException ex) {
                    throw bad(e.getKey(), ex.getMessage());
                }
            }
            if (!type.isInstance(v)) {
                throw new IllegalArgumentException("setting " + e.getKey() + " is a " + v.getClass().getName()
                    + ", not a " + type.getName());
            }
            out.put(e.getKey(), v);
        }
        return out;
    }

    /** The type of a key's value; a group's own keys ({@code a.peers}) and unknown ones are text. */
    private static Class<?> typeOf(String key) {
        for (Key k : KEYS) {
            if (k.name().equals(key)) {
                return k.type();
            }
        }
        return String.class;
    }

    /** The text under {@code key} as given (possibly empty), or null. */
    private String text(String key) {
        Object v = values.get(key);
        return v == null ? null : v.toString();
    }

    private String get(String key, String fallback) {
        Object v = values.get(key);
        return v == null || v.toString().isEmpty() ? fallback : v.toString();
    }

    /** The path under {@code key}, or {@code fallback}'s (null when that is null). */
    private Path path(String key, String fallback) {
        Object v = values.get(key);
        if (v instanceof Path p) {
            return p;
        }
        if (fallback == null) {
            return null;
        }
        try {
            return new SettingConverters.PathValue().convert(fallback);
        } catch (TypeConversionException e) {
            throw bad(key, e.getMessage());
        }
    }

    /**
     * The number under {@code key}, or {@code fallback}; either must lie in {@code [min, max]}. A default is checked too:
     * its range may depend on another setting (the heartbeat's default of 30 ms is below a tick of 43 ms).
     */
    private long number(String key, long fallback, long min, long max) {
        Object v = values.get(key);
        long n = v instanceof Number given ? given.longValue() : fallback;
        if (n < min || n > max) {
            throw bad(key, "is " + n + ", outside " + min + ".." + max);
        }
        return n;
    }

    private void checkName(String key, String name, Pattern allowed) {
        if (!allowed.matcher(name).matches()) {
            throw bad(key, "has the name '" + name + "'; use 1 to 64 letters, digits, '_'"
                + (allowed == GROUP_NAME ? " or '-'" : " or '.' (no '-': it separates id and host in peers)"));
        }
    }

    /** How a refusal names a flag: its config key and the flag ({@code tickMs (--tick-ms)}), or the flag alone. */
    static String describeFlag(String flag) {
        for (Key k : KEYS) {
            if (flag.equals(k.flag())) {
                return k.name() + " (" + flag + ")";
            }
        }
        return flag;
    }

    private ConfigException bad(String key, String what) {
        return new ConfigException(key + " " + originOf(key) + " " + what);
    }

    private String originOf(String key) {
        String o = origins.get(key);
        return o == null ? "(default)" : o.startsWith("in ") ? o : "(" + o + ")";
    }
}
