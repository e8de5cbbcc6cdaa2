package dev.dledger.raft.faults;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A fault-injecting TCP proxy on loopback: it listens on one port and forwards every connection to one target, and
 * can be told at run time to refuse, stall one or both directions, delay, or pass everything again.
 *
 * <p>One instance stands for one directed link, e.g. node i's address for peer j: node i is given the proxy's port
 * in its peer list instead of node j's, so cutting this proxy cuts what i sends to j and nothing else. (Raft messages
 * are one-way: j answers i on its own connection to i, through the proxy of the link j-&gt;i.)
 *
 * <p>The faults, each set by one method and all cleared by {@link #heal()}:
 * <ul>
 *   <li>{@link #drop()}: every open connection is reset now, and new ones are accepted and reset at once, until
 *   healed (a partition that the sender notices as broken connections);</li>
 *   <li>{@link #stall(Direction)}: no byte moves in that direction; connections stay open and new ones are
 *   accepted, so the sender's buffers fill up, as behind a silently lost route. Bytes already read are held, not
 *   lost: after {@link #heal()} they arrive in order, so a TCP stream is never corrupted. {@link #blackhole()}
 *   stalls both directions;</li>
 *   <li>{@link #delay(long)}: every chunk of bytes is forwarded that many milliseconds after it was read, in order,
 *   in both directions (latency, not a throughput limit).</li>
 * </ul>
 * {@link #set(State)} puts a combination in force at once (what {@link ProxyMesh} uses to compose overlapping
 * faults). A connection whose target cannot be reached (a stopped node) is closed at once; the caller retries as it would
 * against the node itself.
 *
 * <p>Thread safety: every method may be called from any thread. Each connection uses four daemon threads (a reader
 * and a writer per direction); at most {@link #MAX_BUFFERED_BYTES} are held per direction of a connection. The proxy
 * logs nothing; {@link #toString()} and the counters describe its state.
 */
public final class FaultProxy implements AutoCloseable {

    /** Which way the bytes go through the proxy. */
    public enum Direction {
        /** From the connecting side to the target (what node i sends to peer j). */
        TO_TARGET,
        /** From the target back to the connecting side (answers on the same connection). */
        FROM_TARGET
    }

    /** At most this many bytes are read ahead and held per direction of a connection (delay or stall). */
    public static final int MAX_BUFFERED_BYTES = 1 << 20;
    private static final int CHUNK_BYTES = 64 * 1024;
    private static final int CONNECT_TIMEOUT_MS = 1_000;

    /**
     * The faults of a proxy, as a whole (see {@link #set(State)}).
     *
     * @param dropping  reset connections (the stalls and delay are then moot)
     * @param stallTo   hold the bytes toward the target
     * @param stallFrom hold the bytes from the target
     * @param delayMs   milliseconds of latency per chunk, both ways; 0 for none
     */
    public record State(boolean dropping, boolean stallTo, boolean stallFrom, long delayMs) {

        /** Nothing in force. */
        public static final State HEALED = new State(false, false, false, 0);

        public State {
            if (delayMs < 0) {
                throw new IllegalArgumentException("negative delay " + delayMs + " ms");
            }
        }

        boolean stalled(Direction d) {
            return d == Direction.TO_TARGET ? stallTo : stallFrom;
        }

        @Override
        public String toString() {
            if (this.equals(HEALED)) {
                return "healed";
            }
            StringBuilder b = new StringBuilder();
            if (dropping) {
                b.append("drop ");
            }
            if (stallTo && stallFrom) {
                b.append("blackhole ");
            } else if (stallTo) {
                b.append("stall-to-target ");
            } else if (stallFrom) {
                b.append("stall-from-target ");
            }
            if (delayMs > 0) {
                b.append("delay ").append(delayMs).append("ms ");
            }
            return b.toString().trim();
        }
    }

    private final String name;
    private final InetSocketAddress target;
    private final ServerSocket server;
    private final Thread acceptor;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final Set<Link> links = ConcurrentHashMap.newKeySet();
    private final AtomicLong accepted = new AtomicLong();
    private final AtomicLong reset = new AtomicLong();
    private final AtomicLong bytesTo = new AtomicLong();
    private final AtomicLong bytesFrom = new AtomicLong();
    private volatile State state = State.HEALED;
    private volatile boolean closed;

    private FaultProxy(String name, int port, InetSocketAddress target) throws IOException {
        this.name = name;
        this.target = target;
        this.server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 128);
        this.acceptor = new Thread(this::acceptLoop, "fault-proxy " + name + " accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /**
     * Starts a proxy on a free loopback port.
     *
     * @param name   how the link is named in {@link #toString()} and thread names, e.g. {@code n0->n1}
     * @param target where connections are forwarded; it need not be listening yet
     * @return the running proxy, passing everything
     * @throws UncheckedIOException if no port can be bound
     */
    public static FaultProxy start(String name, InetSocketAddress target) {
        return start(name, 0, target);
    }

    /**
     * Starts a proxy on the given loopback port.
     *
     * @param name   how the link is named, e.g. {@code n0->n1}
     * @param port   the port to listen on, 0 for a free one
     * @param target where connections are forwarded; it need not be listening yet
     * @return the running proxy, passing everything
     * @throws UncheckedIOException if the port cannot be bound (naming the proxy and the port)
     */
    public static FaultProxy start(String name, int port, InetSocketAddress target) {
        try {
            return new FaultProxy(name, port, target);
        } catch (IOException e) {
            throw new UncheckedIOException("fault proxy " + name + ": cannot listen on loopback port " + port, e);
        }
    }

    /** The port it listens on (loopback). */
    public int port() {
        return server.getLocalPort();
    }

    /** The address it listens on, {@code 127.0.0.1:port}. */
    public InetSocketAddress address() {
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), port());
    }

    /** Where it forwards to. */
    public InetSocketAddress target() {
        return target;
    }

    /** The link's name given at start. */
    public String name() {
        return name;
    }

    /** Passes everything again, at once and without delay; stalled bytes are then delivered in order. */
    public void heal() {
        update(State.HEALED);
    }

    /** Resets every open connection and resets new ones as soon as they are accepted, until {@link #heal()}. */
    public void drop() {
        set(new State(true, false, false, 0));
    }

    /** Stalls one direction only (the other one still passes, with the current delay). */
    public void stall(Direction direction) {
        State s = state;
        update(new State(false, direction == Direction.TO_TARGET || s.stallTo,
            direction == Direction.FROM_TARGET || s.stallFrom, s.delayMs));
    }

    /** Stalls both directions: connections stay open (and new ones are accepted) but no byte moves. */
    public void blackhole() {
        update(new State(false, true, true, state.delayMs));
    }

    /**
     * Forwards each chunk {@code delayMs} after it was read, in both directions; 0 removes the delay. Stalls stay.
     *
     * @throws IllegalArgumentException if {@code delayMs} is negative
     */
    public void delay(long delayMs) {
        if (delayMs < 0) {
            throw new IllegalArgumentException("fault proxy " + name + ": negative delay " + delayMs + " ms");
        }
        State s = state;
        update(new State(s.dropping, s.stallTo, s.stallFrom, delayMs));
    }

    /**
     * Puts exactly these faults in force, at once: open connections are reset if {@code state} drops, and bytes
     * held by a stall that {@code state} lifts are delivered.
     */
    public void set(State next) {
        update(next);
        if (next.dropping) {
            for (Link l : links) {
                l.close(true);
            }
        }
    }

    /** The faults in force now. */
    public State state() {
        return state;
    }

    /** True while nothing is in force (the state after {@link #heal()}). */
    public boolean healed() {
        return state.equals(State.HEALED);
    }

    /** Connections accepted so far, including those reset at once while dropping. */
    public long acceptedConnections() {
        return accepted.get();
    }

    /** Connections reset so far, by {@link #drop()} or because they were accepted while dropping. */
    public long resetConnections() {
        return reset.get();
    }

    /** Bytes delivered so far in one direction. */
    public long bytesForwarded(Direction direction) {
        return direction == Direction.TO_TARGET ? bytesTo.get() : bytesFrom.get();
    }

    /** Connections open now. */
    public int openConnections() {
        return links.size();
    }

    /** Stops listening and closes every connection; idempotent. */
    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // closing the listening socket
        }
        for (Link l : links) {
            l.close(false);
        }
        signal();
    }

    @Override
    public String toString() {
        return "FaultProxy[" + name + " :" + port() + " -> " + target.getPort() + ", " + state + ", "
            + links.size() + " open]";
    }

    private void update(State next) {
        lock.lock();
        try {
            state = next;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private void signal() {
        update(state);
    }

    private void acceptLoop() {
        while (!closed) {
            Socket in;
            try {
                in = server.accept();
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                continue;
            }
            accepted.incrementAndGet();
            if (state.dropping) {
                reset.incrementAndGet();
                resetQuietly(in);
                continue;
            }
            Thread connector = new Thread(() -> connect(in), "fault-proxy " + name + " connect");
            connector.setDaemon(true);
            connector.start();
        }
    }

    private void connect(Socket in) {
        Socket out = new Socket();
        try {
            out.setTcpNoDelay(true);
            in.setTcpNoDelay(true);
            out.connect(target, CONNECT_TIMEOUT_MS);
        } catch (IOException e) {
            closeQuietly(out);
            resetQuietly(in);
            return;
        }
        Link link = new Link(in, out);
        links.add(link);
        if (state.dropping || closed) {
            link.close(true);
            return;
        }
        link.start();
    }

    /** One proxied connection: two sockets and a pump per direction. */
    private final class Link {
        private final Socket in;
        private final Socket out;
        private final AtomicInteger ended = new AtomicInteger();
        private volatile boolean done;

        Link(Socket in, Socket out) {
            this.in = in;
            this.out = out;
        }

        void start() {
            try {
                new Pump(this, Direction.TO_TARGET, in.getInputStream(), out.getOutputStream()).start();
                new Pump(this, Direction.FROM_TARGET, out.getInputStream(), in.getOutputStream()).start();
            } catch (IOException e) {
                close(false);
            }
        }

        void close(boolean abort) {
            if (done) {
                return;
            }
            done = true;
            links.remove(this);
            if (abort) {
                reset.incrementAndGet();
                resetQuietly(in);
                resetQuietly(out);
            } else {
                closeQuietly(in);
                closeQuietly(out);
            }
            signal();
        }
    }

    /** A chunk read at {@code readNanos}. */
    private record Chunk(byte[] bytes, long readNanos) {
    }

    /** Moves bytes one way: a reader fills a bounded queue, a writer drains it when the faults allow. */
    private final class Pump {
        private final Link link;
        private final Direction direction;
        private final InputStream from;
        private final OutputStream to;
        private final ArrayDeque<Chunk> queue = new ArrayDeque<>();
        private long queuedBytes;
        private boolean eof;

        Pump(Link link, Direction direction, InputStream from, OutputStream to) {
            this.link = link;
            this.direction = direction;
            this.from = from;
            this.to = to;
        }

        void start() {
            String suffix = direction == Direction.TO_TARGET ? " >>" : " <<";
            Thread reader = new Thread(this::readLoop, "fault-proxy " + name + suffix + " read");
            Thread writer = new Thread(this::writeLoop, "fault-proxy " + name + suffix + " write");
            reader.setDaemon(true);
            writer.setDaemon(true);
            reader.start();
            writer.start();
        }

        private void readLoop() {
            byte[] buf = new byte[CHUNK_BYTES];
            try {
                while (!link.done) {
                    awaitReadable();
                    if (link.done) {
                        return;
                    }
                    int n = from.read(buf);
                    lock.lock();
                    try {
                        if (n < 0) {
                            eof = true;
                        } else {
                            queue.addLast(new Chunk(Arrays.copyOf(buf, n), System.nanoTime()));
                            queuedBytes += n;
                        }
                        changed.signalAll();
                    } finally {
                        lock.unlock();
                    }
                    if (n < 0) {
                        return;
                    }
                }
            } catch (IOException e) {
                link.close(false);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                link.close(false);
            }
        }

        /** Waits while this direction is stalled or its buffer is full. */
        private void awaitReadable() throws InterruptedException {
            lock.lock();
            try {
                while (!link.done && (state.stalled(direction) || queuedBytes >= MAX_BUFFERED_BYTES)) {
                    changed.await(100, TimeUnit.MILLISECONDS);
                }
            } finally {
                lock.unlock();
            }
        }

        private void writeLoop() {
            try {
                while (true) {
                    Chunk c = awaitWritable();
                    if (c == null) {
                        if (eof && !link.done) {
                            halfClose();
                        }
                        return;
                    }
                    to.write(c.bytes());
                    to.flush();
                    (direction == Direction.TO_TARGET ? bytesTo : bytesFrom).addAndGet(c.bytes().length);
                }
            } catch (IOException e) {
                link.close(false);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                link.close(false);
            }
        }

        /** The next chunk once it is due and the direction is not stalled; null at end of stream or on close. */
        private Chunk awaitWritable() throws InterruptedException {
            lock.lock();
            try {
                while (true) {
                    if (link.done) {
                        return null;
                    }
                    Chunk head = queue.peekFirst();
                    if (head == null) {
                        if (eof) {
                            return null;
                        }
                        changed.await(100, TimeUnit.MILLISECONDS);
                        continue;
                    }
                    State s = state;
                    if (s.stalled(direction)) {
                        changed.await(100, TimeUnit.MILLISECONDS);
                        continue;
                    }
                    long waitNanos = head.readNanos() + TimeUnit.MILLISECONDS.toNanos(s.delayMs) - System.nanoTime();
                    if (waitNanos > 0) {
                        changed.awaitNanos(waitNanos);
                        continue;
                    }
                    queue.pollFirst();
                    queuedBytes -= head.bytes().length;
                    changed.signalAll();
                    return head;
                }
            } finally {
                lock.unlock();
            }
        }

        /** The source ended its stream: pass the end on, and close the link once both directions ended. */
        private void halfClose() {
            try {
                (direction == Direction.TO_TARGET ? link.out : link.in).shutdownOutput();
            } catch (IOException e) {
                link.close(false);
                return;
            }
            if (link.ended.incrementAndGet() == 2) {
                link.close(false);
            }
        }
    }

    private static void resetQuietly(Socket s) {
        try {
            s.setSoLinger(true, 0);
        } catch (SocketException ignored) {
            // already closed
        }
        closeQuietly(s);
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // closing
        }
    }
}
