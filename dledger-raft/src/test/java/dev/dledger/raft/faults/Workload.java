package dev.dledger.raft.faults;

import dev.dledger.raft.client.RaftClient;
import dev.dledger.raft.statemachine.KeyValueStateMachine;
import dev.dledger.raft.transport.ClientProtocol;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The clients of a fault run against a key-value register group: writers set keys to values unique over the run
 * (one entry per append, sometimes a batch of a few), readers read keys with the linearizable query (with and
 * without the leader lease). Each client is a thread with its own {@link RaftClient} (its own client id, so its
 * retries are recognised), talking to the nodes directly. Besides the readers that look for the leader, one reader
 * per node asks only that node, once per read with a short timeout, as a client that keeps to the node it believes
 * leads: a deposed or paused leader gets reads sent after a new leader took writes. Every operation goes into the
 * {@link History}.
 *
 * <p>A client waits for each answer before the next operation; the client library retries an operation on other
 * nodes (same request id) within its attempts, and an operation that ends without an acknowledgement is recorded as
 * of unknown outcome.
 */
final class Workload {

    /** Per attempt; above the nodes' append timeout (3 s), so that a slow commit is answered, not cut short. */
    static final long REQUEST_TIMEOUT_MS = 4_000;
    /** Attempts per operation, across nodes and redirects. */
    static final int MAX_ATTEMPTS = 6;
    /** Per read of a reader that asks one node only. */
    static final long DIRECT_READ_TIMEOUT_MS = 1_000;
    /** Pause of a client after an operation that failed. */
    static final long BACKOFF_MS = 50;

    private final String group;
    private final Map<String, InetSocketAddress> nodes;
    private final History history;
    private final int writers;
    private final int readers;
    private final int keys;
    private final long seed;
    private final CountDownLatch stop = new CountDownLatch(1);
    private final List<Thread> threads = new ArrayList<>();
    private final List<Throwable> failures = new CopyOnWriteArrayList<>();

    Workload(String group, Map<String, InetSocketAddress> nodes, History history, int writers, int readers, int keys,
             long seed) {
        this.group = group;
        this.nodes = Map.copyOf(nodes);
        this.history = history;
        this.writers = writers;
        this.readers = readers;
        this.keys = keys;
        this.seed = seed;
    }

    /** Starts every client thread: the writers, the readers, and one reader per node that asks only that node. */
    void start() {
        List<String> ids = new ArrayList<>(new TreeSet<>(nodes.keySet()));
        for (int i = 0; i < writers + readers + ids.size(); i++) {
            int client = i;
            String name;
            Runnable body;
            if (i < writers + readers) {
                boolean writer = i < writers;
                name = (writer ? "writer-" : "reader-") + i;
                body = () -> runClient(client, writer, new RaftClient(group, nodes, REQUEST_TIMEOUT_MS, MAX_ATTEMPTS));
            } else {
                String id = ids.get(i - writers - readers);
                name = "reader-" + i + "-of-" + id;
                body = () -> runClient(client, false, new RaftClient(group, Map.of(id, nodes.get(id)),
                    DIRECT_READ_TIMEOUT_MS, 1));
            }
            Thread t = new Thread(body, name);
            t.setDaemon(true);
            threads.add(t);
            t.start();
        }
    }

    /** Asks every client to stop after its current operation. */
    void stop() {
        stop.countDown();
    }

    /**
     * Waits for the clients to finish their last operation.
     *
     * @return whether all finished within {@code timeoutMs}
     */
    boolean awaitStopped(long timeoutMs) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        for (Thread t : threads) {
            t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
            if (t.isAlive()) {
                return false;
            }
        }
        return true;
    }

    /** Unexpected errors of the client threads (not faults of the group: those end as unknown outcomes). */
    List<Throwable> failures() {
        return failures;
    }

    private void runClient(int client, boolean writer, RaftClient raft) {
        Random random = new Random(seed * 31 + client);
        try (raft) {
            long seq = 0;
            boolean answered;
            while (stop.getCount() > 0) {
                String key = "k" + random.nextInt(keys);
                if (writer) {
                    int batch = random.nextInt(100) < 15 ? 2 + random.nextInt(3) : 1;
                    List<String> values = new ArrayList<>(batch);
                    List<byte[]> bodies = new ArrayList<>(batch);
                    for (int i = 0; i < batch; i++) {
                        String value = "c" + client + "-" + seq++;
                        values.add(value);
                        bodies.add(KeyValueStateMachine.set(key, value));
                    }
                    answered = write(raft, client, key, values, bodies);
                } else {
                    answered = read(raft, client, key, random.nextBoolean());
                }
                if (!answered) {
                    // Back off a little after a failure (a stopped node refuses connections at once); ends on stop.
                    stop.await(BACKOFF_MS, TimeUnit.MILLISECONDS);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            failures.add(e);
        }
    }

    private boolean write(RaftClient raft, int client, String key, List<String> values, List<byte[]> bodies)
        throws InterruptedException {
        long start = System.nanoTime();
        ClientProtocol.Response r = null;
        try {
            r = raft.append(bodies).get();
        } catch (ExecutionException e) {
            // no answer after every attempt: the outcome is unknown
        }
        long end = System.nanoTime();
        boolean ok = r != null && r.status() == ClientProtocol.Status.OK;
        for (int i = 0; i < values.size(); i++) {
            history.write(new History.Write(client, key, values.get(i), start, end,
                ok ? History.Outcome.OK : History.Outcome.UNKNOWN, ok ? r.index() + i : -1));
        }
        return ok;
    }

    private boolean read(RaftClient raft, int client, String key, boolean lease) throws InterruptedException {
        long start = System.nanoTime();
        ClientProtocol.Response r = null;
        try {
            r = raft.query(KeyValueStateMachine.get(key), lease).get();
        } catch (ExecutionException e) {
            // no answer: says nothing
        }
        long end = System.nanoTime();
        String detail = (lease ? "lease" : "read index") + (r == null ? "" : " at " + r.leaderHint());
        if (r != null && r.status() == ClientProtocol.Status.OK) {
            history.read(new History.Read(client, key, new String(r.result(), StandardCharsets.UTF_8), start, end,
                detail));
        } else if (r != null && r.status() == ClientProtocol.Status.NOT_FOUND) {
            history.read(new History.Read(client, key, null, start, end, detail));
        } else {
            history.failedRead(start);
            return false;
        }
        return true;
    }
}
