package dev.dledger.raft.server;

import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ports of a node's driver besides its storage, state machine and transport (which its constructor takes): the
 * clock, the background fsync of {@link FlushMode#SYNC}, and the thread for work that blocks on a disk when the driver
 * runs on a transport's event loop (issue 16, B7). The driver's own thread is the transport's
 * {@link dev.dledger.raft.transport.Transport#driverThread()} when it offers one, else shared {@link RaftLoops}.
 * {@link #production()} are the real ones; the deterministic simulation passes its own, which run on its single thread
 * as scheduled events, so that the production driver runs unchanged under it.
 *
 * @param clock        the time the driver reads
 * @param syncers      makes the node's background syncer when the flush mode is {@link FlushMode#SYNC}
 * @param blockingWork makes the executor (given a thread name) that runs the passes whose Ready blocks, when the
 *                     driver runs on an event loop that offloads them; the node shuts it down when it closes
 * @param loggers      the loggers of the driver, its snapshot transfers and its core, by name (SLF4J's in production;
 *                     the simulation keeps thousands of runs of faults quiet)
 */
public record DriverPorts(Clock clock, LogSyncer.Factory syncers, Function<String, ExecutorService> blockingWork,
                          Function<String, Logger> loggers) {

    public DriverPorts {
        Objects.requireNonNull(loggers, "loggers");
        Objects.requireNonNull(clock, "clock");
        Objects.requireNonNull(syncers, "syncers");
        Objects.requireNonNull(blockingWork, "blockingWork");
    }

    /** A copy whose nodes get their background syncers from {@code other} (e.g. shared {@link FlushThreads}). */
    public DriverPorts withSyncers(LogSyncer.Factory other) {
        return new DriverPorts(clock, other, blockingWork, loggers);
    }

    /** The system clock, a syncer thread per node, a daemon thread per node for blocking work, SLF4J's loggers. */
    public static DriverPorts production() {
        return new DriverPorts(Clock.SYSTEM, FlushThreads.threadPerNode(), name -> Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        }), LoggerFactory::getLogger);
    }
}
