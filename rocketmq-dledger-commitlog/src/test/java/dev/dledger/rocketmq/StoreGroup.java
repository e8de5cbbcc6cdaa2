package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;

import dev.dledger.raft.testing.FreePorts;
import dev.dledger.raft.core.Role;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.rocketmq.common.BrokerConfig;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExtBrokerInner;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.config.BrokerRole;
import org.apache.rocketmq.store.config.FlushDiskType;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.apache.rocketmq.store.stats.BrokerStatsManager;

/** Message stores on a Raft group in one JVM (no broker): each store's role follows its node's. */
final class StoreGroup implements AutoCloseable {

    static final int FILE_SIZE = 1 << 20;
    /** How long {@link #close()} waits for the stores' shutdowns. */
    static final Duration CLOSE_WAIT = Duration.ofSeconds(60);

    final Path base;
    final String peers;
    final Map<String, DefaultMessageStore> stores = new LinkedHashMap<>();
    final Properties props = new Properties();
    /** Changes to each store's config after the group's defaults, before the store is built. */
    Consumer<MessageStoreConfig> configure = c -> {
    };
    /** Runs on each store once it is built and loaded, before it starts (e.g. to add a dispatcher). */
    Consumer<DefaultMessageStore> beforeStart = s -> {
    };

    private StoreGroup(Path base, String peers) {
        this.base = base;
        this.peers = peers;
    }

    /** The group of an earlier run in {@code base}, with the same peers. */
    static StoreGroup reopen(Path base) throws IOException {
        return new StoreGroup(base, java.nio.file.Files.readString(base.resolve("peers")));
    }

    StoreGroup(Path base, int nodes) throws IOException {
        this.base = base;
        this.peers = FreePorts.peers(FreePorts.take(nodes));
        java.nio.file.Files.createDirectories(base);
        java.nio.file.Files.writeString(base.resolve("peers"), peers);
    }

    /** Opens, recovers and starts the store of {@code id}; {@code abort} simulates a crash before it. */
    DefaultMessageStore start(String id, boolean abort) throws Exception {
        return start(id, abort, false);
    }

    /** Opens and starts a stock store (no Raft log) on the folders of {@code id}, as a master/slave broker had it. */
    DefaultMessageStore startClassic(String id) throws Exception {
        return start(id, false, true);
    }

    private DefaultMessageStore start(String id, boolean abort, boolean classic) throws Exception {
        MessageStoreConfig c = new MessageStoreConfig();
        Path root = base.resolve(id);
        c.setStorePathRootDir(root.toString());
        c.setStorePathCommitLog(root.resolve("commitlog").toString());
        c.setMappedFileSizeCommitLog(FILE_SIZE);
        c.setMappedFileSizeConsumeQueue(300 * 20);
        c.setMaxHashSlotNum(1000);
        c.setMaxIndexNum(4000);
        c.setFlushDiskType(FlushDiskType.ASYNC_FLUSH);
        c.setBrokerRole(BrokerRole.SLAVE);
        c.setdLegerGroup("g");
        c.setdLegerPeers(peers);
        c.setdLegerSelfId(id);
        configure.accept(c);
        if (abort) {
            java.nio.file.Files.createDirectories(root);
            java.nio.file.Files.writeString(root.resolve("abort"), "");
        }
        DefaultMessageStore store = new DefaultMessageStore(c, new BrokerStatsManager("test", true), null,
            new BrokerConfig(), new ConcurrentHashMap<>());
        if (classic) {
            // A master/slave-days store on the same folders: the stock CommitLog, no Raft log. Its HA service listens
            // on haListenPort: a free port, not the default 10912, which a test JVM beside this one may have taken.
            c.setBrokerRole(BrokerRole.ASYNC_MASTER);
            c.setHaListenPort(FreePorts.take(1)[0]);
            if (!store.load()) {
                throw new IllegalStateException("load failed");
            }
            store.start();
            stores.put(id, store);
            return store;
        }
        RaftCommitLog log = RaftInstaller.install(store, props);
        // Without a broker, the store's role follows the node's so that it takes puts while leading.
        // As the broker's role handler does: a new leader takes puts once it dispatched everything committed and
        // rebuilt the queue offsets.
        log.onRoleChange(st -> {
            if (st.role() != Role.LEADER) {
                log.closeForPuts();
                c.setBrokerRole(BrokerRole.SLAVE);
                return;
            }
            Thread t = new Thread(() -> {
                await().atMost(Duration.ofSeconds(30)).until(() -> !log.node().status().role().equals(Role.LEADER)
                    || log.readyForMaster());
                long term = st.term();
                if (log.node().status().role() == Role.LEADER && log.node().status().term() == term
                    && log.putTerm() != term) {
                    log.closeForPuts();
                    store.recoverTopicQueueTable();
                    log.openForPuts(term);
                    c.setBrokerRole(BrokerRole.SYNC_MASTER);
                }
            });
            t.setDaemon(true);
            t.start();
        });
        if (!store.load()) {
            throw new IllegalStateException("load failed");
        }
        beforeStart.accept(store);
        store.start();
        stores.put(id, store);
        return store;
    }

