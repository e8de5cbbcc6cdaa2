package dev.dledger.rocketmq;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.transport.ClientProtocol;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.remoting.protocol.body.ClusterInfo;
import org.apache.rocketmq.remoting.protocol.route.BrokerData;

/**
 * The processes and clients of an end-to-end test, shared by {@link BrokerGroup} and {@link BrokerContainers}: a
 * nameserver and the server processes (brokers or broker containers) as child JVMs, each with its home folder, the
 * clients to shut down before the processes stop, and the queries every such test asks (the nameserver's route of a
 * broker name, a Raft node's own status).
 *
 * <p>Not thread-safe, except {@link #brokerAddrs} and {@link #raftStatus}.
 */
final class ServerProcesses implements AutoCloseable {

    private final String namesrvAddr;
    /** The servers with their home folders (where {@code logs/rocketmqlogs/broker.log} is), in start order. */
    private final Map<ChildJvm, Path> servers = new LinkedHashMap<>();
    private final List<Runnable> shutdowns = new CopyOnWriteArrayList<>();
    private ChildJvm namesrv;
    private DefaultMQProducer routeReader;

    /** @param namesrvAddr the nameserver's address on loopback, {@code 127.0.0.1:port} (port reserved) */
    ServerProcesses(String namesrvAddr) {
        this.namesrvAddr = namesrvAddr;
    }

    String namesrvAddr() {
        return namesrvAddr;
    }

    /**
     * The JVM options of every process: a small heap, C1 only (the servers start much faster on a small shared
     * machine, and the tests run them for seconds), {@code dir} as RocketMQ's home and the user's home, and RocketMQ's
     * remoting without TLS: its default ({@code permissive} without certificate files) makes a self-signed RSA key for
     * every server it starts, seconds of CPU each under C1, and no test speaks TLS to a broker or a nameserver. Its
     * temporary folder is {@code dir/tmp} ({@link #tmpDir}), where a test can see what a process leaves there.
     */
    static List<String> jvmArgs(Path dir, String heap) {
        try {
            Files.createDirectories(tmpDir(dir));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return List.of("-Xmx" + heap, "-Xms64m", "-XX:MaxDirectMemorySize=256m", "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1", "-Drocketmq.home.dir=" + dir, "-Duser.home=" + dir,
            "-Djava.net.preferIPv4Stack=true", "-Dtls.server.mode=disabled", "-Djava.io.tmpdir=" + tmpDir(dir));
    }

    /** The temporary folder of the processes started with {@link #jvmArgs} of {@code dir}. */
    static Path tmpDir(Path dir) {
        return dir.resolve("tmp");
    }

    /** Writes the nameserver's conf in {@code dir} and starts it (heap {@code heap}). */
    void startNamesrv(Path dir, String heap) throws IOException {
        Files.createDirectories(dir);
        Path conf = dir.resolve("namesrv.conf");
        Files.writeString(conf, "listenPort=" + namesrvAddr.substring(namesrvAddr.indexOf(':') + 1) + "\n");
        namesrv = new ChildJvm("namesrv", jvmArgs(dir, heap), "org.apache.rocketmq.namesrv.NamesrvStartup",
            List.of("-c", conf.toString()), dir.resolve("out.log")).start();
    }

    /** Keeps {@code server} (started or not), with its home folder, to report on and to kill at the end. */
    ChildJvm add(ChildJvm server, Path home) {
        servers.put(server, home);
        return server;
    }

    /** Starts the client that reads the nameserver's routes ({@link #brokerAddrs}); after the nameserver. */
    void startRouteReader() throws MQClientException {
        routeReader = producer("route-reader", 1000);
    }

    /** The nameserver's brokerId to address table of {@code brokerName} (empty while it knows none). */
    Map<Long, String> brokerAddrs(String brokerName) {
        try {
            ClusterInfo info = routeReader.getDefaultMQProducerImpl().getMqClientFactory().getMQClientAPIImpl()
                .getBrokerClusterInfo(2000);
            BrokerData data = info.getBrokerAddrTable().get(brokerName);
            return data == null ? Map.of() : new HashMap<>(data.getBrokerAddrs());
        } catch (Exception e) {
            return Map.of();
        }
    }

    /**
     * A started producer of a new group (named from {@code group}) that asks the nameserver for routes every
     * {@code pollMs}; shut down when this closes.
     */
    DefaultMQProducer producer(String group, int pollMs) throws MQClientException {
        DefaultMQProducer p = new DefaultMQProducer(BrokerGroup.clientGroup(group));
        p.setNamesrvAddr(namesrvAddr);
        p.setPollNameServerInterval(pollMs);
        p.setSendMsgTimeout(3000);
        p.setRetryTimesWhenSendFailed(2);
        p.start();
        onClose(p::shutdown);
        return p;
    }

    /** Runs {@code shutdown} when this closes, before the processes stop (for clients). */
    void onClose(Runnable shutdown) {
        shutdowns.add(shutdown);
    }

    /**
     * Node {@code id} of {@code group}'s own view (role, term, commit and last index), asked at {@code address} with
     * {@code adminToken}; null if none (a node down, or a port without the token serves no status).
     */
    static ClientProtocol.Response raftStatus(String group, String id, InetSocketAddress address, String adminToken) {
        try (RaftClient c = new RaftClient(group, Map.of(id, address), 1000, 1, adminToken, null)) {
            return c.metadata(id).get(2, TimeUnit.SECONDS);
        } catch (Exception e) {
            return null;
        }
    }

    /** The role of {@link #raftStatus}, or "DOWN" when the node does not answer. */
    static String raftRole(String group, String id, InetSocketAddress address, String adminToken) {
        ClientProtocol.Response r = raftStatus(group, id, address, adminToken);
        return r == null ? "DOWN" : r.role();
    }

    /** Prints the tail of every process's output and server's broker log, and where the files are. */
    void printOutputs(PrintStream out, Path dir) {
        List<ChildJvm> all = new ArrayList<>();
        if (namesrv != null) {
            all.add(namesrv);
        }
        all.addAll(servers.keySet());
        for (ChildJvm c : all) {
            out.println("===== " + c.name() + " output (tail) =====");
            out.println(c.tail(60));
        }
        for (Map.Entry<ChildJvm, Path> s : servers.entrySet()) {
            Path log = s.getValue().resolve("logs").resolve("rocketmqlogs").resolve("broker.log");
            out.println("===== " + s.getKey().name() + " broker.log (tail) =====");
            out.println(ChildJvm.tailOf(log, 40));
        }
        out.println("the processes' files are kept in " + dir);
    }

    /** Shuts the clients down, then kills every process (SIGKILL). */
    @Override
    public void close() throws InterruptedException {
        for (Runnable r : shutdowns) {
            try {
                r.run();
            } catch (RuntimeException e) {
                System.err.println("client shutdown: " + e);
            }
        }
        shutdowns.clear();
        for (ChildJvm c : servers.keySet()) {
            c.kill();
        }
        if (namesrv != null) {
            namesrv.kill();
        }
    }
}
