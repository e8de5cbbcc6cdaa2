package dev.dledger.raft.core;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * A few cores wired by a hand-driven network for scenario tests: every Ready is handled as its contract says
 * (persist, then send, then apply, then advance), messages wait in one queue until delivered, and a test decides
 * what is dropped or cut off.
 */
final class CoreCluster {

    final Map<String, RaftNode> nodes = new LinkedHashMap<>();
    final Map<String, MemoryLog> logs = new LinkedHashMap<>();
    final Map<String, HardState> hardStates = new LinkedHashMap<>();
    final Map<String, List<Entry>> applied = new LinkedHashMap<>();
    final Map<String, List<ReadState>> reads = new LinkedHashMap<>();
    final Map<String, List<Ready>> readies = new LinkedHashMap<>();
    final Deque<Message> network = new ArrayDeque<>();
    final List<Message> delivered = new ArrayList<>();
    final Set<String> isolated = new HashSet<>();
    Predicate<Message> drop = m -> false;
    private final Function<String, RaftConfig> configs;
    private final Membership membership;

    CoreCluster(Function<String, RaftConfig> configs, String... ids) {
        this.configs = configs;
        this.membership = Membership.of(ids);
        for (String id : ids) {
            logs.put(id, new MemoryLog());
            hardStates.put(id, HardState.INITIAL);
            start(id, InitialState.bootstrap(membership));
        }
    }

    /** Three nodes a, b, c with small timeouts: election 10 ticks, heartbeat 2. */
    static CoreCluster ofThree() {
        return new CoreCluster(id -> RaftConfig.defaults(id).withTimeouts(10, 2), "a", "b", "c");
    }

    void start(String id, InitialState initial) {
        Random random = new Random(id.hashCode());
        nodes.put(id, new RaftNode(configs.apply(id), logs.get(id), initial, random::nextInt, CoreLog.NONE));
        applied.putIfAbsent(id, new ArrayList<>());
        reads.putIfAbsent(id, new ArrayList<>());
        readies.putIfAbsent(id, new ArrayList<>());
    }

    /** Restarts a node from what it persisted: term, vote and log survive, everything else is rebuilt. */
    void restart(String id) {
        MemoryLog log = logs.get(id);
        List<Entry> configs = new ArrayList<>();
        for (Entry e : log.entries) {
            if (e.type() == EntryType.CONFIG) {
                configs.add(e);
            }
        }
        Membership base = log.snapshot.index() >= 0 ? log.snapshot.membership() : membership;
        applied.get(id).clear();
        start(id, new InitialState(hardStates.get(id), base, configs, -1, log.snapshot.index()));
    }

    RaftNode node(String id) {
        return nodes.get(id);
    }

    /** Handles every pending Ready of every node; messages go to the network queue. */
    void flush() {
        boolean again = true;
        while (again) {
            again = false;
            for (Map.Entry<String, RaftNode> e : nodes.entrySet()) {
                while (e.getValue().hasReady()) {
                    handle(e.getKey(), e.getValue());
                    again = true;
                }
            }
        }
    }

    private void handle(String id, RaftNode n) {
        Ready rd = n.ready();
        MemoryLog log = logs.get(id);
        ReadyHandler.handle(n, rd, new ReadyHandler() {
            @Override
            public void begin(Ready r) {
                readies.get(id).add(r);
            }

            @Override
            public void saveHardState(HardState hs) {
                hardStates.put(id, hs);
            }

            @Override
            public void installSnapshot(SnapshotMeta snapshot) {
                log.install(snapshot);
            }

            @Override
            public void truncateFrom(long index) {
                log.truncateFrom(index);
            }

            @Override
            public void append(List<Entry> entries) {
                log.append(entries);
            }

            @Override
            public void send(Message m) {
                network.addLast(m instanceof InstallSnapshotRequest s ? s.withData(new byte[] {1}) : m);
            }

            @Override
            public void apply(List<Entry> committed) {
                applied.get(id).addAll(committed);
            }

            @Override
            public void readsConfirmed(List<ReadState> confirmed) {
                reads.get(id).addAll(confirmed);
            }
        }, true);
    }

    /** Delivers queued messages (and what they cause) until the network is quiet. */
    void deliverAll() {
        flush();
        while (!network.isEmpty()) {
            Message m = network.pollFirst();
            if (isolated.contains(m.from()) || isolated.contains(m.to()) || drop.test(m) || !nodes.containsKey(m.to())) {
                continue;
            }
            delivered.add(m);
            nodes.get(m.to()).step(m);
            flush();
        }
    }

    /** Ticks every node once, then delivers. */
    void tick() {
        for (RaftNode n : nodes.values()) {
            n.tick();
        }
        deliverAll();
    }

    void tick(int times) {
        for (int i = 0; i < times; i++) {
            tick();
        }
    }

    /** Ticks until {@code done} holds; fails after {@code maxTicks}. */
    void tickUntil(BooleanSupplier done, int maxTicks) {
        for (int i = 0; i < maxTicks; i++) {
            if (done.getAsBoolean()) {
                return;
            }
            tick();
        }
        if (!done.getAsBoolean()) {
            throw new AssertionError("condition not reached within " + maxTicks + " ticks");
        }
    }

    /** The single leader of the highest term, or null. */
    RaftNode leader() {
        RaftNode best = null;
        for (RaftNode n : nodes.values()) {
            if (n.role() == Role.LEADER && (best == null || n.term() > best.term())) {
                best = n;
            }
        }
        return best;
    }

    RaftNode electLeader() {
        tickUntil(() -> leader() != null && leader().commitIndex() >= leader().lastIndex(), 200);
        return leader();
    }

    List<RaftNode> followersOf(RaftNode leader) {
        List<RaftNode> out = new ArrayList<>();
        for (RaftNode n : nodes.values()) {
            if (n != leader) {
                out.add(n);
            }
        }
        return out;
    }

    ProposeResult propose(RaftNode n, String text) {
        ProposeResult r = n.propose(text.getBytes());
        deliverAll();
        return r;
    }

    long countDelivered(Class<? extends Message> type, String to) {
        return delivered.stream().filter(m -> type.isInstance(m) && m.to().equals(to)).count();
    }
}
