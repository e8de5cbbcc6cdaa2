package dev.dledger.raft.client;

import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.transport.ClientProtocol;
import dev.dledger.raft.transport.ClientProtocol.Request;
import dev.dledger.raft.transport.ClientProtocol.Response;
import dev.dledger.raft.transport.ClientProtocol.Status;
import dev.dledger.raft.transport.BatchingWriter;
import dev.dledger.raft.transport.Frame;
import dev.dledger.raft.transport.Handshake;
import dev.dledger.raft.transport.NettyIo;
import dev.dledger.raft.transport.TlsSettings;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A client of one group: finds the leader, follows "not leader" redirects, and retries a bounded number of times.
 *
 * <p>Retries never duplicate an append: every append carries a request id (a random 64-bit client id chosen per
 * instance and a sequence number per entry), which the group keeps in its log, and a leader that gets a request id it
 * took before answers with the original's outcome instead of appending again. So an append is retried, within the
 * bounded attempts, also when it may have been taken: no answer in time, the connection broke, or the answer was
 * TIMEOUT, LOST or STOPPED. An answer EXPIRED means the leader could not tell (the retry came too late); it is not
 * retried.
 *
 * <p>Thread-safe; all futures complete on the client's I/O thread.
 */
public final class RaftClient implements AutoCloseable {

    private final String group;
    private final List<String> ids;
    private final Map<String, InetSocketAddress> peers;
    private final long requestTimeoutMs;
    private final int maxAttempts;
    private final String token;
    private final SslContext ssl;
    private final EventLoopGroup io = NettyIo.group(1);
    private final Map<String, Connection> connections = new ConcurrentHashMap<>();
    private final AtomicLong requestIds = new AtomicLong();
    private final long clientId = new SecureRandom().nextLong();
    private final AtomicLong seqs = new AtomicLong();
    private volatile String leader;
    private volatile int rotate;

    /** A failure to reach any node, or a refusal with a reason. */
    public static final class ClientException extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final boolean sent;
        private final boolean authentication;

        ClientException(String message, boolean sent, boolean authentication) {
            super(message);
            this.sent = sent;
            this.authentication = authentication;
        }

        /** Whether the request may have reached a node (then an append's outcome is unknown). */
        public boolean maybeSent() {
            return sent;
        }

