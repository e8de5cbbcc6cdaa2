package dev.dledger.raft.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.server.NodeOptions;
import dev.dledger.raft.testing.FreePorts;
import dev.dledger.raft.transport.TransportOptions;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The settings of {@code dledger server}: the file, the flags over it, the defaults of appender and register, and
 * every refusal as one line that names what is wrong and what to do, with exit code 2 and no stack trace.
 */
class ServerCommandTest {

    private static final ServerConfig.CommandDefaults SERVER = new ServerConfig.CommandDefaults("server", false, "log");

    @TempDir
    Path dir;

    private Path file(String... lines) throws Exception {
        Path f = dir.resolve("node.properties");
        Files.write(f, java.util.List.of(lines));
        return f;
    }

    /** Runs the command line; returns its stderr after checking the exit code and that it is one line. */
    private static String refused(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = DledgerCommand.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        assertEquals(2, code, "out: " + out + " err: " + err);
        String e = err.toString().strip();
        assertEquals(1, e.lines().count(), "one line: " + e);
        assertTrue(e.startsWith("error: "), e);
        assertFalse(e.contains("Exception"), "no stack trace or exception name: " + e);
        return e;
    }

    @Test
    void fileGivesEverySettingAndFlagsWinOverIt() throws Exception {
        Path f = file("# a node", "group=orders", "selfId=n1", "peers=n0-127.0.0.1:20911;n1-127.0.0.1:20912;"
            + "n2-127.0.0.1:20913", "storeBaseDir=" + dir.resolve("store"), "flush=sync", "electionTimeoutMs=500",
            "heartbeatIntervalMs=50", "tickMs=5", "appendTimeoutMs=1500", "maxPendingRequestsNum=77",
            "preferredLeaderId=n2", "snapshotThreshold=1000", "stateMachine=kv", "metricsPort=0",
            "mappedFileSizeForEntryData=65536", "mappedFileSizeForEntryIndex=3200", "flushFileInterval=20");
        ServerConfig c = ServerConfig.load(f, Map.of("electionTimeoutMs", "800", "flush", "ASYNC"),
            Map.of("electionTimeoutMs", "--election-timeout-ms", "flush", "--flush"), SERVER);
        assertEquals(1, c.groups.size());
        ServerConfig.GroupSpec g = c.groups.get(0);
        assertEquals("orders", g.group());
        assertEquals("n1", g.selfId());
        assertEquals(20912, g.port());
        assertEquals(dir.resolve("store").resolve("dledger-n1"), g.nodeDir());
        assertEquals(FlushMode.ASYNC, c.flush, "the flag wins over the file");
        assertEquals("kv", c.stateMachine);
        assertEquals(0, c.metricsPort);
        assertEquals(65536, c.storeConfig.dataFileSizeBytes());
        assertEquals(20, c.flushIntervalMs);
        NodeOptions o = c.nodeOptions(g);
        assertEquals(5, o.tickMs());
        assertEquals(160, o.raft().electionTimeoutTicks(), "800 ms from the flag at 5 ms ticks");
        assertEquals(10, o.raft().heartbeatTicks());
        assertEquals("n2", o.raft().preferredLeader());
        assertEquals(1500, o.appendTimeoutMs());
        assertEquals(77, o.maxPendingAppends());
        assertEquals(1000, o.snapshotThreshold());
    }

    @Test
    void defaultsAreTheDocumentedOnes() {
        ServerConfig c = ServerConfig.load(null, Map.of("selfId", "n0", "peers", "n0-localhost:20911"), Map.of(),
            SERVER);
        NodeOptions o = c.nodeOptions(c.groups.get(0));
        NodeOptions d = NodeOptions.defaults("default", "n0");
        assertEquals(d.raft().withPreferredLeader(null), o.raft(), "the timeouts of RaftConfig.defaults");
        assertEquals(d.tickMs(), o.tickMs());
        assertEquals(d.flush(), o.flush());
        assertEquals(d.appendTimeoutMs(), o.appendTimeoutMs());
        assertEquals(d.maxPendingAppends(), o.maxPendingAppends());
        assertEquals(Path.of("/tmp/dledgerstore/dledger-n0"), c.groups.get(0).nodeDir());
        assertEquals(-1, c.metricsPort);
        assertEquals("log", c.stateMachine);
        for (ServerConfig.Key k : ServerConfig.KEYS) {
            assertFalse(k.description().isBlank() || k.defaultValue().isBlank(), k.name() + " is documented");
        }
    }

