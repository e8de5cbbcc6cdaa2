package dev.dledger.raft.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.store.StoreConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link FlushThreads}: the fsyncs of several nodes share a fixed set of threads (issue 18) with the guarantees of a
 * thread per node: a write is reported durable only after a sync that started after it, one sync covers every write
 * asked for while the previous one ran, and a periodic flush stops with its storage while the others go on.
 */
class FlushThreadsTest {

    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final StoreConfig CONFIG = StoreConfig.defaults().withFileSizes(256 * 1024, 32 * 4096);

    @TempDir
    Path tmp;

    private static long threadsNamed(String name) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().equals(name)).count();
    }

    @Test
    void twoNodesSyncOnOneSharedThreadAndEachWriteIsReportedOnlyAfterItsSync() {
        try (FlushThreads flush = new FlushThreads(1, "ft-shared")) {
            assertEquals(1, threadsNamed("ft-shared"), "the thread starts with the flush threads");
            GatedSyncStorage a = new GatedSyncStorage();
            GatedSyncStorage b = new GatedSyncStorage();
            List<Long> publishedA = new CopyOnWriteArrayList<>();
            LogSyncer[] syncA = new LogSyncer[1];
            syncA[0] = flush.syncers().start("sync-a", a, () -> publishedA.add(syncA[0].synced()));
            LogSyncer syncB = flush.syncers().start("sync-b", b, () -> { });
            assertEquals(1, threadsNamed("ft-shared"), "a node's syncer starts no thread");
            assertEquals(0, threadsNamed("sync-a") + threadsNamed("sync-b"), "no thread of a node's own");

            // A's first sync holds the only thread; B's sync and A's later writes wait for it.
            a.blockSyncs(true);
            syncA[0].request(1);
            await("A's sync under way").atMost(WAIT).until(() -> a.syncsStarted() == 1);
            syncB.request(1);
            syncA[0].request(2);
            syncA[0].request(3);
            assertEquals(0, syncA[0].synced(), "write 1 reported durable before its sync completed");
            assertEquals(0, syncB.synced(), "B synced though the only thread is in A's sync");
            assertEquals(0, b.syncsStarted(), "B's sync ran beside A's on a one-thread pool");

            a.blockSyncs(false);
            await("every write synced").atMost(WAIT).until(() -> syncA[0].synced() == 3 && syncB.synced() == 1);
            // The first sync started before writes 2 and 3: it covers write 1 only; one more covers both.
            assertEquals(List.of(1L, 3L), publishedA, "what A's syncer published after each sync");
            assertEquals(2, a.syncs(), "syncs of A (group commit of writes 2 and 3)");
            assertEquals(1, b.syncs(), "syncs of B");
            assertEquals(Set.of("ft-shared"), a.syncThreads());
            assertEquals(Set.of("ft-shared"), b.syncThreads());
            syncA[0].close();
            syncB.close();
        }
    }

    @Test
    void aClosedSyncerSyncsNoMoreWhileTheOthersGoOn() {
        try (FlushThreads flush = new FlushThreads(2, "ft-close")) {
            GatedSyncStorage a = new GatedSyncStorage();
            GatedSyncStorage b = new GatedSyncStorage();
            LogSyncer syncA = flush.syncers().start("sync-a", a, () -> { });
            LogSyncer syncB = flush.syncers().start("sync-b", b, () -> { });
            syncA.request(1);
            await().atMost(WAIT).until(() -> syncA.synced() == 1);
            syncA.close();
            syncA.request(2);
            syncB.request(1);
            await().atMost(WAIT).until(() -> syncB.synced() == 1);
            assertEquals(1, a.syncsStarted(), "a closed syncer synced again");
            assertEquals(1, syncA.synced());
            syncB.close();
        }
        await("the threads end after close").atMost(WAIT)
            .until(() -> threadsNamed("ft-close-0") + threadsNamed("ft-close-1") == 0);
    }

    @Test
    void periodicFlushesShareTheThreadsAndOneStopsWithItsStorage() {
        try (FlushThreads flush = new FlushThreads(1, "ft-periodic")) {
            AtomicLong runs1 = new AtomicLong();
            AtomicLong runs2 = new AtomicLong();
            Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
            FlushThreads.Periodic p1 = flush.every(5, "one", () -> {
                threads.add(Thread.currentThread().getName());
                runs1.incrementAndGet();
            });
            FlushThreads.Periodic p2 = flush.every(5, "two", () -> {
                threads.add(Thread.currentThread().getName());
                runs2.incrementAndGet();
            });
            await("both flush").atMost(WAIT).until(() -> runs1.get() >= 3 && runs2.get() >= 3);
            p1.close();
            long stopped = runs1.get();
            long second = runs2.get();
            await("the other goes on").atMost(WAIT).until(() -> runs2.get() >= second + 3);
            assertEquals(stopped, runs1.get(), "a closed periodic flush ran again");
            assertEquals(Set.of("ft-periodic"), threads);
            p2.close();
        }
    }

    @Test
    void fileStoragesWithSharedFlushThreadsHaveNoFlushThreadOfTheirOwn() {
        try (FlushThreads flush = new FlushThreads(1, "ft-files")) {
            FileNodeStorage shared = new FileNodeStorage(tmp.resolve("dledger-s0"), CONFIG,
                FlushMode.ASYNC, 5, null, flush);
            FileNodeStorage own = new FileNodeStorage(tmp.resolve("dledger-o0"), CONFIG,
                FlushMode.ASYNC, 5, null, null);
            try {
                assertEquals(0, threadsNamed("flush-dledger-s0"), "a storage on shared flush threads made its own");
                assertEquals(1, threadsNamed("flush-dledger-o0"), "a storage without them flushes on its own thread");
                // Both take writes while flushed in the background; the shared one's entries read back after close.
                for (FileNodeStorage s : List.of(shared, own)) {
                    s.append(List.of(new Entry(0, 1, EntryType.NORMAL, new byte[] {1}),
                        new Entry(1, 1, EntryType.NORMAL, new byte[] {2})));
                }
            } finally {
                shared.close();
                own.close();
            }
            FileNodeStorage reopened = new FileNodeStorage(tmp.resolve("dledger-s0"), CONFIG,
                FlushMode.ASYNC, 5, null, flush);
            try {
                assertEquals(1, reopened.log().lastIndex());
            } finally {
                reopened.close();
            }
            assertEquals(1, threadsNamed("ft-files"), "the shared thread outlives the storages");
        }
    }
}
