package dev.dledger.rocketmq;

import dev.dledger.raft.core.OneLine;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantLock;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.logging.org.slf4j.LoggerFactory;
import org.apache.rocketmq.remoting.Configuration;
import org.slf4j.Logger;

/**
 * The broker's {@link Configuration} (what {@code mqadmin updateBrokerConfig} and {@code getBrokerConfig} reach) on a
 * broker on the Raft log. It replaces the stock one, which would write every live setting back to {@code broker.conf},
 * among them the ones the launcher sets for itself ({@code enableDLegerCommitLog=false}, {@code brokerRole=SLAVE},
 * {@code brokerId}): a broker restarted from that file is a stock broker on an empty CommitLog.
 *
 * <ul>
 *   <li>{@link #update}: the keys are checked first ({@link #refusal}); a Raft key, a key the launcher or the Raft
 *   role owns, an unknown key or a value its setting cannot take is refused, one line naming the key, and nothing is
 *   applied or written. Otherwise the live settings change as in stock RocketMQ, and only the changed keys are
 *   written into the user's file ({@link BrokerConfFile}: other lines, comments and keys stay as they were).</li>
 *   <li>{@link #persist()} without an update writes nothing: the file holds the user's configuration, not the live
 *   one.</li>
 *   <li>{@link #getAllConfigsFormatString()}: the live settings, with {@code enableDLegerCommitLog=true} (the broker
 *   runs on the Raft log; the launcher only turns the stock flag off inside), the true role ({@code brokerId} 0 and a
 *   master role on the leader, {@code brokerId} id number + 1 and {@code SLAVE} on a follower, as the nameserver has
 *   them), and the secrets of the Raft keys masked.</li>
 * </ul>
 *
 * <p>Thread-safe: updates may come from the admin executor's threads; file writes are serialized.
 */
public final class RaftBrokerConfiguration extends Configuration {

    private static final Logger LOG = org.slf4j.LoggerFactory.getLogger(RaftBrokerConfiguration.class);

    /** What a masked secret reads as in {@code getBrokerConfig}. */
    static final String MASK = "******";

    /**
     * Keys that never change while the broker runs, each with why. Raft keys (also every key starting with
     * {@code raft}) are read once at start; the others are set by the launcher or by the Raft role.
     */
    static final Map<String, String> FIXED_KEYS = fixedKeys();

    private static Map<String, String> fixedKeys() {
        Map<String, String> m = new LinkedHashMap<>();
        String raft = "a key of the Raft log, read once at start; change it in broker.conf and restart the broker";
        for (String k : List.of("dLegerGroup", "dLegerPeers", "dLegerSelfId", "preferredLeaderId", "enableBatchPush",
            "storePathDLedgerCommitLog", "readOnlyCommitLogStorePaths", "storePathRootDir", "storePathCommitLog",
            "mappedFileSizeCommitLog")) {
            m.put(k, raft);
        }
        m.put("enableDLegerCommitLog", "it chooses the Raft log; a broker cannot leave its group at run time");
        m.put("brokerId", "the Raft role sets it (leader: 0, follower: its index in dLegerPeers + 1)");
        m.put("brokerRole", "the Raft role sets it (leader: SYNC_MASTER, follower: SLAVE)");
        m.put("brokerName", "it names the broker group of the Raft log; change it in broker.conf on every broker of "
            + "the group and restart them");
        m.put("brokerClusterName", "the brokers of a Raft group share it; change it in broker.conf on every broker of "
            + "the group and restart them");
        m.put("enableControllerMode", "controller mode cannot be combined with the Raft log");
        m.put("duplicationEnable", "the Raft log replicates the broker; the launcher keeps this off");
        m.put("transientStorePoolEnable", "the Raft log writes its own files; the launcher keeps this off");
        m.put("enableSlaveActingMaster", "the Raft leader is the group's only master");
        return Map.copyOf(m);
    }

