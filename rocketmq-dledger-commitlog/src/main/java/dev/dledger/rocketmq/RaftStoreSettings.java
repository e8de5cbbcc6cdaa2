package dev.dledger.rocketmq;

import dev.dledger.raft.config.Peers;
import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.store.StoreConfig;
import dev.dledger.raft.transport.TlsSettings;
import dev.dledger.raft.transport.TransportOptions;
import java.io.File;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Pattern;
import org.apache.rocketmq.store.config.FlushDiskType;
import org.apache.rocketmq.store.config.MessageStoreConfig;

/**
 * What a broker's Raft commit log needs to know, read from {@code broker.conf} with stock RocketMQ's DLedger keys and
 * a few of ours.
 *
 * <p>Stock keys (same meaning as in stock DLedger mode): {@code dLegerGroup} (the Raft group, advised equal to
 * {@code brokerName}), {@code dLegerPeers} ({@code n0-host:port;n1-host:port;...}, identical on every node),
 * {@code dLegerSelfId} (this node, one of the peers, {@code n<digits>}), {@code preferredLeaderId} (optional: the
 * node that should lead when it is caught up), {@code storePathRootDir} (the log lives in
 * {@code ${storePathRootDir}/dledger-${dLegerSelfId}/data} and {@code .../index}, where stock DLedger mode keeps it),
 * {@code storePathDLedgerCommitLog} (optional: the data folder, which must then be that same path),
 * {@code mappedFileSizeCommitLog} (the data file size, default 1 GiB, as stock).
 *
 * <p>Our keys: {@code raftFlushMode} ({@code sync}: an entry counts toward the quorum only once fsynced, or
 * {@code async}; when it is not given, stock {@code flushDiskType} decides: {@code SYNC_FLUSH} gives {@code sync},
 * {@code ASYNC_FLUSH}, stock's default, gives {@code async}; given, it wins), {@code raftAppendTimeoutMs} (how long
 * a put waits for a quorum before it answers {@code IN_SYNC_REPLICAS_NOT_ENOUGH}; default 3000),
 * {@code raftElectionTimeoutMs} (default 300; a dead leader is replaced after one to two of these),
 * {@code raftTickMs} (default 10), {@code raftSecret} (the secret every node of the group shares, at least 16
 * characters: nodes prove it to each other when they connect; default none, then peers are not authenticated, as
 * in stock DLedger, and the start logs a WARN), {@code raftTlsKeyStore} and
 * {@code raftTlsKeyStorePassword} (a PKCS12 or JKS file with this node's key and certificate: mutual TLS between the
 * nodes; default none), {@code raftTlsTrustStore} and {@code raftTlsTrustStorePassword} (the certificates to trust;
 * default the JDK's), {@code raftAdminToken} (default none; at least 8 characters, needs {@code raftSecret}: a client
 * that proves it, e.g. {@code dledger-cli --token}, may run the admin commands on this broker's Raft port: status,
 * leadership transfer, member add/remove), {@code raftMetricsPort} (default 0 = off: the port of an HTTP server that
 * serves this broker's Raft metrics at {@code /metrics} in the Prometheus text format), {@code raftJoin} (default
 * false; true for a broker being added to a running group: with an empty log it starts as no voter, never campaigns,
 * and waits until {@code dledger-cli member add} on the group's leader catches it up and makes it a voter; ignored
 * once its log holds the group's membership), {@code raftWitnessPeers} (default none: the ids of {@code dLegerPeers}
 * that are witnesses, comma-separated, identical on every node of the group; issue 19: a witness votes and
 * acknowledges but keeps entry bodies only until both data members hold them, so two data brokers and one witness
 * keep a three-replica group's guarantees on two full disks; the data members must outnumber the witnesses),
 * {@code raftWitness} (default false; true on the witness broker itself, which must be listed in
 * {@code raftWitnessPeers}: it runs the Raft node only, see {@link RaftWitness}).
 *
 * <p>Membership: {@code dLegerPeers} is the group as this broker was configured. Once the group changed its members
 * ({@code dledger-cli member add/remove}), the membership committed in the Raft log, with each member's address, wins
 * over {@code dLegerPeers} at every start: which peers are talked to, and which are admitted on the Raft port. The
 * file is never rewritten; a start where they disagree logs one line saying so.
 *
 * <p>Who this broker's Raft port serves ({@link #transportOptions()}): peer connections from the hosts of
 * {@code dLegerPeers} only (a loopback peer admits loopback only), which with {@code raftSecret} must also prove it;
 * no client request at all, unless {@code raftAdminToken} is set: then the admin requests of a client that proves it.
 * Appending or reading entries is never served: only the broker itself writes its log.
 *
 * @param group             the Raft group
 * @param selfId            this node's id
 * @param peers             every member's Raft address, in the configured order
 * @param preferredLeader   the preferred leader, or null
 * @param dir               the folder holding {@code data/}, {@code index/} and the term/vote and checkpoint files
 * @param dataStorePaths    the data folders of {@code storePathDLedgerCommitLog}, empty for {@code dir/data} (one also
 *                          listed read-only is read-only)
 * @param readOnlyDataStoreDirs the read-only data folders, empty for none
 * @param dataFileSizeBytes size of one data file
 * @param flush             flush mode
 * @param appendTimeoutMs   quorum wait of a put, in ms
 * @param electionTimeoutMs election timeout, in ms
 * @param tickMs            length of a Raft tick, in ms
 * @param secret            the group secret, or null
 * @param tls               mutual TLS between the nodes, or null
 * @param adminToken        the admin token of the Raft port, or null (admin requests refused)
 * @param metricsPort       the port of the Raft metrics' HTTP server, 0 for none
 * @param join              whether this broker joins a running group as a new member ({@code raftJoin})
 * @param witnesses         the peers that are witnesses ({@code raftWitnessPeers}), empty for none
 * @param witness           whether this broker is a witness ({@code raftWitness}): the Raft node only
 */
