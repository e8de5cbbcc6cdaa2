package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.testing.FreePorts;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Review finding C5: {@code bin/mqbrokercontainer} whose boot fails half way (its first broker started, its second
 * cannot take its port) does not stay up with part of its brokers: it stops what started and exits with code 1.
 */
class BrokerContainerBootTest {

    @TempDir
    Path dir;

    @Test
    void aContainerWhoseBootFailsHalfWayStopsWhatStartedAndExitsNonZero() throws Exception {
        int raftPort = FreePorts.port();
        int adminPort = FreePorts.port();
        int namesrvPort = FreePorts.port();
        int portA = FreePorts.brokerPort();
        int portB = FreePorts.brokerPort();
        Path a = brokerConf("boot-a", portA, raftPort, namesrvPort);
        Path b = brokerConf("boot-b", portB, raftPort, namesrvPort);
        Path conf = dir.resolve("container.conf");
        Files.writeString(conf, "listenPort=" + adminPort + "\nbrokerConfigPaths=" + a + ":" + b + "\n");
        // The second broker's listenPort is taken: its start fails after the first broker started.
        try (ServerSocket held = new ServerSocket(portB, 50, InetAddress.getByName("127.0.0.1"));
             ChildJvm container = new ChildJvm("container", ServerProcesses.jvmArgs(dir, "384m"),
                 RaftBrokerContainerStartup.class.getName(), List.of("-c", conf.toString()), dir.resolve("out.log"))) {
            container.start();
            boolean ended = container.awaitExit(Duration.ofSeconds(180));
            String out = container.tail(400);
            assertTrue(ended, "the container still ran with part of its brokers:\n" + out);
            System.out.printf("container exit code %d; last lines:%n%s%n", container.exitCode(), container.tail(3));
            String log = ChildJvm.tailOf(dir.resolve("logs").resolve("rocketmqlogs").resolve("broker_default.log"),
                100_000);
            assertTrue(log.contains("broker added to the container from " + a), "the first broker started:\n" + log);
            assertTrue(out.contains("broker container failed to start"), out);
            assertEquals(1, container.exitCode(), out);
        }
    }

    private Path brokerConf(String group, int listenPort, int raftPort, int namesrvPort) throws Exception {
        Path store = dir.resolve("store-" + group);
        Path file = dir.resolve(group + ".conf");
        Files.writeString(file, String.join("\n",
            "brokerClusterName=BootCluster",
            "brokerName=" + group,
            "brokerIP1=127.0.0.1",
            "listenPort=" + listenPort,
            "namesrvAddr=127.0.0.1:" + namesrvPort,
            "storePathRootDir=" + store,
            "storePathCommitLog=" + store.resolve("commitlog"),
            "enableDLegerCommitLog=true",
            "dLegerGroup=" + group,
            "dLegerPeers=n0-127.0.0.1:" + raftPort,
            "dLegerSelfId=n0",
            "mappedFileSizeCommitLog=" + (4 << 20),
            "mappedFileSizeConsumeQueue=" + (20 * 20_000),
            "mappedFileSizeTimerLog=" + (4 << 20),
            "flushDiskType=ASYNC_FLUSH",
            "diskMaxUsedSpaceRatio=95") + "\n");
        return file;
    }
}