    @Test
    void securityAndLimitKeysReachTheTransport() throws Exception {
        ServerConfig plain = ServerConfig.load(null, Map.of("selfId", "n0", "peers", "n0-localhost:20911"), Map.of(),
            SERVER);
        assertEquals(TransportOptions.defaults().withIoThreads(2), plain.transportOptions, "no security by default");
        Path f = file("selfId=n0", "peers=n0-localhost:20911", "secret=0123456789abcdef-group", "clientToken=tok-12345",
            "maxFrameBytes=1048576", "maxConnectionsPerAddress=8");
        ServerConfig c = ServerConfig.load(f, Map.of("maxInflightRequestsPerConnection", "16"),
            Map.of("maxInflightRequestsPerConnection", "--max-inflight-requests"), SERVER);
        TransportOptions o = c.transportOptions;
        assertEquals("0123456789abcdef-group", o.groupSecret());
        assertEquals("tok-12345", o.clientToken());
        assertEquals(1048576, o.maxFrameBytes());
        assertEquals(16, o.maxInflightRequestsPerConnection());
        assertEquals(8, o.maxConnectionsPerAddress());
        assertNull(o.tls());
    }

    @Test
    void badSecurityKeysAreRefusedByName() {
        String p = "n0-127.0.0.1:20911";
        String shortSecret = refused("server", "-i", "n0", "-p", p, "--secret", "short");
        assertTrue(shortSecret.contains("secret (--secret) has 5 characters; use at least 16"), shortSecret);
        String shortToken = refused("server", "-i", "n0", "-p", p, "--client-token", "abc");
        assertTrue(shortToken.contains("clientToken (--client-token) has 3 characters"), shortToken);
        String noStore = refused("server", "-i", "n0", "-p", p, "--tls-key-store", dir.resolve("none.p12").toString(),
            "--tls-key-store-password", "x");
        assertTrue(noStore.contains("tlsKeyStore (--tls-key-store) is ") && noStore.contains("not a file"), noStore);
        String noPassword = refused("server", "-i", "n0", "-p", p, "--tls-key-store", "x.p12");
        assertTrue(noPassword.contains("without tlsKeyStorePassword"), noPassword);
        String trustOnly = refused("server", "-i", "n0", "-p", p, "--tls-trust-store", "x.p12");
        assertTrue(trustOnly.contains("tlsTrustStore (--tls-trust-store) is set but tlsKeyStore is not"), trustOnly);
        String limit = refused("server", "-i", "n0", "-p", p, "--max-connections-per-address", "0");
        assertTrue(limit.contains("maxConnectionsPerAddress (--max-connections-per-address) is 0, outside"), limit);
    }

    @Test
    void appenderAndRegisterStartAOneNodeGroupByDefault() {
        ServerConfig appender = ServerConfig.load(null, Map.of(), Map.of(),
            new ServerConfig.CommandDefaults("appender", true, "log"));
        assertEquals("n0", appender.groups.get(0).selfId());
        assertEquals(20911, appender.groups.get(0).port());
        assertEquals(1, appender.groups.get(0).peers().size());
        ServerConfig register = ServerConfig.load(null, Map.of("selfId", "a"), Map.of(),
            new ServerConfig.CommandDefaults("register", true, "kv"));
        assertEquals("kv", register.stateMachine);
        assertEquals(java.util.Set.of("a"), register.groups.get(0).peers().keySet());
    }

    @Test
    void severalGroupsShareThePortAndGetAFolderEach() throws Exception {
        Path f = file("groups=g0,g1", "selfId=n0", "storeBaseDir=" + dir,
            "g0.peers=n0-127.0.0.1:30001;n1-127.0.0.1:30002", "g1.peers=n0-127.0.0.1:30001;n2-127.0.0.1:30003",
            "g1.preferredLeaderId=n2");
        ServerConfig c = ServerConfig.load(f, Map.of(), Map.of(), SERVER);
        assertEquals(2, c.groups.size());
        assertEquals(dir.resolve("g1").resolve("dledger-n0"), c.groups.get(1).nodeDir());
        assertEquals("n2", c.groups.get(1).preferredLeader());
        assertNull(c.groups.get(0).preferredLeader());

        Path other = file("groups=g0,g1", "selfId=n0", "g0.peers=n0-127.0.0.1:30001;n1-127.0.0.1:30002",
            "g1.peers=n0-127.0.0.1:30005;n2-127.0.0.1:30003");
        ServerConfig.ConfigException e = assertThrows(ServerConfig.ConfigException.class,
            () -> ServerConfig.load(other, Map.of(), Map.of(), SERVER));
        assertTrue(e.getMessage().contains("one process listens on one port"), e.getMessage());
    }

