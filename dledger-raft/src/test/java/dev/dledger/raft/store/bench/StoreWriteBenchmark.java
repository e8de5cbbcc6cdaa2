package dev.dledger.raft.store.bench;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * Runs {@link StoreWriteBench} with JMH and prints the store's throughput as a share of the raw disk bandwidth
 * measured in the same run. Only under the {@code benchmark} profile:
 * {@code mvn -pl dledger-raft -P benchmark test -Dtest=StoreWriteBenchmark}.
 */
class StoreWriteBenchmark {

    @Test
    void storeAppendsAgainstRawDiskBandwidth() throws Exception {
        Collection<RunResult> results = new Runner(new OptionsBuilder()
            .include(StoreWriteBench.class.getName())
            .forks(0)
            .warmupIterations(Integer.getInteger("bench.warmupIterations", 3))
            .warmupTime(TimeValue.seconds(2))
            .measurementIterations(Integer.getInteger("bench.iterations", 5))
            .measurementTime(TimeValue.seconds(2))
            .build()).run();
        Map<String, Double> score = new HashMap<>();
        for (RunResult r : results) {
            String key = r.getParams().getBenchmark().replaceAll(".*\\.", "") + " fsync="
                + r.getParams().getParam("fsync");
            score.put(key, r.getPrimaryResult().getScore());
        }
        for (String fsync : new String[] {"false", "true"}) {
            double store = score.get("storeAppend fsync=" + fsync);
            double raw = score.get("rawWrite fsync=" + fsync);
            System.out.printf("store-bench: 1 KiB entries, batches of %d, fsync per batch=%s: store %.0f entries/s "
                + "(%.1f MB/s), raw %.1f MB/s, ratio %.0f%%%n", StoreWriteBench.BATCH, fsync, store,
                store * (StoreWriteBench.SIZE + 48) / 1e6, raw * (StoreWriteBench.SIZE + 48) / 1e6, 100 * store / raw);
        }
    }
}
