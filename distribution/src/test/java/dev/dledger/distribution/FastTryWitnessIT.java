package dev.dledger.distribution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import dev.dledger.distribution.PackageCopies.Result;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
/**
 * Issue 19's script: {@code bin/dledger/fast-try.sh --witness}, the 2 + 1 group of the package's conf/witness (a class
 * of its own so that it runs beside the other script tests).
 */
class FastTryWitnessIT extends FastTryScripts {

    /**
     * Issue 19: {@code fast-try.sh --witness} runs the 2 + 1 group of conf/witness: two data brokers registered (the
     * leader as brokerId 0) and the witness started by {@code bin/mqwitness}, a Raft member never registered at the
     * nameserver; the group serves the client, and stop leaves no process.
     */
    @Test
    @Timeout(value = 600, unit = TimeUnit.SECONDS)
    void fastTryWitnessRunsTwoDataBrokersAndAWitnessThatNeverRegisters() throws Exception {
        unpack();
        String namesrv = movePorts("conf/witness");
        extraEnv.put("DLEDGER_WITNESS_HEAP", "128m");
        Result start = run("--witness", "start");
        assertEquals(0, start.exit(), "fast-try.sh --witness start failed:\n" + start.output());
        assertTrue(start.output().contains("the leader as brokerId 0 at 127.0.0.1:"), start.output());
        List<Long> started = new ArrayList<>();
        for (String name : List.of("namesrv", "n0", "n1", "n2")) {
            long pid = Long.parseLong(Files.readString(data().resolve("run-witness").resolve(name + ".pid")).trim());
            pids.add(pid);
            started.add(pid);
            assertTrue(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), name + " (pid " + pid
                + ") is not running after start");
        }
        String witnessCommand = ProcessHandle.of(started.get(3)).flatMap(p -> p.info().commandLine()).orElse("");
        assertTrue(witnessCommand.contains("-Xmx128m") && witnessCommand.contains("conf/witness/broker-n2.conf"),
            "the witness is not the light process of bin/mqwitness: " + witnessCommand);
        assertTrue(Files.size(data().resolve("store/witness-n2/logs/raft.log")) > 0, "the witness's raft.log is empty");

        roundTrip(namesrv);

        Result status = run("--witness", "status");
        assertEquals(0, status.exit(), "fast-try.sh --witness status failed:\n" + status.output());
        long leaders = status.output().lines().filter(l -> l.matches("n[0-1] .* LEADER .*")).count();
        long members = status.output().lines().filter(l -> l.matches("n[0-2] .* (LEADER|FOLLOWER) .*")).count();
        assertEquals(1, leaders, "one data broker LEADER line expected:\n" + status.output());
        assertEquals(3, members, "three members up expected:\n" + status.output());
        long routes = status.output().lines().filter(l -> l.matches("\\s*brokerId \\d+ at .*")).count();
        assertEquals(2, routes, "the two data brokers registered, the witness not:\n" + status.output());

        Result stop = run("--witness", "stop");
        assertEquals(0, stop.exit(), "fast-try.sh --witness stop failed:\n" + stop.output());
        assertEquals(List.of(), packageProcesses().stream().map(ProcessHandle::pid).toList(),
            "processes of the package still run after stop");
        Result clean = run("--witness", "clean");
        assertEquals(0, clean.exit(), clean.output());
        assertTrue(!Files.exists(data().resolve("store/witness-n2")), "clean left store/witness-n2");
    }
}