    @Test
    void unknownKeyIsRefusedNamingTheKeyAndTheFile() throws Exception {
        Path f = file("selfId=n0", "peers=n0-localhost:20911", "electionTimeout=300");
        String e = refused("server", "--config", f.toString());
        assertTrue(e.contains("unknown key 'electionTimeout'") && e.contains(f.toString()), e);
        Path g = file("groups=a", "b.peers=n0-localhost:1");
        assertTrue(refused("server", "-c", g.toString()).contains("unknown key 'b.peers'"));
    }

    @Test
    void selfIdNotInPeersSaysWhichIdsThereAre() {
        String e = refused("server", "--id", "n3", "--peers", "n0-127.0.0.1:20911;n1-127.0.0.1:20912");
        assertTrue(e.contains("self id 'n3' is not in peers [n0, n1]") && e.contains("give --id one of"), e);
    }

    @Test
    void missingIdOrPeersSayWhatToGive() {
        assertTrue(refused("server", "--peers", "n0-127.0.0.1:20911").contains("give --id"));
        assertTrue(refused("server", "--id", "n0").contains("give --peers"));
    }

    @Test
    void duplicatePortsOnOneMachineAreRefused() {
        String same = refused("server", "-i", "n0", "-p", "n0-127.0.0.1:20911;n1-127.0.0.1:20911");
        assertTrue(same.contains("20911") && same.contains("appears twice"), same);
        String aliases = refused("server", "-i", "n0", "-p", "n0-localhost:20911;n1-127.0.0.1:20911");
        assertTrue(aliases.contains("n0 and n1 the same port 20911") && aliases.contains("own port"), aliases);
    }

    @Test
    void malformedPeersAreRefusedNamingTheItem() {
        String e = refused("server", "-i", "n0", "-p", "n0-127.0.0.1:20911;n1127.0.0.1:20912");
        assertTrue(e.contains("peers (--peers) is malformed") && e.contains("'n1127.0.0.1:20912'"), e);
        assertTrue(refused("server", "-i", "n0", "-p", "n0-127.0.0.1:99999").contains("out of range"));
    }

    @Test
    void badNumbersNameTheirKeyAndWhereItCameFrom() throws Exception {
        String flag = refused("server", "-i", "n0", "-p", "n0-localhost:1", "--election-timeout-ms", "soon");
        assertTrue(flag.contains("electionTimeoutMs (--election-timeout-ms) is 'soon'"), flag);
        Path f = file("selfId=n0", "peers=n0-localhost:1", "heartbeatIntervalMs=400");
        String file = refused("server", "-c", f.toString());
        assertTrue(file.contains("heartbeatIntervalMs in " + f) && file.contains("not below electionTimeoutMs"), file);
        assertTrue(refused("server", "-i", "n0", "-p", "n0-localhost:1", "--flush", "always").contains("sync or async"));
        assertTrue(refused("server", "-c", dir.resolve("absent.properties").toString()).contains("does not exist"));
    }

    @Test
    void storeFolderThatIsAFileIsRefused() throws Exception {
        Path notAFolder = Files.writeString(dir.resolve("store"), "x");
        int port = FreePorts.take(1)[0];
        String e = refused("server", "-i", "n0", "-p", "n0-127.0.0.1:" + port, "-s", notAFolder.toString());
        assertTrue(e.contains(notAFolder + " is a file") && e.contains("point --store-dir"), e);
    }