    private final Path file;
    private final String prefix;
    private final List<Object> configObjects;
    private final ReentrantLock writeLock = new ReentrantLock();
    private final ThreadLocal<Properties> updating = new ThreadLocal<>();

    /**
     * @param file          the broker's config file ({@code -c}), where updates are kept; null when it was started
     *                      without one (updates then apply until the next restart only)
     * @param fileKeys      the keys and values read from that file (kept in the view, as stock keeps them)
     * @param prefix        the log prefix, e.g. {@code [RaftNode00 n0]}
     * @param configObjects the live config objects (BrokerConfig, NettyServerConfig, NettyClientConfig,
     *                      MessageStoreConfig), as the stock Configuration registers them
     */
    public RaftBrokerConfiguration(Path file, Properties fileKeys, String prefix, Object... configObjects) {
        super(LoggerFactory.getLogger("RocketmqBroker"), file == null ? null : file.toString(), configObjects);
        this.file = file;
        this.prefix = prefix;
        this.configObjects = List.of(configObjects);
        registerConfig(fileKeys);
    }

    /**
     * Why {@code properties} cannot be applied, in one line naming the first key that is wrong, or null when every key
     * may change at run time and every value fits its setting.
     */
    public String refusal(Properties properties) {
        for (String key : new TreeMap<>(properties).keySet().stream().map(Object::toString).toList()) {
            String value = properties.getProperty(key);
            String why = FIXED_KEYS.get(key);
            if (why == null && key.startsWith("raft")) {
                why = "a key of the Raft log, read once at start; change it in broker.conf and restart the broker";
            }
            if (why != null) {
                return "updateBrokerConfig refused: " + key + " cannot change on a running broker on the Raft log: " + why;
            }
            String wrong = valueProblem(key, value);
            if (wrong != null) {
                return "updateBrokerConfig refused: " + OneLine.of(wrong);
            }
        }
        return null;
    }

    /** Null when {@code value} fits the setting {@code key}, else what is wrong (naming the key). */
    private String valueProblem(String key, String value) {
        if (value == null) {
            return key + " has no value";
        }
        boolean setter = false;
        String problem = null;
        for (Object o : configObjects) {
            for (Method m : o.getClass().getMethods()) {
                if (m.getParameterCount() != 1 || !m.getName().startsWith("set") || m.getName().length() < 4
                    || !key.equals(m.getName().substring(3, 4).toLowerCase(Locale.ROOT) + m.getName().substring(4))) {
                    continue;
                }
                setter = true;
                if (!SETTABLE_TYPES.contains(m.getParameterTypes()[0].getSimpleName())) {
                    continue; // stock RocketMQ skips such a setter too
                }
                String p = tryOnFreshCopy(o, m, key, value);
                if (p == null) {
                    return null;
                }
                problem = p;
            }
        }
        if (setter) {
            return problem == null ? key + " cannot be set at run time (no setter of a plain type)" : problem;
        }
        return getAllConfigs().containsKey(key) ? null : key + " is not a setting of this broker (a typo?)";
    }

    /** The parameter types stock RocketMQ converts a property to (MixAll.properties2Object); others it skips. */
    private static final Set<String> SETTABLE_TYPES = Set.of("int", "Integer", "long", "Long", "double", "Double",
        "float", "Float", "boolean", "Boolean", "String");