public record RaftStoreSettings(String group, String selfId, Map<String, InetSocketAddress> peers, String preferredLeader,
                                Path dir, List<Path> dataStorePaths, List<Path> readOnlyDataStoreDirs,
                                int dataFileSizeBytes, FlushMode flush, long appendTimeoutMs, int electionTimeoutMs,
                                int tickMs, String secret, TlsSettings tls, String adminToken, int metricsPort,
                                boolean join, List<String> witnesses, boolean witness) {

    public RaftStoreSettings {
        dataStorePaths = List.copyOf(dataStorePaths);
        readOnlyDataStoreDirs = List.copyOf(readOnlyDataStoreDirs);
        witnesses = List.copyOf(witnesses);
    }

    /** The smallest data file the store takes ({@link StoreConfig}). */
    private static final int MIN_DATA_FILE_BYTES = 4096;

    /** Our own keys, with their defaults ({@code raftFlushMode}'s follows {@code flushDiskType}, see {@link #flushMode}). */
    public static final Map<String, String> OWN_KEYS = Map.ofEntries(
        Map.entry("raftFlushMode", "async"),
        Map.entry("raftAppendTimeoutMs", "3000"),
        Map.entry("raftElectionTimeoutMs", "300"),
        Map.entry("raftTickMs", "10"),
        Map.entry("raftSecret", ""),
        Map.entry("raftTlsKeyStore", ""),
        Map.entry("raftTlsKeyStorePassword", ""),
        Map.entry("raftTlsTrustStore", ""),
        Map.entry("raftTlsTrustStorePassword", ""),
        Map.entry("raftAdminToken", ""),
        Map.entry("raftMetricsPort", "0"),
        Map.entry("raftJoin", "false"),
        Map.entry("raftWitnessPeers", ""),
        Map.entry("raftWitness", "false"));

    /**
     * The transport's settings: the default limits, the secret and TLS when set, and who the port serves: peer frames
     * from the peers' hosts only, always; with a secret, peers also prove it. Client requests: none, or with an admin
     * token the admin requests of a client that proves it (then clients may connect from any host).
     */
    public TransportOptions transportOptions() {
        TransportOptions o = TransportOptions.defaults().withGroupSecret(secret).withTls(tls)
            .withPeerHostsOnly(true);
        if (adminToken != null) {
            return o.withClientToken(adminToken).withClientApi(TransportOptions.ClientApi.ADMIN);
        }
        return o.withClientApi(TransportOptions.ClientApi.OFF);
    }

    /**
     * The number of this node's id ({@code n3} gives 3): brokerId of a follower is this plus one. It is the position
     * among the peers in the usual {@code n0;n1;n2} order, and it stays unique and stable when members are added or
     * removed (a new {@code n3} is brokerId 4, whatever its {@code dLegerPeers} lists).
     */
    public int selfIndex() {
        return Integer.parseInt(selfId.substring(1));
    }

    /** Every folder a data file may be in: the writable ones ({@code dir/data} by default), then the read-only ones. */
    public List<Path> dataFolders() {
        List<Path> out = new ArrayList<>(dataStorePaths.isEmpty() ? List.of(dir.resolve("data")) : dataStorePaths);
        out.addAll(readOnlyDataStoreDirs);
        return List.copyOf(new LinkedHashSet<>(out));
    }

    /** The log's layout: data file size, data folders (the index file size is read off the store, or DLedger's). */
    public StoreConfig storeConfig() {
        return StoreConfig.defaults().withFileSizes(dataFileSizeBytes, StoreConfig.defaults().indexFileSizeBytes())
            .withDataStorePaths(dataStorePaths).withReadOnlyDataStoreDirs(readOnlyDataStoreDirs);
    }

    /** This node's Raft address. */
    public InetSocketAddress selfAddress() {
        return peers.get(selfId);
    }

    /**
     * Reads the settings and checks them.
     *
     * @throws IllegalArgumentException naming the key that is wrong and why
     */
    public static RaftStoreSettings from(MessageStoreConfig msc, Properties props) {
        String group = require("dLegerGroup", msc.getdLegerGroup());
        String selfId = require("dLegerSelfId", msc.getdLegerSelfId());
        Map<String, InetSocketAddress> peers;
        try {
            peers = Peers.parse(require("dLegerPeers", msc.getdLegerPeers()));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("dLegerPeers: " + e.getMessage(), e);
        }
        if (!peers.containsKey(selfId)) {
            throw new IllegalArgumentException("dLegerSelfId=" + selfId + " is not among dLegerPeers " + peers.keySet());
        }
        if (!selfId.matches("n\\d{1,6}")) {
            throw new IllegalArgumentException("dLegerSelfId=" + selfId + " must look like n0, n1, n2 (as stock RocketMQ "
                + "requires)");
        }
        String preferred = blankToNull(msc.getPreferredLeaderId());
        if (preferred != null && !peers.containsKey(preferred)) {
            throw new IllegalArgumentException("preferredLeaderId=" + preferred + " is not among dLegerPeers "
                + peers.keySet());
        }
        Path dir = path("storePathRootDir", msc.getStorePathRootDir()).resolve("dledger-" + selfId);
        if (msc.getMappedFileSizeCommitLog() < MIN_DATA_FILE_BYTES) {
            throw new IllegalArgumentException("mappedFileSizeCommitLog=" + msc.getMappedFileSizeCommitLog()
                + " must be at least " + MIN_DATA_FILE_BYTES + " bytes");
        }
        List<Path> dataPaths = paths("storePathDLedgerCommitLog", msc.getStorePathDLedgerCommitLog());
        List<Path> readOnly = paths("readOnlyCommitLogStorePaths", msc.getReadOnlyCommitLogStorePaths());
        for (Path p : readOnly) {
            if (!Files.isDirectory(p)) {
                throw new IllegalArgumentException("readOnlyCommitLogStorePaths=" + msc.getReadOnlyCommitLogStorePaths()
                    + ": folder " + p + " does not exist");
            }
        }
        List<Path> writable = new ArrayList<>(dataPaths.isEmpty()
            ? List.of(dir.resolve("data").toAbsolutePath().normalize()) : dataPaths);
        writable.removeAll(readOnly);
        if (writable.isEmpty()) {
            throw new IllegalArgumentException("storePathDLedgerCommitLog=" + msc.getStorePathDLedgerCommitLog()
                + ": every data folder is also in readOnlyCommitLogStorePaths; new entries need a writable one");
        }
        FlushMode flush = flushMode(msc, props);
        long appendTimeoutMs = positive(props, "raftAppendTimeoutMs", 3_600_000);
        int electionTimeoutMs = (int) positive(props, "raftElectionTimeoutMs", 600_000);
        int tickMs = (int) positive(props, "raftTickMs", 1000);
        if (electionTimeoutMs < 4 * tickMs) {
            throw new IllegalArgumentException("raftElectionTimeoutMs=" + electionTimeoutMs
                + " must be at least 4 ticks (raftTickMs=" + tickMs + ")");
        }
        String secret = blankToNull(own(props, "raftSecret"));
        if (secret != null && secret.length() < TransportOptions.MIN_SECRET_CHARS) {
            throw new IllegalArgumentException("raftSecret has " + secret.length() + " characters; use at least "
                + TransportOptions.MIN_SECRET_CHARS + " (a random string, the same on every node of the group)");
        }
        String adminToken = blankToNull(own(props, "raftAdminToken"));
        if (adminToken != null && secret == null) {
            throw new IllegalArgumentException("raftAdminToken is set without raftSecret: the admin commands are served "
                + "only on a port whose peers prove the group secret; set raftSecret on every node too");
        }
        if (adminToken != null && adminToken.length() < TransportOptions.MIN_TOKEN_CHARS) {
            throw new IllegalArgumentException("raftAdminToken has " + adminToken.length() + " characters; use at least "
                + TransportOptions.MIN_TOKEN_CHARS);
        }
        int metricsPort = portOrOff(props, "raftMetricsPort");
        String join = own(props, "raftJoin").toLowerCase(Locale.ROOT);
        if (!join.equals("true") && !join.equals("false")) {
            throw new IllegalArgumentException("raftJoin=" + join + " must be true or false");
        }
        List<String> witnesses = witnesses(own(props, "raftWitnessPeers"), peers);
        String witness = own(props, "raftWitness").toLowerCase(Locale.ROOT);
        if (!witness.equals("true") && !witness.equals("false")) {
            throw new IllegalArgumentException("raftWitness=" + witness + " must be true or false");
        }
        if (witness.equals("true") != witnesses.contains(selfId)) {
            throw new IllegalArgumentException("raftWitness=" + witness + " but raftWitnessPeers=" + witnesses
                + (witnesses.contains(selfId) ? " lists " : " does not list ") + "dLegerSelfId=" + selfId
                + "; a witness broker sets raftWitness=true, and every broker of the group lists it in raftWitnessPeers");
        }
        if (preferred != null && witnesses.contains(preferred)) {
            throw new IllegalArgumentException("preferredLeaderId=" + preferred + " is a witness (raftWitnessPeers); a "
                + "witness never leads for clients");
        }
        return new RaftStoreSettings(group, selfId, Collections.unmodifiableMap(peers), preferred, dir, dataPaths,
            readOnly, msc.getMappedFileSizeCommitLog(), flush, appendTimeoutMs, electionTimeoutMs, tickMs, secret,
            tls(props), adminToken, metricsPort, join.equals("true"), witnesses, witness.equals("true"));
    }

    /**
     * The ids of {@code raftWitnessPeers}: comma-separated, each among the peers, the data members (the other peers)
     * more than the witnesses.
     */
    private static List<String> witnesses(String value, Map<String, InetSocketAddress> peers) {
        List<String> out = new ArrayList<>();
        if (value == null || value.isBlank()) {
            return out;
        }
        for (String id : value.split(",", -1)) {
            String w = id.trim();
            if (!peers.containsKey(w)) {
                throw new IllegalArgumentException("raftWitnessPeers=" + value + ": '" + w + "' is not among dLegerPeers "
                    + peers.keySet());
            }
            if (!out.contains(w)) {
                out.add(w);
            }
        }
        if (peers.size() - out.size() <= out.size()) {
            throw new IllegalArgumentException("raftWitnessPeers=" + value + " leaves " + (peers.size() - out.size())
                + " data members for " + out.size() + " witnesses; the data members must outnumber the witnesses");
        }
        return out;
    }

    /**
     * The Raft log's flush mode: {@code raftFlushMode} when it is given; else stock {@code flushDiskType}'s meaning,
     * {@code SYNC_FLUSH} giving {@code sync} (an entry is fsynced before it counts toward the quorum, so before the
     * send is acknowledged) and {@code ASYNC_FLUSH} (stock's default) giving {@code async}.
     */
    static FlushMode flushMode(MessageStoreConfig msc, Properties props) {
        String given = props == null ? null : blankToNull(props.getProperty("raftFlushMode"));
        if (given == null) {
            return msc.getFlushDiskType() == FlushDiskType.SYNC_FLUSH ? FlushMode.SYNC : FlushMode.ASYNC;
        }
        return switch (given.toLowerCase(Locale.ROOT)) {
            case "async" -> FlushMode.ASYNC;
            case "sync" -> FlushMode.SYNC;
            default -> throw new IllegalArgumentException("raftFlushMode=" + given + " must be sync or async");
        };
    }

    private static TlsSettings tls(Properties props) {
        String keyStore = blankToNull(own(props, "raftTlsKeyStore"));
        String trustStore = blankToNull(own(props, "raftTlsTrustStore"));
        if (keyStore == null) {
            if (trustStore != null) {
                throw new IllegalArgumentException("raftTlsTrustStore is set but raftTlsKeyStore is not; mutual TLS "
                    + "needs this node's certificate in raftTlsKeyStore");
            }
            return null;
        }
        String password = blankToNull(own(props, "raftTlsKeyStorePassword"));
        if (password == null) {
            throw new IllegalArgumentException("raftTlsKeyStore is set without raftTlsKeyStorePassword");
        }
        TlsSettings tls = new TlsSettings(path("raftTlsKeyStore", keyStore), password,
            trustStore == null ? null : path("raftTlsTrustStore", trustStore),
            blankToNull(own(props, "raftTlsTrustStorePassword")));
        try {
            tls.serverContext();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("raftTlsKeyStore/raftTlsTrustStore: " + e.getMessage(), e);
        }
        return tls;
    }

    /**
     * Splits a folder list as stock RocketMQ does ({@link MessageStoreConfig#MULTI_PATH_SPLITTER}); blanks around a
     * folder are ignored, an empty one is refused naming {@code key}. Null or blank gives none.
     */
    private static List<Path> paths(String key, String value) {
        List<Path> out = new ArrayList<>();
        if (value == null || value.isBlank()) {
            return out;
        }
        for (String p : value.trim().split(Pattern.quote(MessageStoreConfig.MULTI_PATH_SPLITTER), -1)) {
            if (p.isBlank()) {
                throw new IllegalArgumentException(key + "=" + value + " has an empty folder (folders are separated by \""
                    + MessageStoreConfig.MULTI_PATH_SPLITTER + "\")");
            }
            Path path = path(key, p.trim()).toAbsolutePath().normalize();
            if (!out.contains(path)) {
                out.add(path);
            }
        }
        return out;
    }

    /**
     * {@code value} of {@code key} as a path.
     *
     * @throws IllegalArgumentException naming the key when it is not one (a NUL in it)
     */
    private static Path path(String key, String value) {
        try {
            return Path.of(value);
        } catch (InvalidPathException e) {
            throw new IllegalArgumentException(key + "=" + value + " is not a path: " + e.getReason(), e);
        }
    }

    private static String require(String key, String value) {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException(key + " is missing: a Raft commit log needs it");
        }
        return value.trim();
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.trim();
    }

    private static String own(Properties props, String key) {
        String v = props == null ? null : props.getProperty(key);
        return v == null || v.isBlank() ? OWN_KEYS.get(key) : v.trim();
    }

    /** A TCP port in {@code [0, 65535]}, 0 for off. */
    private static int portOrOff(Properties props, String key) {
        String v = own(props, key);
        try {
            int n = Integer.parseInt(v);
            if (n < 0 || n > 65535) {
                throw new IllegalArgumentException(key + "=" + v + " is not a port (0 for off, up to 65535)");
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + "=" + v + " is not a number (a port, 0 for off)");
        }
    }

    /** A whole number in {@code [1, max]}; the limits keep the int settings from wrapping around. */
    private static long positive(Properties props, String key, long max) {
        String v = own(props, key);
        try {
            long n = Long.parseLong(v);
            if (n <= 0) {
                throw new IllegalArgumentException(key + "=" + v + " must be positive");
            }
            if (n > max) {
                throw new IllegalArgumentException(key + "=" + v + " is more than " + max);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(key + "=" + v + " is not a number");
        }
    }

    @Override
    public String toString() {
        return "raft group " + group + ", self " + selfId + ", peers " + peers + ", dir " + dir + File.separator
            + (dataStorePaths.isEmpty() ? "" : ", data folders " + dataStorePaths)
            + (readOnlyDataStoreDirs.isEmpty() ? "" : ", read-only data folders " + readOnlyDataStoreDirs)
            + ", flush " + flush + ", append timeout " + appendTimeoutMs + " ms, election timeout "
            + electionTimeoutMs + " ms, peers " + (secret == null ? "from their hosts only, not authenticated"
            : "authenticated by secret") + ", admin requests " + (adminToken == null ? "off" : "with the admin token")
            + (tls == null ? "" : ", " + tls) + (metricsPort == 0 ? "" : ", metrics on port " + metricsPort)
            + (join ? ", joining a running group" : "") + (witnesses.isEmpty() ? "" : ", witnesses " + witnesses)
            + (witness ? ", this broker is a witness (raft node only)" : "");
    }
}