    @Test
    void portInUseIsRefusedSayingWhatToDo() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            int port = taken.getLocalPort();
            String e = refused("appender", "-i", "n0", "-p", "n0-127.0.0.1:" + port, "--bind", "127.0.0.1", "-s",
                dir.toString());
            assertTrue(e.contains("cannot listen on 127.0.0.1:" + port) && e.contains("free port"), e);
        }
        assertTrue(Files.exists(dir.resolve("dledger-n0")), "the store folder was made before the port was tried");
        // The refused start released its store lock: a second start on a free port gets past it.
        try (RunningServer s = RunningServer.start(ServerConfig.load(null, Map.of("selfId", "n0", "peers",
            "n0-127.0.0.1:" + FreePorts.take(1)[0], "storeBaseDir", dir.toString(), "bindAddress", "127.0.0.1"),
            Map.of(), SERVER))) {
            assertEquals(1, s.nodes().size());
            String e = refused("appender", "-i", "n0", "-p", "n0-127.0.0.1:" + FreePorts.take(1)[0], "-s",
                dir.toString());
            assertTrue(e.contains("in use by another node"), e);
        }
    }

    @Test
    void serverFlagsAreTypedAndConvertedByPicocli() {
        CommandLine.Model.CommandSpec server = new CommandLine(new DledgerCommand()).getSubcommands().get("server")
            .getCommandSpec();
        Map<String, Class<?>> types = Map.of("--tick-ms", Integer.class, "--election-timeout-ms", Integer.class,
            "--flush-interval-ms", Long.class, "--append-timeout-ms", Long.class, "--flush", FlushMode.class,
            "--store-dir", Path.class, "--tls-key-store", Path.class, "--metrics-port", Integer.class,
            "--max-frame-bytes", Integer.class, "--snapshot-threshold", Long.class);
        for (Map.Entry<String, Class<?>> t : types.entrySet()) {
            assertEquals(t.getValue(), server.findOption(t.getKey()).type(), t.getKey());
        }
        assertTrue(server.findOption("--state-machine").type().isEnum(), "--state-machine is an enum");
        CommandLine.ParseResult parsed = new CommandLine(new DledgerCommand()).setCaseInsensitiveEnumValuesAllowed(true)
            .parseArgs("server", "--flush", "Sync", "--tick-ms", "5", "-s", "/tmp/x");
        Object base = parsed.subcommand().commandSpec().userObject();
        assertEquals(FlushMode.SYNC, ((ServerCommand.Base) base).flush);
        assertEquals(5, ((ServerCommand.Base) base).tickMs);
        assertEquals(Path.of("/tmp/x"), ((ServerCommand.Base) base).storeDir);
    }

    @Test
    void aFlagThatDoesNotConvertIsOneLineNamingFlagAndKey() {
        String port = refused("server", "-i", "n0", "-p", "n0-localhost:1", "--metrics-port", "x");
        assertTrue(port.contains("metricsPort (--metrics-port) is 'x', not a whole number"), port);
        String sm = refused("register", "--state-machine", "tree");
        assertTrue(sm.contains("stateMachine (--state-machine) is 'tree'; use log or kv"), sm);
        String big = refused("server", "-i", "n0", "-p", "n0-localhost:1", "--tick-ms", "99999999999");
        assertTrue(big.contains("tickMs (--tick-ms) is 99999999999, outside"), big);
    }

    @Test
    void everyServerFlagIsAKeyOfTheSameTypeAndTheFileConvertsLikeTheFlag() throws Exception {
        CommandLine.Model.CommandSpec server = new CommandLine(new DledgerCommand()).getSubcommands().get("server")
            .getCommandSpec();
        int flagged = 0;
        for (ServerConfig.Key k : ServerConfig.KEYS) {
            if (k.flag() != null) {
                flagged++;
                assertEquals(k.type(), server.findOption(k.flag()).type(), k.name() + " and " + k.flag());
            }
        }
        long options = server.options().stream().filter(o -> !o.usageHelp() && !o.versionHelp()
            && !o.longestName().equals("--config")).count();
        assertEquals(options, flagged, "every flag but --config has a key");
        Path f = file("selfId=n0", "peers=n0-localhost:1", "flush=Sync", "stateMachine=KV", "tickMs= 5 ");
        ServerConfig c = ServerConfig.load(f, Map.of(), Map.of(), SERVER);
        assertEquals(FlushMode.SYNC, c.flush);
        assertEquals("kv", c.stateMachine);
        assertEquals(5, c.tickMs);
        String bad = refused("server", "-c", file("selfId=n0", "peers=n0-localhost:1", "metricsPort=x").toString());
        assertTrue(bad.contains("metricsPort in " + dir.resolve("node.properties") + " is 'x', not a whole number"),
            bad);
    }
}