    /** Sets {@code value} through {@code m} on a new instance of the config class: null when it takes it. */
    private static String tryOnFreshCopy(Object config, Method m, String key, String value) {
        Object arg;
        String type = m.getParameterTypes()[0].getSimpleName();
        try {
            arg = switch (type) {
                case "int", "Integer" -> Integer.parseInt(value);
                case "long", "Long" -> Long.parseLong(value);
                case "double", "Double" -> Double.parseDouble(value);
                case "float", "Float" -> Float.parseFloat(value);
                case "boolean", "Boolean" -> {
                    if (!value.equals("true") && !value.equals("false")) {
                        throw new IllegalArgumentException();
                    }
                    yield Boolean.parseBoolean(value);
                }
                case "String" -> value.trim();
                default -> null;
            };
        } catch (IllegalArgumentException e) {
            return key + "=" + value + " is not " + (type.startsWith("b") || type.startsWith("B") ? "true or false"
                : "a number (" + type.toLowerCase(Locale.ROOT) + ")");
        }
        if (arg == null) {
            return key + " cannot be set at run time";
        }
        try {
            Object copy = config.getClass().getConstructor().newInstance();
            m.invoke(copy, arg);
            return null;
        } catch (InvocationTargetException e) {
            return key + "=" + value + " is not accepted: " + e.getCause();
        } catch (ReflectiveOperationException | RuntimeException e) {
            // No fresh copy can be made: the parse above is the whole check, as in stock RocketMQ.
            return null;
        }
    }

    /**
     * Applies {@code properties} to the live settings and writes the changed keys into the broker's file.
     *
     * @throws IllegalArgumentException with {@link #refusal} when a key may not change; nothing is applied
     */
    @Override
    public void update(Properties properties) {
        String refusal = refusal(properties);
        if (refusal != null) {
            LOG.warn("{} {}", prefix, refusal);
            throw new IllegalArgumentException(refusal);
        }
        updating.set(properties);
        try {
            super.update(properties);
        } finally {
            updating.remove();
        }
    }

    /**
     * Writes the keys of the update in progress on this thread into the broker's file (stock {@code update} calls
     * this once it applied them); outside an update it writes nothing.
     */
    @Override
    public void persist() {
        Properties changed = updating.get();
        if (changed == null) {
            LOG.info("{} {} is the user's configuration and is written by updateBrokerConfig only; not rewritten",
                prefix, file);
            return;
        }
        if (file == null) {
            LOG.warn("{} updateBrokerConfig {}: applied, not kept (the broker was started without a config file)",
                prefix, changed.stringPropertyNames());
            return;
        }
        Map<String, String> values = new TreeMap<>();
        for (String k : changed.stringPropertyNames()) {
            values.put(k, changed.getProperty(k));
        }
        writeLock.lock();
        try {
            BrokerConfFile.write(file, values);
            LOG.info("{} updateBrokerConfig {}: applied and written to {}", prefix, values.keySet(), file);
        } catch (IOException e) {
            LOG.error("{} updateBrokerConfig {}: applied, but {} could not be written: {}", prefix, values.keySet(),
                file, OneLine.of(String.valueOf(e)));
            throw new IllegalStateException("updateBrokerConfig: applied, but " + file + " could not be written: "
                + OneLine.of(String.valueOf(e)), e);
        } finally {
            writeLock.unlock();
        }
    }

    /** The live settings as {@code getBrokerConfig} reports them (see the class comment). */
    @Override
    public String getAllConfigsFormatString() {
        String live = super.getAllConfigsFormatString();
        if (live == null) {
            return null;
        }
        Properties p = MixAll.string2Properties(live);
        if (p == null) {
            return live;
        }
        return MixAll.properties2String(view(p), true);
    }

    /** {@code live} with the Raft log's view applied: the flag on, secrets masked. */
    static Properties view(Properties live) {
        Properties p = new Properties();
        p.putAll(live);
        p.setProperty("enableDLegerCommitLog", "true");
        for (String k : Set.copyOf(p.stringPropertyNames())) {
            if (isSecret(k) && !p.getProperty(k).isBlank()) {
                p.setProperty(k, MASK);
            }
        }
        return p;
    }

    /** Keys of ours whose values are secrets: shown masked. */
    static boolean isSecret(String key) {
        String k = key.toLowerCase(Locale.ROOT);
        return k.startsWith("raft") && (k.endsWith("secret") || k.endsWith("password") || k.endsWith("token"));
    }
}
