package dev.dledger.rocketmq;

import java.lang.reflect.Field;
import java.util.Properties;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.store.CommitLog;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.MessageStore;
import org.apache.rocketmq.store.ha.HAService;
import org.apache.rocketmq.store.kv.CompactionService;
import org.apache.rocketmq.store.plugin.AbstractPluginMessageStore;

/**
 * Puts a {@link RaftCommitLog} under a broker whose store was built but not loaded: it replaces the store's CommitLog
 * (and the compaction service's reference to it) and its master/slave HA service, checks that nothing still holds
 * the stock CommitLog, wires the Raft role into the broker's role, and adds the Raft log's state to the broker's
 * runtime info ({@link RaftRuntimeInfo}).
 *
 * <p>RocketMQ 5.5 offers no factory for the CommitLog, so the swap sets the fields by reflection. It must happen
 * after {@code initializeMessageStore()} and before {@code recoverAndInitService()} (which loads the store).
 */
public final class RaftInstaller {

    private RaftInstaller() {
    }

    /** The store under the broker's plugin wrappers. */
    public static DefaultMessageStore unwrap(MessageStore store) {
        MessageStore s = store;
        while (s instanceof AbstractPluginMessageStore p) {
            s = p.getNext();
        }
        if (!(s instanceof DefaultMessageStore d)) {
            throw new IllegalStateException("the broker's store is a " + (s == null ? "null" : s.getClass().getName())
                + ", not a DefaultMessageStore: the Raft commit log cannot be installed");
        }
        return d;
    }

    /**
     * Installs the Raft commit log in {@code broker}'s store and returns it.
     *
     * @throws IllegalStateException if the swap cannot be made or did not take
     */
    public static RaftCommitLog install(BrokerController broker, RaftStoreSettings settings) {
        return install(broker, settings, null);
    }

    /**
     * Installs the Raft commit log in {@code broker}'s store, on the shared transport and driver threads of
     * {@code container} (null: its own), and returns it.
     *
     * @throws IllegalStateException if the swap cannot be made or did not take
     */
    public static RaftCommitLog install(BrokerController broker, RaftStoreSettings settings, ContainerRaft container) {
        DefaultMessageStore store = unwrap(broker.getMessageStore());
        RaftCommitLog log = install(store, new RaftCommitLog(store, settings, container));
        log.masters(new MasterLookup(broker));
        RaftRoleHandler roles = new RaftRoleHandler(broker, store, log);
        log.onRoleChange(roles);
        // mqadmin brokerStatus: the Raft log's folder, its disk use and the node's role (see RaftRuntimeInfo).
        broker.getBrokerAttachedPlugins().add(new RaftRuntimeInfo(log));
        return log;
    }

    /** Installs the Raft commit log in {@code store} (no broker roles: for a store on its own). */
    public static RaftCommitLog install(DefaultMessageStore store, Properties props) {
        return install(store, new RaftCommitLog(store, props));
    }

    private static RaftCommitLog install(DefaultMessageStore store, RaftCommitLog log) {
        CommitLog stock = store.getCommitLog();
        set(DefaultMessageStore.class, store, "commitLog", log);
        Object compaction = get(DefaultMessageStore.class, store, "compactionService");
        if (compaction != null) {
            set(CompactionService.class, compaction, "commitLog", log);
        }
        set(DefaultMessageStore.class, store, "haService", new NoopHAService());
        check(store, compaction, stock, log);
        return log;
    }

    /** The startup self-check: the store serves the Raft log, and no field of the store still holds the stock one. */
    private static void check(DefaultMessageStore store, Object compaction, CommitLog stock, RaftCommitLog log) {
        if (store.getCommitLog() != log) {
            throw new IllegalStateException("the store still serves " + store.getCommitLog().getClass().getName());
        }
        if (compaction != null && get(CompactionService.class, compaction, "commitLog") != log) {
            throw new IllegalStateException("the compaction service still holds the stock CommitLog");
        }
        for (Class<?> c = store.getClass(); c != null && c != Object.class; c = c.getSuperclass()) {
            for (Field f : c.getDeclaredFields()) {
                if (java.lang.reflect.Modifier.isStatic(f.getModifiers())) {
                    continue;
                }
                if (CommitLog.class.isAssignableFrom(f.getType()) || HAService.class.isAssignableFrom(f.getType())) {
                    Object v = get(c, store, f.getName());
                    if (v == stock) {
                        throw new IllegalStateException("field " + c.getSimpleName() + "." + f.getName()
                            + " still holds the stock CommitLog");
                    }
                    if (v != null && HAService.class.isAssignableFrom(f.getType()) && !(v instanceof NoopHAService)) {
                        throw new IllegalStateException("field " + c.getSimpleName() + "." + f.getName()
                            + " still holds the master/slave HA service");
                    }
                }
            }
        }
    }

    private static Object get(Class<?> owner, Object target, String name) {
        try {
            Field f = owner.getDeclaredField(name);
            f.setAccessible(true);
            return f.get(target);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("cannot read " + owner.getName() + "." + name + " (is this RocketMQ "
                + "5.5.1?): " + e, e);
        }
    }

    private static void set(Class<?> owner, Object target, String name, Object value) {
        try {
            Field f = owner.getDeclaredField(name);
            f.setAccessible(true);
            f.set(target, value);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("cannot replace " + owner.getName() + "." + name + " (is this RocketMQ "
                + "5.5.1?): " + e, e);
        }
    }
}