        /**
         * Whether a node refused this client's credentials (missing or wrong token, TLS refused) or refused to serve
         * the request to it at all (its client API is off or admin only): not retried, as another node would refuse
         * it too.
         */
        public boolean authenticationFailed() {
            return authentication;
        }
    }

    /**
     * Creates a client.
     *
     * @param group            the group
     * @param peers            every node of the group by id, in the {@code id-host:port;...} order of the config
     * @param requestTimeoutMs how long to wait for one answer
     * @param maxAttempts      how many nodes to try per call (redirects included)
     */
    public RaftClient(String group, Map<String, InetSocketAddress> peers, long requestTimeoutMs, int maxAttempts) {
        this(group, peers, requestTimeoutMs, maxAttempts, null, null);
    }

    /**
     * Creates a client of a secured group.
     *
     * @param group            the group
     * @param peers            every node of the group by id, in the {@code id-host:port;...} order of the config
     * @param requestTimeoutMs how long to wait for one answer (and for a connection's handshake)
     * @param maxAttempts      how many nodes to try per call (redirects included)
     * @param token            the nodes' client token, proved on each connection without sending it; null for none
     * @param tls              mutual TLS to the nodes (a key store is then needed: nodes ask for a certificate);
     *                         null for none
     * @throws IllegalArgumentException if the TLS stores cannot be read
     */
    public RaftClient(String group, Map<String, InetSocketAddress> peers, long requestTimeoutMs, int maxAttempts,
                      String token, TlsSettings tls) {
        if (peers.isEmpty()) {
            throw new IllegalArgumentException("no peers");
        }
        this.group = group;
        this.peers = new LinkedHashMap<>(peers);
        this.ids = new ArrayList<>(peers.keySet());
        this.requestTimeoutMs = requestTimeoutMs;
        this.maxAttempts = maxAttempts;
        this.token = token;
        this.ssl = tls == null ? null : tls.clientContext();
        long sweepMs = Math.max(1, Math.min(100, requestTimeoutMs / 10));
        io.scheduleAtFixedRate(this::expire, sweepMs, sweepMs, TimeUnit.MILLISECONDS);
    }

    /** Fails the requests that waited longer than the request timeout for their answer; on the I/O thread. */
    private void expire() {
        long now = System.nanoTime();
        for (Connection c : connections.values()) {
            c.expire(now);
        }
    }

    /** The leader this client last found, or null. */
    public String leader() {
        return leader;
    }

    /** Appends one entry at the leader; completes when it is committed. */
    public CompletableFuture<Response> append(byte[] body) {
        return append(List.of(body));
    }

    /**
     * Appends entries as one batch with consecutive indexes; completes when all are committed. Retried as the class
     * describes; at most once in the log whatever the retries.
     */
    public CompletableFuture<Response> append(List<byte[]> bodies) {
        if (bodies.isEmpty()) {
            throw new IllegalArgumentException("an append needs at least one entry");
        }
        return toLeader(Request.append(bodies, new RequestId(clientId, seqs.getAndAdd(bodies.size()))));
    }

    /** Reads the committed entry at {@code index} from the leader; NOT_FOUND when it is not committed there. */
    public CompletableFuture<Response> get(long index) {
        return toLeader(Request.get(index));
    }

    /** A linearizable read barrier at the leader: the answer's index is applied there. */
    public CompletableFuture<Response> readIndex(boolean lease) {
        return toLeader(Request.readIndex(lease));
    }

    /**
     * A linearizable query of the leader's state machine: OK with {@link Response#result()} holding the answer,
     * NOT_FOUND when the state machine had none, INVALID when it serves no queries or refused this one.
     *
     * @param lease let the leader answer under its lease, without a heartbeat round
     */
    public CompletableFuture<Response> query(byte[] query, boolean lease) {
        return toLeader(Request.query(query, lease));
    }

    /** Asks the leader to hand leadership to {@code target}. */
    public CompletableFuture<Response> leadershipTransfer(String target) {
        return toLeader(Request.peerOp(ClientProtocol.Op.TRANSFER, target));
    }

    /** Asks the leader to add or remove a voter. */
    public CompletableFuture<Response> changeMembership(String peer, boolean add) {
        return toLeader(Request.peerOp(add ? ClientProtocol.Op.ADD_VOTER : ClientProtocol.Op.REMOVE_VOTER, peer));
    }

    /** Asks one node for its view (role, term, indexes, followers' match indexes). */
    public CompletableFuture<Response> metadata(String node) {
        return call(node, ClientProtocol.encode(Request.metadata()));
    }

    private CompletableFuture<Response> toLeader(Request req) {
        CompletableFuture<Response> result = new CompletableFuture<>();
        attempt(ClientProtocol.encode(req), 0, result);
        return result;
    }

    /**
     * Sends {@code body} to the leader as far as known. Every request may be sent again: reads and admin calls change
     * nothing twice, and every append carries its request id, so a node that took it answers with the original.
     */
    private void attempt(byte[] body, int attempt, CompletableFuture<Response> result) {
        String target = leader;
        if (target == null) {
            target = ids.get(Math.floorMod(rotate, ids.size()));
        }
        String node = target;
        call(node, body).whenComplete((resp, error) -> {
            if (error != null) {
                leader = null;
                rotate++;
                boolean refused = error instanceof ClientException ce && ce.authenticationFailed();
                if (refused || attempt + 1 >= maxAttempts) {
                    result.completeExceptionally(error);
                } else {
                    retryLater(body, attempt, result);
                }
                return;
            }
            Status s = resp.status();
            boolean notTaken = s == Status.NOT_LEADER || s == Status.TRANSFERRING || s == Status.OVERLOADED;
            boolean maybeTaken = s == Status.TIMEOUT || s == Status.LOST || s == Status.STOPPED;
            if (notTaken || maybeTaken) {
                String hint = resp.leaderHint();
                boolean followHint = s != Status.TRANSFERRING && s != Status.OVERLOADED && s != Status.STOPPED
                    && hint != null && peers.containsKey(hint);
                if (followHint) {
                    leader = hint;
                } else {
                    leader = null;
                    rotate++;
                }
                if (attempt + 1 >= maxAttempts) {
                    result.complete(resp);
                } else {
                    retryLater(body, attempt, result);
                }
                return;
            }
            leader = node;
            result.complete(resp);
        });
    }

    private void retryLater(byte[] body, int attempt, CompletableFuture<Response> result) {
        long backoffMs = Math.min(200, 10L << Math.min(attempt, 4));
        io.schedule(() -> attempt(body, attempt + 1, result), backoffMs, TimeUnit.MILLISECONDS);
    }

    private CompletableFuture<Response> call(String node, byte[] body) {
        CompletableFuture<Response> f = new CompletableFuture<>();
        InetSocketAddress address = peers.get(node);
        if (address == null) {
            f.completeExceptionally(new ClientException("unknown node " + node, false, false));
            return f;
        }
        connections.computeIfAbsent(node, n -> new Connection(n, address)).send(body, f);
        return f;
    }

    @Override
    public void close() {
        for (Connection c : connections.values()) {
            c.close();
        }
        io.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        for (Connection c : connections.values()) {
            c.failAll("client closed");
        }
    }

    /** A request sent and not yet answered: its future and when it times out ({@link System#nanoTime()}). */
    private record Waiting(CompletableFuture<Response> future, long deadlineNanos) {
    }

    private final class Connection {
        private final String node;
        private final InetSocketAddress address;
        private final Map<Long, Waiting> inflight = new ConcurrentHashMap<>();
        /** The channel once connected (and past TLS and the token handshake when set); replaced after a failure. */
        private CompletableFuture<Channel> ready;
        private Channel channel;
        /** The writer of the usable channel, or null before the first one is usable. */
        private volatile BatchingWriter writer;

        Connection(String node, InetSocketAddress address) {
            this.node = node;
            this.address = address;
        }

        void send(byte[] body, CompletableFuture<Response> f) {
            BatchingWriter w = writer;
            if (w != null && w.channel().isActive()) {
                // The usual case: connected; no lock, and the frame joins the others on their way out.
                sendOn(w, body, f);
                return;
            }
            CompletableFuture<Channel> usable;
            synchronized (this) {
                boolean broken = ready == null || ready.isCompletedExceptionally()
                    || ready.isDone() && !ready.getNow(null).isActive();
                if (broken) {
                    ready = open();
                }
                usable = ready;
            }
            usable.whenComplete((ch, error) -> {
                if (error != null) {
                    f.completeExceptionally(error instanceof ClientException ? error
                        : new ClientException("cannot reach " + address + ": " + error.getMessage(), false, false));
                    return;
                }
                sendOn(writerOf(ch), body, f);
            });
        }

        /** The writer of {@code ch}, made once per channel. */
        private synchronized BatchingWriter writerOf(Channel ch) {
            BatchingWriter w = writer;
            if (w == null || w.channel() != ch) {
                w = new BatchingWriter(ch);
                writer = w;
            }
            return w;
        }

        private void sendOn(BatchingWriter w, byte[] body, CompletableFuture<Response> f) {
            long rid = requestIds.incrementAndGet();
            inflight.put(rid, new Waiting(f, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(requestTimeoutMs)));
            w.write(new Frame(Frame.Kind.REQUEST, rid, group, body).encode(), done -> {
                if (!done.isSuccess() && inflight.remove(rid) != null) {
                    f.completeExceptionally(new ClientException("write to " + address + " failed", false, false));
                }
            });
        }

        /** Fails the requests whose deadline passed. */
        void expire(long now) {
            for (Map.Entry<Long, Waiting> e : inflight.entrySet()) {
                Waiting waiting = e.getValue();
                if (now - waiting.deadlineNanos() >= 0 && inflight.remove(e.getKey(), waiting)) {
                    waiting.future().completeExceptionally(new ClientException("no answer from " + address
                        + " within " + requestTimeoutMs + " ms", true, false));
                }
            }
        }

        /** Connects, then runs TLS and the token handshake when configured; the future gives the usable channel. */
        private CompletableFuture<Channel> open() {
            CompletableFuture<Channel> result = new CompletableFuture<>();
            ResponseHandler handler = new ResponseHandler(result);
            ChannelFuture cf = new Bootstrap().group(io).channel(NettyIo.socketChannel())
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(requestTimeoutMs, 3000))
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        if (ssl != null) {
                            ch.pipeline().addLast(ssl.newHandler(ch.alloc(), address.getHostString(),
                                address.getPort()));
                        }
                        ch.pipeline().addLast(new FlushConsolidationHandler(256, true))
                            .addLast(new LengthFieldBasedFrameDecoder(Integer.MAX_VALUE, 0, 4, 0, 4))
                            .addLast(handler);
                    }
                }).connect(address);
            channel = cf.channel();
            cf.addListener(done -> {
                if (!done.isSuccess()) {
                    result.completeExceptionally(new ClientException("cannot connect to " + address + ": "
                        + done.cause().getMessage(), false, false));
                    return;
                }
                SslHandler tls = cf.channel().pipeline().get(SslHandler.class);
                if (tls == null) {
                    handler.connected(cf.channel());
                    return;
                }
                tls.handshakeFuture().addListener(h -> {
                    if (h.isSuccess()) {
                        handler.connected(cf.channel());
                    } else {
                        result.completeExceptionally(new ClientException("TLS handshake with " + address
                            + " failed: " + h.cause().getMessage(), false, true));
                    }
                });
            });
            io.schedule(() -> {
                if (result.completeExceptionally(new ClientException("no handshake with " + address + " within "
                    + requestTimeoutMs + " ms", false, false))) {
                    cf.channel().close();
                }
            }, requestTimeoutMs, TimeUnit.MILLISECONDS);
            return result;
        }

        void failAll(String why) {
            inflight.entrySet().removeIf(e -> {
                e.getValue().future().completeExceptionally(new ClientException(why, true, false));
                return true;
            });
        }

        synchronized void close() {
            if (channel != null) {
                channel.close();
            }
        }

        private final class ResponseHandler extends SimpleChannelInboundHandler<ByteBuf> {
            private final CompletableFuture<Channel> ready;
            private Handshake.Hello hello;
            private boolean serverFailed;
            private String failure;

            ResponseHandler(CompletableFuture<Channel> ready) {
                this.ready = ready;
            }

            /** The socket (and TLS) is up: usable at once without a token, after the handshake with one. */
            void connected(Channel ch) {
                if (token == null) {
                    ready.complete(ch);
                    return;
                }
                hello = new Handshake.Hello(Handshake.Role.CLIENT, Handshake.nonce(), Long.toHexString(clientId), node);
                ch.writeAndFlush(Unpooled.wrappedBuffer(new Frame(Frame.Kind.HELLO, 0, group, hello.encode()).encode()));
            }

            @Override
            protected void channelRead0(ChannelHandlerContext ctx, ByteBuf msg) {
                Frame frame = Frame.decode(msg.nioBuffer());
                if (frame.kind() == Frame.Kind.CHALLENGE) {
                    challenge(ctx, frame);
                    return;
                }
                Waiting waiting = inflight.remove(frame.requestId());
                CompletableFuture<Response> f = waiting == null ? null : waiting.future();
                if (f == null) {
                    if (frame.kind() == Frame.Kind.ERROR) {
                        // A refusal of the connection itself (handshake, limits): fail what waits on it.
                        String reason = new String(frame.body(), StandardCharsets.UTF_8);
                        ready.completeExceptionally(refusal(reason));
                        failAll(address + " refused: " + reason);
                    }
                    return;
                }
                if (frame.kind() == Frame.Kind.ERROR) {
                    // A refusal is definite: the node did not take the request (unknown group, malformed).
                    f.completeExceptionally(refusal(new String(frame.body(), StandardCharsets.UTF_8)));
                } else {
                    f.complete(ClientProtocol.decodeResponse(frame.body()));
                }
            }

            private ClientException refusal(String reason) {
                return new ClientException(address + " refused: " + reason, false,
                    reason.startsWith(Handshake.REFUSAL_PREFIX) || reason.startsWith(Handshake.NOT_SERVED_PREFIX));
            }

            private void challenge(ChannelHandlerContext ctx, Frame frame) {
                if (hello == null || ready.isDone()) {
                    ctx.close();
                    return;
                }
                Handshake.Challenge c = Handshake.Challenge.decode(frame.body());
                ctx.writeAndFlush(Unpooled.wrappedBuffer(new Frame(Frame.Kind.AUTH, 0, group,
                    Handshake.proof(token, false, group, hello, c.serverNonce())).encode()));
                if (Handshake.matches(Handshake.proof(token, true, group, hello, c.serverNonce()), c.serverProof())) {
                    ready.complete(ctx.channel());
                    return;
                }
                // The node does not know our token: its refusal (sent for our proof) says so; if it does not come,
                // the connection closing or the handshake timeout fails the waiting requests.
                serverFailed = true;
            }

            @Override
            public void channelInactive(ChannelHandlerContext ctx) {
                ready.completeExceptionally(serverFailed
                    ? new ClientException(Handshake.REFUSAL_PREFIX + "node " + node + " at " + address + " does not "
                        + "know this client token", false, true)
                    : new ClientException("connection to " + address + " closed" + why(), false, false));
                failAll("connection to " + address + " closed" + why());
            }

            private String why() {
                return failure == null ? "" : ": " + failure;
            }

            @Override
            public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                // Kept for the close that follows, e.g. a TLS alert: the node refused our certificate.
                Throwable root = cause;
                while (root.getCause() != null && root.getCause() != root) {
                    root = root.getCause();
                }
                failure = root.getMessage() == null ? root.toString() : root.getMessage();
                ctx.close();
            }
        }
    }
}
