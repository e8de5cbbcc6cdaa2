package dev.dledger.distribution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import dev.dledger.distribution.PackageCopies.Result;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The package end to end: unpacks the tar.gz the build just made into a temporary folder, gives its confs free ports
 * (the only change, as a user moving the group would make), runs {@code bin/dledger/fast-try.sh start} from another
 * folder, sends and reads messages with RocketMQ's own client, checks {@code status}, runs {@code stop}, and checks
 * that no process of the package is left. Also checks the package's layout and that {@code dledger-migrate} says
 * clearly when the migration tool is missing.
 */
class FastTryIT extends FastTryScripts {

    /**
     * The whole life of a group, started twice (a group start is most of this test's time, so the two scenarios share
     * one): {@code start}, a round trip through RocketMQ's client, {@code status}; issue 14, items 1 and 3:
     * {@code bin/mqadmin updateBrokerConfig} on a broker of the running group, then {@code stop} (no process or pid
     * file left; a second {@code stop} has nothing to stop) and {@code start}: the group comes back whole (the updated
     * broker is still a Raft node), the nameserver runs, and the update is kept; a Raft key is refused, the tool
     * printing why. Then {@code stop} and {@code clean}.
     */
    @Test
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void fastTryStartsAGroupThatServesTheClientKeepsAnUpdateAcrossStopAndStartAndStopLeavesNoProcess()
        throws Exception {
        long began = System.nanoTime();
        unpack();
        checkLayout();
        String namesrv = movePorts();

        Result start = run("start");
        assertEquals(0, start.exit(), "fast-try.sh start failed:\n" + start.output());
        assertTrue(start.output().contains("the leader as brokerId 0 at 127.0.0.1:"), start.output());
        for (String name : List.of("namesrv", "n0", "n1", "n2")) {
            long pid = Long.parseLong(Files.readString(data().resolve("run").resolve(name + ".pid")).trim());
            pids.add(pid);
            assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), name + " (pid " + pid
                + ") is not running after start");
        }
        for (String log : List.of("store/n0/logs/broker.log", "store/n0/logs/raft.log", "store/namesrv/logs/namesrv.log")) {
            assertTrue(Files.size(data().resolve(log)) > 0, log + " is empty or missing");
        }
        System.out.println("fast-try start: group up " + sinceMs(began) + " ms after the test began");

        roundTrip(namesrv);
        System.out.println("fast-try: " + MESSAGES + " messages sent and read back (at " + sinceMs(began) + " ms)");

        Result status = run("status");
        assertEquals(0, status.exit(), "fast-try.sh status failed:\n" + status.output());
        assertOneLeaderTwoFollowers(status);
        assertTrue(status.output().contains("brokerId 0 at 127.0.0.1:"), status.output());

        Path n0Conf = home.resolve("conf/dledger/broker-n0.conf");
        String n0 = "127.0.0.1:" + PackageCopies.confValue(n0Conf, "listenPort");
        Result update = mqadmin("updateBrokerConfig", "-n", namesrv, "-b", n0, "-k", "fileReservedTime", "-v", "48");
        assertTrue(update.output().contains("update broker config success"), update.output());

        Result stop = run("stop");
        assertEquals(0, stop.exit(), "fast-try.sh stop failed:\n" + stop.output());
        for (long pid : pids) {
            assertTrue(ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true), "pid " + pid + " still runs after stop");
        }
        assertEquals(List.of(), packageProcesses().stream().map(ProcessHandle::pid).toList(),
            "processes of the package still run after stop");
        try (Stream<Path> left = Files.list(data().resolve("run"))) {
            assertEquals(List.of(), left.filter(p -> p.toString().endsWith(".pid")).toList(), "pid files left");
        }
        Result again = run("stop");
        assertEquals(0, again.exit(), again.output());
        assertTrue(again.output().contains("nothing to stop"), again.output());

        Result restart = run("start");
        Result restarted = run("status");
        assertTrue(restarted.output().contains("namesrv " + namesrv + ": running"), "the nameserver is not running "
            + "after stop and start:\n" + restarted.output() + "\n---- the start said:\n" + restart.output());
        assertEquals(0, restart.exit(), "fast-try.sh start after stop failed:\n" + restart.output());
        assertEquals(0, restarted.exit(), "fast-try.sh status failed:\n" + restarted.output());
        assertOneLeaderTwoFollowers(restarted);
        System.out.println("fast-try: stopped and started again (at " + sinceMs(began) + " ms)");
        Result config = mqadmin("getBrokerConfig", "-n", namesrv, "-b", n0);
        assertTrue(config.output().matches("(?s).*fileReservedTime\\s*=\\s*48.*"), config.output());
        assertTrue(config.output().matches("(?s).*enableDLegerCommitLog\\s*=\\s*true.*"), config.output());
        assertEquals("48", PackageCopies.confValue(n0Conf, "fileReservedTime"), "fileReservedTime in broker-n0.conf");
        assertEquals("true", PackageCopies.confValue(n0Conf, "enableDLegerCommitLog"), "enableDLegerCommitLog in broker-n0.conf");
        String kept = Files.readString(n0Conf);
        Result refused = mqadmin("updateBrokerConfig", "-n", namesrv, "-b", n0, "-k", "dLegerPeers", "-v", "n0-x:1");
        assertTrue(refused.output().contains("updateBrokerConfig refused: dLegerPeers"), refused.output());
        assertEquals(kept, Files.readString(n0Conf), "broker-n0.conf after a refused update");

        Result last = run("stop");
        assertEquals(0, last.exit(), "fast-try.sh stop failed:\n" + last.output());
        assertEquals(List.of(), packageProcesses().stream().map(ProcessHandle::pid).toList(),
            "processes of the package still run after stop");

        Result clean = run("clean");
        assertEquals(0, clean.exit(), clean.output());
        assertTrue(!Files.exists(data().resolve("store/n0")), "clean left store/n0");
        for (String inside : List.of("store", "run")) {
            assertTrue(!Files.exists(home.resolve(inside)), "the package folder has " + inside + "/: the data belongs "
                + "in DLEDGER_DATA, outside the package");
        }
        System.out.println("fast-try: start, round trip, status, update, stop, start, stop and clean in "
            + sinceMs(began) + " ms");
    }

    /**
     * A broker conf that no longer puts its broker on the Raft log (as an earlier version's updateBrokerConfig left
     * it) is refused by {@code start}, naming the file and the key, before anything starts.
     */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void startRefusesABrokerConfThatLeftTheRaftLogBeforeStartingAnything() throws Exception {
        unpack();
        movePorts();
        Path n1Conf = home.resolve("conf/dledger/broker-n1.conf");
        PackageCopies.setKey(n1Conf, "enableDLegerCommitLog", "false");
        Result start = run("start");
        assertEquals(2, start.exit(), start.output());
        assertTrue(start.output().contains(n1Conf + ": enableDLegerCommitLog=false, so n1 would start as a stock broker"),
            start.output());
        assertTrue(!start.output().contains("started namesrv"), start.output());
        assertEquals(List.of(), packageProcesses().stream().map(ProcessHandle::pid).toList(), "processes after start");
        PackageCopies.setKey(n1Conf, "enableDLegerCommitLog", "true");
        PackageCopies.setKey(n1Conf, "dLegerSelfId", "n2");
        Result wrongId = run("start");
        assertEquals(2, wrongId.exit(), wrongId.output());
        assertTrue(wrongId.output().contains(n1Conf + ": dLegerSelfId=n2, expected n1"), wrongId.output());
    }
}