    static RaftCommitLog log(DefaultMessageStore s) {
        return (RaftCommitLog) s.getCommitLog();
    }

    DefaultMessageStore awaitLeader() {
        DefaultMessageStore now = leader();
        if (now != null) {
            return now;
        }
        DefaultMessageStore[] out = new DefaultMessageStore[1];
        await().atMost(Duration.ofSeconds(20)).until(() -> (out[0] = leader()) != null);
        return out[0];
    }

    /** The store that leads and took over as master, or null. */
    private DefaultMessageStore leader() {
        for (DefaultMessageStore s : stores.values()) {
            if (log(s).leaderCaughtUp() && s.getMessageStoreConfig().getBrokerRole() == BrokerRole.SYNC_MASTER) {
                return s;
            }
        }
        return null;
    }

    void stop(String id) {
        DefaultMessageStore s = stores.remove(id);
        if (s != null) {
            s.shutdown();
        }
    }

    static MessageExtBrokerInner message(String topic, int queueId, String body) {
        MessageExtBrokerInner m = new MessageExtBrokerInner();
        m.setTopic(topic);
        m.setQueueId(queueId);
        m.setTags("TagA");
        m.setKeys("key-" + body);
        m.setBody(body.getBytes(StandardCharsets.UTF_8));
        m.setBornTimestamp(System.currentTimeMillis());
        m.setBornHost(new InetSocketAddress("127.0.0.1", 8123));
        m.setStoreHost(new InetSocketAddress("127.0.0.1", 10911));
        m.setPropertiesString(MessageDecoder.messageProperties2String(m.getProperties()));
        return m;
    }

    /**
     * Shuts every store down, all at once: a stock {@code DefaultMessageStore.shutdown()} sleeps a fixed 3 s, so one
     * store after another a group of three took over 9 s to close. Rethrows the first failure of a shutdown.
     *
     * @throws IllegalStateException if a store is not shut down within {@link #CLOSE_WAIT}
     */
    @Override
    public void close() {
        Map<String, Thread> closing = new LinkedHashMap<>();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        for (String id : stores.keySet().toArray(String[]::new)) {
            DefaultMessageStore s = stores.remove(id);
            Thread t = new Thread(() -> {
                try {
                    s.shutdown();
                } catch (RuntimeException | Error e) {
                    failures.add(e);
                }
            }, "store-group-close-" + id);
            t.start();
            closing.put(id, t);
        }
        long deadline = System.nanoTime() + CLOSE_WAIT.toNanos();
        for (Map.Entry<String, Thread> e : closing.entrySet()) {
            try {
                e.getValue().join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while store " + e.getKey() + " shut down", ie);
            }
            if (e.getValue().isAlive()) {
                throw new IllegalStateException("store " + e.getKey() + " did not shut down within "
                    + CLOSE_WAIT.toSeconds() + " s");
            }
        }
        if (!failures.isEmpty()) {
            Throwable first = failures.get(0);
            if (first instanceof Error err) {
                throw err;
            }
            throw (RuntimeException) first;
        }
    }
}
