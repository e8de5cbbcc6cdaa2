package dev.dledger.raft.cli;

import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.server.MemoryStorageAccess;

/** Runs {@link GroupBenchmark} on in-memory storage, to see the protocol and driver costs without disk. */
public final class MemoryBenchmarkMain {

    private MemoryBenchmarkMain() {
    }

    public static void main(String[] args) throws InterruptedException {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 32;
        int warmup = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        int seconds = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        GroupBenchmark.Settings s = new GroupBenchmark.Settings(threads, 1024, warmup, seconds, FlushMode.ASYNC);
        System.out.println(GroupBenchmark.run(s, id -> MemoryStorageAccess.open()).line() + " storage=memory");
    }
}
