package dev.dledger.raft.transport;

import dev.dledger.raft.core.Message;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The production {@link Transport}: one Netty server socket per process, shared by every group it hosts
 * (multi-raft) and by clients, and one outbound connection per peer address, opened when the peers are set and again
 * after a failure.
 *
 * <p>Each connection carries {@link Frame}s. A frame longer than {@code maxFrameBytes}, or one that does not decode,
 * closes that connection only, with a logged reason; other connections and groups go on. A Raft message for a group
 * this process does not host, for another node id, or from a sender that is not a known peer of the group is
 * refused with an {@link Frame.Kind#ERROR} frame that says why.
 *
 * <p>Security ({@link TransportOptions}): with a group secret, a peer connection must first pass the
 * {@link Handshake} as a known peer of a hosted group, and may then carry only that peer's messages of that group;
 * outbound connections are then one per peer and group. With a client token, client requests are served only on a
 * connection that passed the handshake with the token (or as a peer). With TLS, every connection runs mutual TLS.
 * A refused handshake, an unauthenticated frame and a failed TLS handshake are logged with the remote address and
 * close the connection; the refused side gets an ERROR frame whose reason starts with
 * {@link Handshake#REFUSAL_PREFIX}. Without any of these the wire is DLedger-era compatible, as before.
 *
 * <p>Who may connect and ask ({@link TransportOptions#peerHostsOnly()}, {@link TransportOptions#clientApi()}): with
 * peer hosts only, Raft and snapshot frames and the peer handshake are taken only from an IP address of a registered
 * group's peers (their names are resolved when the peers are set; a loopback peer admits loopback addresses only);
 * with the client API also off, a connection from any other address is logged and closed at once. A
 * client request the port does not serve (client API OFF, or not an admin op under ADMIN) is answered with an ERROR
 * frame whose reason starts with {@link Handshake#NOT_SERVED_PREFIX}; the first one of a connection is logged at WARN,
 * the rest at DEBUG.
 *
 * <p>Limits: at most {@code maxInflightRequestsPerConnection} unanswered client requests per connection (more are
 * answered OVERLOADED at once) and {@code maxConnectionsPerAddress} inbound connections per remote IP address (more
 * are refused and closed).
 */
public final class NettyTransport implements Transport {
    private static final Logger LOG = LoggerFactory.getLogger(NettyTransport.class);
    private final AtomicBoolean closed = new AtomicBoolean();

    /** Default largest frame: 32 MiB. */
    public static final int DEFAULT_MAX_FRAME_BYTES = TransportOptions.DEFAULT_MAX_FRAME_BYTES;
    /** A handshake whose AUTH does not follow its CHALLENGE within this closes its connection. */
    private static final long HANDSHAKE_TIMEOUT_MS = 10_000;
    /** After a refused handshake, an outbound connection is not tried again for this long. */
    private static final long REFUSED_RETRY_MS = 1_000;

    private final TransportOptions options;
    private final int maxFrameBytes;
    private final SslContext serverSsl;
    private final SslContext clientSsl;
    private final EventLoopGroup boss = NettyIo.group(1);
    private final EventLoopGroup workers;
    private final Channel serverChannel;
    private final Map<String, GroupBinding> groups = new ConcurrentHashMap<>();
    /**
     * Groups that were served here and stopped ({@link #unregister}), so that a refusal of their frames says so rather
     * than calling the group unknown (which reads as a wrong conf).
     */
    private final Set<String> stoppedGroups = ConcurrentHashMap.newKeySet();
    private final Map<OutKey, Outbound> outbound = new ConcurrentHashMap<>();
    private final Map<InetAddress, Integer> connectionsByAddress = new ConcurrentHashMap<>();
    /** The peers' hosts of every registered group, resolved when they were set; see {@link #peerHostAllowed}. */
    private volatile Set<InetAddress> peerHosts = Set.of();
    private final AtomicLong refusedHosts = new AtomicLong();
    private final AtomicLong refusedRequests = new AtomicLong();
    private final Map<String, Consumer<String>> peerDownListeners = new ConcurrentHashMap<>();
    private final AtomicLong dropped = new AtomicLong();
    private final AtomicLong refused = new AtomicLong();
    private final AtomicLong refusedConnections = new AtomicLong();
    private final AtomicLong overloaded = new AtomicLong();
    private final AtomicLong bytesIn = new AtomicLong();
    private final AtomicLong bytesOut = new AtomicLong();
    private final AtomicLong internalErrors = new AtomicLong();
    private volatile Consumer<String> errorListener = reason -> { };

    private record GroupBinding(String selfId, Map<String, InetSocketAddress> peers, Consumer<Message> inbound,
                                AtomicReference<RequestHandler> requests,
                                AtomicReference<Consumer<SnapshotChunk>> chunks) {
    }

    /** An outbound connection's identity: the address alone, or with a secret also the group and both ids. */
    private record OutKey(InetSocketAddress address, String group, String selfId, String peerId) {
    }

    /**
     * Starts listening on {@code bind} without security, with the default limits but {@code maxFrameBytes}.
     *
     * @param bind          the address to listen on (port 0 picks a free port)
     * @param ioThreads     Netty worker threads shared by all connections
     * @param maxFrameBytes the largest frame accepted or sent, length field excluded
     * @throws TransportException if the port cannot be bound
     */
    public NettyTransport(InetSocketAddress bind, int ioThreads, int maxFrameBytes) {
        this(bind, TransportOptions.defaults().withIoThreads(ioThreads).withLimits(maxFrameBytes,
            TransportOptions.DEFAULT_MAX_INFLIGHT_REQUESTS, TransportOptions.DEFAULT_MAX_CONNECTIONS_PER_ADDRESS));
    }

    /**
     * Starts listening on {@code bind}.
     *
     * @param bind    the address to listen on (port 0 picks a free port)
     * @param options threads, limits and security
     * @throws TransportException       if the port cannot be bound
     * @throws IllegalArgumentException if the TLS stores cannot be read
     */
    public NettyTransport(InetSocketAddress bind, TransportOptions options) {
        this.options = options;
        this.maxFrameBytes = options.maxFrameBytes();
        this.serverSsl = options.tls() == null ? null : options.tls().serverContext();
        this.clientSsl = options.tls() == null ? null : options.tls().clientContext();
        this.workers = NettyIo.group(options.ioThreads());
        ServerBootstrap sb = new ServerBootstrap().group(boss, workers).channel(NettyIo.serverChannel())
            .childOption(ChannelOption.TCP_NODELAY, true)
            .childHandler(new ChannelInitializer<SocketChannel>() {
                @Override
                protected void initChannel(SocketChannel ch) {
                    if (!admit(ch)) {
                        return;
                    }
                    if (serverSsl != null) {
                        ch.pipeline().addLast(serverSsl.newHandler(ch.alloc()));
                    }
                    addInboundHandlers(ch.pipeline());
                }
            });
        try {
            this.serverChannel = sb.bind(bind).syncUninterruptibly().channel();
        } catch (Exception e) {
            // Netty rethrows the bind's checked exception (BindException) undeclared: catch all to keep the contract.
            boss.shutdownGracefully();
            workers.shutdownGracefully();
            throw new TransportException("cannot listen on " + bind + ": " + e.getMessage(), e);
        }
        LOG.info("listening on {} ({})", serverChannel.localAddress(), options);
        if (options.groupSecret() == null) {
            LOG.warn("peers are not authenticated on {}: no group secret is set, so anyone who reaches this port{} can "
                + "send Raft messages under a known peer id; set the same secret on every node", localAddress(),
                options.peerHostsOnly() ? " from a peer's host" : "");
        }
    }

    /** The address the server socket is bound to. */
    public InetSocketAddress localAddress() {
        return (InetSocketAddress) serverChannel.localAddress();
    }

    /** The settings this transport runs with. */
    public TransportOptions options() {
        return options;
    }

    /** Messages dropped because a peer was unreachable or too slow. */
    public long droppedMessages() {
        return dropped.get();
    }

    /** Bytes of frames received, length fields included. */
    public long bytesIn() {
        return bytesIn.get();
    }

    /** Bytes of Raft frames handed to the network, length fields included. */
    public long bytesOut() {
        return bytesOut.get();
    }

    /** Inbound frames refused (unknown group, unknown peer, wrong target, not authenticated). */
    public long refusedFrames() {
        return refused.get();
    }

    /** Inbound connections closed at once: over the per-address limit. */
    public long refusedConnections() {
        return refusedConnections.get();
    }

    /** Inbound connections closed at once because they came from a host that is not a peer's (peer hosts only). */
    public long refusedHosts() {
        return refusedHosts.get();
    }

    /** Client requests refused because the port does not serve them (client API off, or admin only). */
    public long refusedRequests() {
        return refusedRequests.get();
    }

    /** Client requests answered OVERLOADED because their connection had the most unanswered requests allowed. */
    public long overloadedRequests() {
        return overloaded.get();
    }

    /**
     * Connections closed because their handler failed in a way it does not expect from any input: a bug of ours, logged
     * at ERROR with its stack trace. A malformed frame, a failed TLS handshake or an I/O error is not counted here.
     */
    public long internalErrors() {
        return internalErrors.get();
    }

    /** Receives the reason of every ERROR frame a peer sends back (for logs and tests). */
    public void onPeerError(Consumer<String> listener) {
        this.errorListener = listener;
    }

    /**
     * Tells {@code listener} (on a transport thread; it must not block) the id of each peer of {@code group} whose
     * process is gone: a live connection to it closed and its port then refused a new one at once. A timeout, a reset
     * with the port still open, or a peer that never answered is not reported.
     */
    @Override
    public void onPeerDown(String group, Consumer<String> listener) {
        peerDownListeners.put(group, listener);
    }

    /** Whether a connect failed because nothing listens on the port (not a timeout, not an unreachable host). */
    /**
     * The source address of outbound connections to {@code peer}: the address this transport listens on when that is
     * one address (a host with several, or several "hosts" on loopback), so that peers see the connection come from
     * the host named for this node; null (the system's choice) when listening on all addresses, or when the peer is
     * on loopback and this address is not (or the reverse), where that address could not reach it.
     */
    private InetAddress sourceFor(InetSocketAddress peer) {
        InetAddress own = ((InetSocketAddress) serverChannel.localAddress()).getAddress();
        InetAddress to = peer.getAddress();
        if (own.isAnyLocalAddress() || to == null || own.isLoopbackAddress() != to.isLoopbackAddress()) {
            return null;
        }
        return own;
    }

    /**
     * Whether a connect failed because nothing listens at the port (the peer's host answered with a reset): NIO says
     * "Connection refused: ADDRESS", Netty's epoll "finishConnect(..) failed: Connection refused: ADDRESS".
     */
    private static boolean refusedAtOnce(Throwable cause) {
        return cause instanceof java.net.ConnectException && !(cause instanceof io.netty.channel.ConnectTimeoutException)
            && cause.getMessage() != null && cause.getMessage().contains("Connection refused");
    }

    /** Reports the peers at {@code address} (of {@code group} only, when given) as gone. */
    private void peerDown(InetSocketAddress address, String group, String peerId) {
        if (closed.get()) {
            return;
        }
        peerDownListeners.forEach((g, listener) -> {
            GroupBinding b = groups.get(g);
            if (b == null || (group != null && !group.equals(g))) {
                return;
            }
            b.peers().forEach((id, a) -> {
                if (a.equals(address) && (peerId == null || peerId.equals(id)) && !id.equals(b.selfId())) {
                    LOG.info("[{}] peer {} at {} is gone: its connection closed and its port refuses", g, id, address);
                    listener.accept(id);
                }
            });
        });
    }

    @Override
    public void register(String group, String selfId, Consumer<Message> inbound) {
        stoppedGroups.remove(group);
        groups.put(group, new GroupBinding(selfId, new ConcurrentHashMap<>(), inbound, new AtomicReference<>(),
            new AtomicReference<>()));
    }

    @Override
    public void onChunks(String group, Consumer<SnapshotChunk> inbound) {
        GroupBinding g = groups.get(group);
        if (g == null) {
            throw new IllegalStateException("group " + group + " is not registered");
        }
        g.chunks().set(inbound);
    }

    @Override
    public void sendChunk(String group, SnapshotChunk chunk) {
        sendFrame(group, chunk.to(), new Frame(Frame.Kind.SNAPSHOT, 0, group, chunk.encode()).encode());
    }

    /**
     * Serves client requests of {@code group} with {@code handler}.
     *
     * @throws IllegalStateException if the group is not registered
     */
    @Override
    public void serveRequests(String group, RequestHandler handler) {
        GroupBinding g = groups.get(group);
        if (g == null) {
            throw new IllegalStateException("group " + group + " is not registered");
        }
        g.requests().set(handler);
    }

    /**
     * Sets the address of every peer of {@code group} (this node's own entry is ignored). Messages from ids not
     * listed here are refused.
     *
     * @throws IllegalStateException if the group is not registered
     */
    public void setPeers(String group, Map<String, InetSocketAddress> peers) {
        GroupBinding g = groups.get(group);
        if (g == null) {
            throw new IllegalStateException("group " + group + " is not registered");
        }
        g.peers().clear();
        g.peers().putAll(peers);
        resolvePeerHosts();
        retireUnused();
        // Connected before the first message: a peer that refused our connections while this node did not serve the
        // group yet (a restart) learns from the handshake that it does now, and connects back at once (peerProved).
        peers.forEach((id, address) -> {
            if (!id.equals(g.selfId()) && !closed.get()) {
                outbound.computeIfAbsent(outKey(address, group, g.selfId(), id), Outbound::new).connect();
            }
        });
    }

    /** The key of the outbound connection to {@code peer}: its address alone, or with a secret the group and ids. */
    private OutKey outKey(InetSocketAddress to, String group, String selfId, String peer) {
        return options.groupSecret() == null ? new OutKey(to, null, null, null) : new OutKey(to, group, selfId, peer);
    }

    /**
     * Peer {@code peerId} of {@code group} just proved the secret on a connection of its own: it serves the group, so
     * a wait after our connection to it was refused (it did not serve the group yet) is over.
     */
    private void peerProved(String group, String peerId) {
        GroupBinding g = groups.get(group);
        InetSocketAddress to = g == null ? null : g.peers().get(peerId);
        Outbound o = to == null ? null : outbound.get(outKey(to, group, g.selfId(), peerId));
        if (o != null) {
            o.retryNow();
        }
    }

    /**
     * Stops serving {@code group}: its frames are refused from now on, and the outbound connections only it used are
     * closed and not opened again (with a group secret those of the group; without, those to addresses no other
     * registered group has a peer at), so that a group removed from a process shared with others leaves no
     * connection behind. {@link #setPeers} closes those to a peer it no longer lists likewise.
     */
    @Override
    public void unregister(String group) {
        peerDownListeners.remove(group);
        GroupBinding gone = groups.remove(group);
        resolvePeerHosts();
        if (gone != null) {
            stoppedGroups.add(group);
            retireUnused();
        }
    }

    /** Why a frame of {@code group}, which this transport does not serve, is refused. */
    private String groupNotHere(String group) {
        return stoppedGroups.contains(group) ? "group '" + group + "' stopped on this node"
            : "unknown group '" + group + "'";
    }

    /**
     * Closes for good the outbound connections no registered group uses any more: with a group secret those of a group
     * that left or to a peer it no longer has; without, those to addresses no group has a peer at.
     */
    private void retireUnused() {
        Set<InetSocketAddress> used = new HashSet<>();
        for (GroupBinding g : groups.values()) {
            used.addAll(g.peers().values());
        }
        outbound.entrySet().removeIf(e -> {
            OutKey k = e.getKey();
            GroupBinding g = k.group() == null ? null : groups.get(k.group());
            boolean unused = k.group() == null ? !used.contains(k.address())
                : g == null || !g.selfId().equals(k.selfId()) || !k.address().equals(g.peers().get(k.peerId()));
            if (unused) {
                e.getValue().retire();
                LOG.debug("[{}] closed the connection to {}: no group of this transport has a peer there any more",
                    k.group(), k.address());
            }
            return unused;
        });
    }

    /** The outbound connections kept (open, or to open again on the next frame); for tests. */
    int outboundConnections() {
        return outbound.size();
    }

    /** The outbound connections that frames may be written to now (handshake passed); for tests. */
    int usableOutboundConnections() {
        return (int) outbound.values().stream().filter(o -> o.writer != null && o.writer.channel().isActive()).count();
    }

    /**
     * Learns the IP addresses of every registered group's peers. A name that does not resolve now admits nothing (it
     * is logged); it is resolved again at the next {@link #setPeers}.
     */
    private void resolvePeerHosts() {
        Set<InetAddress> hosts = new HashSet<>();
        for (Map.Entry<String, GroupBinding> g : groups.entrySet()) {
            for (Map.Entry<String, InetSocketAddress> p : g.getValue().peers().entrySet()) {
                InetSocketAddress a = p.getValue();
                if (a.getAddress() != null) {
                    hosts.add(a.getAddress());
                    continue;
                }
                try {
                    hosts.addAll(List.of(InetAddress.getAllByName(a.getHostString())));
                } catch (IOException e) {
                    LOG.warn("[{}] cannot resolve the host of peer {} ({}): no connection from it is accepted until "
                        + "the peers are set again", g.getKey(), p.getKey(), a.getHostString());
                }
            }
        }
        peerHosts = Set.copyOf(hosts);
    }

    /**
     * Whether a connection from {@code from} may be accepted: always without {@code peerHostsOnly}; else when it is a
     * peer's host, or a loopback address while a peer is on loopback (a node reaches a loopback peer from whichever
     * loopback address the kernel picks).
     */
    boolean peerHostAllowed(InetAddress from) {
        if (!options.peerHostsOnly()) {
            return true;
        }
        Set<InetAddress> hosts = peerHosts;
        if (hosts.contains(from)) {
            return true;
        }
        if (from.isLoopbackAddress()) {
            for (InetAddress h : hosts) {
                if (h.isLoopbackAddress()) {
                    return true;
                }
            }
        }
        return false;
    }

    @Override
    public void send(String group, Message m) {
        sendFrame(group, m.to(), MessageCodec.encodeFrame(group, m));
    }

    private void sendFrame(String group, String peer, byte[] frame) {
        GroupBinding g = groups.get(group);
        InetSocketAddress to = g == null ? null : g.peers().get(peer);
        if (to == null) {
            dropped.incrementAndGet();
            LOG.debug("[{}] no address for peer {}, dropped a frame", group, peer);
            return;
        }
        if (frame.length - 4 > maxFrameBytes) {
            dropped.incrementAndGet();
            LOG.warn("[{}] frame to {} is {} bytes, over the limit {}; dropped", group, peer, frame.length,
                maxFrameBytes);
            return;
        }
        outbound.computeIfAbsent(outKey(to, group, g.selfId(), peer), Outbound::new).write(frame);
    }

    /**
     * One of the worker threads, in turn. With one worker thread (the default of a single group's process) a driver
     * there also reads and writes every connection of its node.
     */
    @Override
    public IoThread driverThread() {
        EventLoop loop = workers.next();
        return new IoThread() {
            @Override
            public boolean inThread() {
                return loop.inEventLoop();
            }

            @Override
            public boolean execute(Runnable task) {
                try {
                    loop.execute(task);
                    return true;
                } catch (RejectedExecutionException e) {
                    return false;
                }
            }

            @Override
            public boolean schedule(Runnable task, long delayNanos) {
                try {
                    loop.schedule(task, delayNanos, TimeUnit.NANOSECONDS);
                    return true;
                } catch (RejectedExecutionException e) {
                    return false;
                }
            }
        };
    }

    /**
     * Closes the connections and stops the event loops, once: a second call (a node and its owner both closing the
     * transport they share) returns at once.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        for (Outbound o : outbound.values()) {
            o.close();
        }
        serverChannel.close().syncUninterruptibly();
        boss.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        workers.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    /** The handlers of an accepted connection, after TLS: framing, then the checks and the dispatch of frames. */
    void addInboundHandlers(ChannelPipeline pipeline) {
        pipeline.addLast(new FlushConsolidationHandler(256, true))
            .addLast(new LengthFieldBasedFrameDecoder(maxFrameBytes, 0, 4, 0, 4))
            .addLast(new InboundHandler());
    }

    private void addOutboundHandlers(ChannelPipeline pipeline, Outbound out) {
        pipeline.addLast(new FlushConsolidationHandler(256, true))
            .addLast(new LengthFieldBasedFrameDecoder(maxFrameBytes, 0, 4, 0, 4))
            .addLast(new ReplyHandler(out));
    }

    /**
     * Puts the handlers of an outbound connection to peer {@code peerId} of {@code group} at {@code address} on
     * {@code ch}, a channel this transport did not open (tests feed it what a peer would send), and with a group
     * secret sends the HELLO, as after a connect. Nothing is ever sent on it.
     */
    void attachOutbound(Channel ch, InetSocketAddress address, String group, String selfId, String peerId) {
        OutKey key = outKey(address, group, selfId, peerId);
        addOutboundHandlers(ch.pipeline(), new Outbound(key));
        if (key.group() != null) {
            ch.pipeline().get(ReplyHandler.class).hello(ch);
        }
    }

    /**
     * What a connection's handler may meet from a misbehaving peer or network (bad framing, TLS, I/O); anything else
     * is a fault of ours.
     */
    private boolean expected(ChannelHandlerContext ctx, Throwable cause) {
        if (cause instanceof DecoderException || cause instanceof IOException || cause instanceof CodecException) {
            return true;
        }
        internalErrors.incrementAndGet();
        LOG.error("closing connection with {}: unexpected failure of its handler", ctx.channel().remoteAddress(), cause);
        return false;
    }

    /** Counts an accepted connection against its address's limit; refuses and closes it beyond the limit. */
    private boolean admit(SocketChannel ch) {
        InetAddress from = ch.remoteAddress().getAddress();
        if (options.clientApi() == TransportOptions.ClientApi.OFF && !peerHostAllowed(from)) {
            refusedHosts.incrementAndGet();
            LOG.warn("refused connection from {}: {} is not the host of a peer of {} (this port serves its groups' "
                + "peers only)", ch.remoteAddress(), from.getHostAddress(), groups.keySet());
            if (serverSsl == null) {
                String reason = Handshake.NOT_SERVED_PREFIX + from.getHostAddress() + " is not the host of a peer "
                    + "of this node's groups; this port serves their peers only";
                ch.writeAndFlush(Unpooled.wrappedBuffer(new Frame(Frame.Kind.ERROR, 0, "-",
                    reason.getBytes(StandardCharsets.UTF_8)).encode())).addListener(ChannelFutureListener.CLOSE);
            } else {
                ch.close();
            }
            return false;
        }
        int limit = options.maxConnectionsPerAddress();
        int now = connectionsByAddress.merge(from, 1, Integer::sum);
        if (now > limit) {
            connectionsByAddress.computeIfPresent(from, (k, v) -> v <= 1 ? null : v - 1);
            refusedConnections.incrementAndGet();
            String reason = "too many connections from " + from.getHostAddress() + ": " + limit
                + " are open (maxConnectionsPerAddress)";
            LOG.warn("refused connection from {}: {}", ch.remoteAddress(), reason);
            if (serverSsl == null) {
                ch.writeAndFlush(Unpooled.wrappedBuffer(new Frame(Frame.Kind.ERROR, 0, "-",
                    reason.getBytes(StandardCharsets.UTF_8)).encode())).addListener(ChannelFutureListener.CLOSE);
            } else {
                ch.close();
            }
            return false;
        }
        ch.closeFuture().addListener(f -> connectionsByAddress.computeIfPresent(from, (k, v) -> v <= 1 ? null : v - 1));
        return true;
    }

    /**
     * The refusals logged at WARN: a peer that goes on sending what is refused (the nodes of a group removed from this
     * process, which still count it a voter, and connect again after each refused handshake) gets one WARN per reason,
     * not one per frame or per connection; the rest go to DEBUG. Thread-safe; remembers at most {@link #MAX} reasons,
     * then logs every new one.
     */
    private static final class Reasons {
        private static final int MAX = 256;
        private final Set<String> seen = ConcurrentHashMap.newKeySet();

        /** Whether {@code reason} is new here (to log at WARN). */
        boolean first(String reason) {
            if (seen.contains(reason)) {
                return false;
            }
            if (seen.size() < MAX) {
                return seen.add(reason);
            }
            return true;
        }
    }

    /** Refusals of inbound frames and connections logged at WARN so far, by remote host and reason. */
    private final Reasons inboundWarned = new Reasons();

    /** One outbound connection, opened lazily and again after it fails. */
    private final class Outbound {
        private final OutKey key;
        /** The usable connection's writer, or null. */
        private volatile BatchingWriter writer;
        private volatile ChannelFuture connecting;
        private volatile long retryAfterNanos;
        /** Set when a connection that had been open closed: the next refused connect reports the peer gone. */
        private volatile boolean probing;
        /** Closed for good: its group left ({@link #unregister}); it never connects again. */
        private volatile boolean retired;
        /** The peer's refusals logged at WARN, over every connection of this outbound (it connects again after one). */
        private final Reasons warned = new Reasons();

        Outbound(OutKey key) {
            this.key = key;
        }

        void write(byte[] frame) {
            BatchingWriter w = writer;
            if (w != null && w.channel().isActive()) {
                if (!w.channel().isWritable()) {
                    dropped.incrementAndGet();
                    return;
                }
                bytesOut.addAndGet(frame.length);
                w.write(frame);
                return;
            }
            dropped.incrementAndGet();
            connect();
        }

        private synchronized void connect() {
            // Wait while a connection is being opened or its handshake runs, and for a while after a refusal.
            boolean busy = connecting != null && (!connecting.isDone() || connecting.channel().isActive());
            if (retired || busy || System.nanoTime() - retryAfterNanos < 0) {
                return;
            }
            writer = null;
            InetSocketAddress address = key.address();
            Bootstrap b = new Bootstrap().group(workers).channel(NettyIo.socketChannel())
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 1000)
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(8 << 20, 16 << 20))
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        if (clientSsl != null) {
                            ch.pipeline().addLast(clientSsl.newHandler(ch.alloc(), address.getHostString(),
                                address.getPort()));
                        }
                        addOutboundHandlers(ch.pipeline(), Outbound.this);
                    }
                });
            InetAddress from = sourceFor(address);
            ChannelFuture cf = from == null ? b.connect(address) : b.connect(address, new InetSocketAddress(from, 0));
            connecting = cf;
            cf.addListener(f -> {
                if (!f.isSuccess()) {
                    LOG.debug("cannot connect to {}: {}", address, f.cause().toString());
                    if (probing) {
                        probing = false;
                        if (refusedAtOnce(f.cause())) {
                            peerDown(address, key.group(), key.peerId());
                        }
                    }
                    return;
                }
                probing = false;
                cf.channel().closeFuture().addListener(closed -> {
                    // A peer whose process died closes its connections at once (the kernel does it): try again
                    // now, and if the port refuses, nobody listens there any more.
                    if (!retired && !NettyTransport.this.closed.get() && !cf.channel().eventLoop().isShuttingDown()) {
                        probing = true;
                        connect();
                    }
                });
                if (key.group() == null) {
                    writer = new BatchingWriter(cf.channel());
                    LOG.info("connected to {}", address);
                } else {
                    cf.channel().pipeline().get(ReplyHandler.class).hello(cf.channel());
                }
            });
        }

        /** The handshake passed: frames may flow. */
        void ready(Channel ch) {
            writer = new BatchingWriter(ch);
        }

        /** The peer refused us or failed to prove the secret: wait a little before trying again. */
        void refused() {
            retryAfterNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(REFUSED_RETRY_MS);
        }

        /** Ends a wait after a refusal and connects (once the refused connection closed, if it has not yet). */
        synchronized void retryNow() {
            if (System.nanoTime() - retryAfterNanos < 0) {
                retryAfterNanos = System.nanoTime();
                connect();
            }
        }

        void close() {
            ChannelFuture cf = connecting;
            if (cf != null) {
                cf.channel().close();
            }
        }

        /** Closes the connection for good. */
        synchronized void retire() {
            retired = true;
            close();
        }
    }

    /** Runs the connecting side of the handshake and reads ERROR frames a peer sends back on an outbound connection. */
    private final class ReplyHandler extends SimpleChannelInboundHandler<ByteBuf> {
        private final Outbound out;
        private Handshake.Hello hello;
        private boolean ready;

        ReplyHandler(Outbound out) {
            this.out = out;
        }

        /** Sends HELLO as peer {@code selfId} of the group to peer {@code peerId}. */
        void hello(Channel ch) {
            OutKey k = out.key;
            hello = new Handshake.Hello(Handshake.Role.PEER, Handshake.nonce(), k.selfId(), k.peerId());
            ch.writeAndFlush(Unpooled.wrappedBuffer(new Frame(Frame.Kind.HELLO, 0, k.group(), hello.encode()).encode()));
            ch.eventLoop().schedule(() -> {
                if (!ready && ch.isActive()) {
                    LOG.warn("[{}] closing connection to peer {} at {}: no CHALLENGE within {} ms of our HELLO",
                        k.group(), k.peerId(), ch.remoteAddress(), HANDSHAKE_TIMEOUT_MS);
                    out.refused();
                    ch.close();
                }
            }, HANDSHAKE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, ByteBuf msg) {
            try {
                Frame f = Frame.decode(msg.nioBuffer());
                if (f.kind() == Frame.Kind.CHALLENGE) {
                    challenge(ctx, f);
                } else if (f.kind() == Frame.Kind.ERROR) {
                    String reason = new String(f.body(), StandardCharsets.UTF_8);
                    if (out.warned.first(reason)) {
                        LOG.warn("[{}] {} refused our message: {} (the same refusals from there are logged at DEBUG "
                            + "from now on)", f.group(), ctx.channel().remoteAddress(), reason);
                    } else {
                        LOG.debug("[{}] {} refused our message: {}", f.group(), ctx.channel().remoteAddress(), reason);
                    }
                    if (!ready && hello != null) {
                        out.refused();
                    }
                    errorListener.accept(reason);
                }
            } catch (CodecException e) {
                LOG.warn("closing connection to {}: {}", ctx.channel().remoteAddress(), e.getMessage());
                ctx.close();
            }
        }

        private void challenge(ChannelHandlerContext ctx, Frame f) {
            OutKey k = out.key;
            if (hello == null || ready) {
                LOG.warn("closing connection to {}: a CHALLENGE we did not ask for", ctx.channel().remoteAddress());
                ctx.close();
                return;
            }
            Handshake.Challenge c = Handshake.Challenge.decode(f.body());
            String secret = options.groupSecret();
            byte[] proof = Handshake.proof(secret, false, k.group(), hello, c.serverNonce());
            ctx.writeAndFlush(Unpooled.wrappedBuffer(new Frame(Frame.Kind.AUTH, 0, k.group(), proof).encode()));
            if (!Handshake.matches(Handshake.proof(secret, true, k.group(), hello, c.serverNonce()), c.serverProof())) {
                // Our proof went anyway, so that the listening side logs the refusal too; it then closes (or our
                // handshake timeout does). Nothing is sent on this connection.
                LOG.warn("[{}] peer {} at {} failed to prove the group secret (the nodes' secrets differ); not "
                    + "using this connection", k.group(), k.peerId(), ctx.channel().remoteAddress());
                out.refused();
                return;
            }
            ready = true;
            out.ready(ctx.channel());
            LOG.info("[{}] connected to peer {} at {}, both proved the group secret", k.group(), k.peerId(),
                ctx.channel().remoteAddress());
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
            if (evt instanceof SslHandshakeCompletionEvent e && !e.isSuccess()) {
                LOG.warn("closing connection to {}: TLS handshake failed: {}", ctx.channel().remoteAddress(),
                    e.cause().toString());
                out.refused();
                ctx.close();
                return;
            }
            super.userEventTriggered(ctx, evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (expected(ctx, cause)) {
                LOG.warn("closing connection to {}: {}", ctx.channel().remoteAddress(), cause.toString());
            }
            ctx.close();
        }
    }

    /**
     * One inbound connection: runs the listening side of the handshake, enforces its limits, checks who frames are
     * from and for, and hands Raft messages to their group. All fields are used on the connection's event loop only.
     */
    private final class InboundHandler extends SimpleChannelInboundHandler<ByteBuf> {
        /** What the connection proved: null (nothing), PEER or CLIENT. */
        private Handshake.Role authenticated;
        private String authGroup;
        private String authId;
        private Handshake.Hello pending;
        private String pendingGroup;
        private String pendingKey;
        private byte[] pendingNonce;
        /** Client requests taken and not yet answered; completed on other threads. */
        private final AtomicInteger inflight = new AtomicInteger();
        /** Whether the remote address is a peer's host: null until first asked. */
        private Boolean peerHost;
        /** Whether a client request was refused as not served on this connection already (logged once). */
        private boolean notServedLogged;
        /** Writes the answers to client requests, which complete on the driver's thread; made on first use. */
        private BatchingWriter replies;

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, ByteBuf msg) {
            Frame f;
            bytesIn.addAndGet(msg.readableBytes() + 4L);
            try {
                ByteBuffer nio = msg.nioBuffer();
                f = Frame.decodeHeader(nio);
                if (f.kind() == Frame.Kind.RAFT) {
                    // The Raft body is decoded where it lies; the entries' payloads are its only copy.
                    if (!peerAllowed(ctx, f)) {
                        return;
                    }
                    deliver(ctx, f, MessageCodec.decode(nio.slice()));
                    return;
                }
                byte[] body = new byte[nio.remaining()];
                nio.get(body);
                f = new Frame(f.kind(), f.requestId(), f.group(), body);
                switch (f.kind()) {
                    case HELLO:
                        hello(ctx, f);
                        return;
                    case AUTH:
                        auth(ctx, f);
                        return;
                    case REQUEST:
                        if (options.clientToken() != null && authenticated == null) {
                            deny(ctx, f, "this node requires a client token: give the client the node's token "
                                + "(--token)");
                        } else if (clientRequestServed(ctx, f)) {
                            serve(ctx, f);
                        }
                        return;
                    case SNAPSHOT:
                        if (peerAllowed(ctx, f)) {
                            chunk(ctx, f, SnapshotChunk.decode(ByteBuffer.wrap(f.body())));
                        }
                        return;
                    default:
                        refuse(ctx, f, "frame kind " + f.kind() + " is not served here");
                        return;
                }
            } catch (CodecException e) {
                LOG.warn("closing connection from {}: malformed frame: {}", ctx.channel().remoteAddress(),
                    e.getMessage());
                ctx.close();
            }
        }

        /** Whether the connection comes from a peer's host ({@link #peerHostAllowed}); learned once. */
        private boolean fromPeerHost(ChannelHandlerContext ctx) {
            if (peerHost == null) {
                peerHost = !(ctx.channel().remoteAddress() instanceof InetSocketAddress a)
                    || a.getAddress() == null || peerHostAllowed(a.getAddress());
            }
            return peerHost;
        }

        private String remoteHost(ChannelHandlerContext ctx) {
            return ctx.channel().remoteAddress() instanceof InetSocketAddress a && a.getAddress() != null
                ? a.getAddress().getHostAddress() : String.valueOf(ctx.channel().remoteAddress());
        }

        /**
         * Whether this port serves the request to this connection ({@link TransportOptions#clientApi()}); refuses it
         * with a {@link Handshake#NOT_SERVED_PREFIX} ERROR frame when not.
         */
        private boolean clientRequestServed(ChannelHandlerContext ctx, Frame f) {
            String why;
            switch (options.clientApi()) {
                case OPEN:
                    return true;
                case ADMIN:
                    ClientProtocol.Op op = ClientProtocol.opOf(f.body());
                    if (ClientProtocol.isAdmin(op)) {
                        return true;
                    }
                    why = "request " + op + " of group '" + f.group() + "': this port serves the admin requests only "
                        + "(status, leadership transfer, member add/remove); entries are never appended or read "
                        + "here";
                    break;
                default:
                    why = "request of group '" + f.group() + "': the client API of this port is off (it serves its "
                        + "group's peers only; admin requests need the group secret and an admin token)";
                    break;
            }
            refusedRequests.incrementAndGet();
            String reason = Handshake.NOT_SERVED_PREFIX + why;
            if (!notServedLogged) {
                notServedLogged = true;
                LOG.warn("[{}] refused a client request from {} (further ones on this connection are logged at "
                    + "DEBUG): {}", f.group(), ctx.channel().remoteAddress(), reason);
            } else {
                LOG.debug("[{}] refused a client request from {}: {}", f.group(), ctx.channel().remoteAddress(),
                    reason);
            }
            ctx.writeAndFlush(Unpooled.wrappedBuffer(new Frame(Frame.Kind.ERROR, f.requestId(), f.group(),
                reason.getBytes(StandardCharsets.UTF_8)).encode()));
            return false;
        }

        /** Hands a Raft message to its group, or refuses it: wrong group, wrong node, unknown or other sender. */
        private void deliver(ChannelHandlerContext ctx, Frame f, Message m) {
            GroupBinding g = groups.get(f.group());
            if (g == null) {
                refuse(ctx, f, groupNotHere(f.group()));
            } else if (!g.selfId().equals(m.to())) {
                refuse(ctx, f, "group '" + f.group() + "' here is node " + g.selfId() + ", not " + m.to());
            } else if (!g.peers().containsKey(m.from())) {
                refuse(ctx, f, "unknown peer '" + m.from() + "' in group '" + f.group() + "'");
            } else if (sameAsAuthenticated(ctx, f, m.from())) {
                g.inbound().accept(m);
            }
        }

        /**
         * With peer hosts only, only a connection from a peer's host may carry peer frames; with a group secret, only
         * one that proved it.
         */
        private boolean peerAllowed(ChannelHandlerContext ctx, Frame f) {
            if (!fromPeerHost(ctx)) {
                deny(ctx, f, "peer frames are taken from the hosts of the group's peers only, and "
                    + remoteHost(ctx) + " is none of them");
                return false;
            }
            if (options.groupSecret() == null || authenticated == Handshake.Role.PEER) {
                return true;
            }
            deny(ctx, f, "this node requires peers to prove the group secret; set the same secret on every node");
            return false;
        }

        /** A connection authenticated as one peer of one group carries only that peer's frames of that group. */
        private boolean sameAsAuthenticated(ChannelHandlerContext ctx, Frame f, String from) {
            if (authenticated != Handshake.Role.PEER || authId.equals(from) && authGroup.equals(f.group())) {
                return true;
            }
            refuse(ctx, f, "this connection proved node " + authId + " of group '" + authGroup + "', not " + from
                + " of group '" + f.group() + "'");
            return false;
        }

        private void hello(ChannelHandlerContext ctx, Frame f) {
            if (authenticated != null || pending != null) {
                deny(ctx, f, "a second HELLO on one connection");
                return;
            }
            Handshake.Hello h = Handshake.Hello.decode(f.body());
            GroupBinding g = groups.get(f.group());
            String key;
            if (h.role() == Handshake.Role.PEER) {
                if (!fromPeerHost(ctx)) {
                    deny(ctx, f, "peer " + h.from() + " connects from " + remoteHost(ctx) + ", which is not the host "
                        + "of a peer of this node's groups");
                    return;
                }
                if (options.groupSecret() == null) {
                    deny(ctx, f, "peer " + h.from() + " sent a group secret handshake but this node has no secret; "
                        + "set the same secret on every node");
                    return;
                }
                if (g == null) {
                    deny(ctx, f, groupNotHere(f.group()));
                    return;
                }
                if (!g.selfId().equals(h.to())) {
                    deny(ctx, f, "group '" + f.group() + "' here is node " + g.selfId() + ", not " + h.to());
                    return;
                }
                if (!g.peers().containsKey(h.from())) {
                    deny(ctx, f, "unknown peer '" + h.from() + "' in group '" + f.group() + "'");
                    return;
                }
                key = options.groupSecret();
            } else {
                if (options.clientToken() == null) {
                    deny(ctx, f, "the client sent a token but this node requires none; drop --token");
                    return;
                }
                if (g == null) {
                    deny(ctx, f, groupNotHere(f.group()));
                    return;
                }
                key = options.clientToken();
            }
            pending = h;
            pendingGroup = f.group();
            pendingKey = key;
            pendingNonce = Handshake.nonce();
            byte[] proof = Handshake.proof(key, true, pendingGroup, h, pendingNonce);
            ctx.writeAndFlush(Unpooled.wrappedBuffer(new Frame(Frame.Kind.CHALLENGE, 0, f.group(),
                new Handshake.Challenge(pendingNonce, proof).encode()).encode()));
            ctx.executor().schedule(() -> {
                if (pending == h && ctx.channel().isActive()) {
                    LOG.warn("closing connection from {}: no AUTH within {} ms of the challenge",
                        ctx.channel().remoteAddress(), HANDSHAKE_TIMEOUT_MS);
                    ctx.close();
                }
            }, HANDSHAKE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        }

        private void auth(ChannelHandlerContext ctx, Frame f) {
            Handshake.Hello h = pending;
            if (h == null) {
                deny(ctx, f, "AUTH without a HELLO before it");
                return;
            }
            pending = null;
            byte[] expected = Handshake.proof(pendingKey, false, pendingGroup, h, pendingNonce);
            if (!Handshake.matches(expected, f.body())) {
                deny(ctx, f, h.role() == Handshake.Role.PEER
                    ? "wrong group secret from peer '" + h.from() + "' of group '" + pendingGroup + "'"
                    : "wrong client token");
                return;
            }
            authenticated = h.role();
            authGroup = pendingGroup;
            authId = h.from();
            if (h.role() == Handshake.Role.PEER) {
                LOG.info("[{}] peer {} at {} proved the group secret", authGroup, authId, ctx.channel().remoteAddress());
                peerProved(authGroup, authId);
            } else {
                LOG.debug("[{}] client at {} proved the client token", authGroup, ctx.channel().remoteAddress());
            }
        }

        private void chunk(ChannelHandlerContext ctx, Frame f, SnapshotChunk c) {
            GroupBinding g = groups.get(f.group());
            Consumer<SnapshotChunk> h = g == null ? null : g.chunks().get();
            if (h == null) {
                refuse(ctx, f, groupNotHere(f.group()));
            } else if (!g.selfId().equals(c.to())) {
                refuse(ctx, f, "group '" + f.group() + "' here is node " + g.selfId() + ", not " + c.to());
            } else if (!g.peers().containsKey(c.from())) {
                refuse(ctx, f, "unknown peer '" + c.from() + "' in group '" + f.group() + "'");
            } else if (sameAsAuthenticated(ctx, f, c.from())) {
                h.accept(c);
            }
        }

        private void serve(ChannelHandlerContext ctx, Frame f) {
            GroupBinding g = groups.get(f.group());
            RequestHandler h = g == null ? null : g.requests().get();
            if (h == null) {
                refuse(ctx, f, groupNotHere(f.group()));
                return;
            }
            if (inflight.get() >= options.maxInflightRequestsPerConnection()) {
                overloaded.incrementAndGet();
                LOG.debug("[{}] {} has {} requests unanswered, the most allowed; answered OVERLOADED", f.group(),
                    ctx.channel().remoteAddress(), inflight.get());
                ctx.writeAndFlush(Unpooled.wrappedBuffer(new Frame(Frame.Kind.RESPONSE, f.requestId(), f.group(),
                    ClientProtocol.encode(ClientProtocol.Response.of(ClientProtocol.Status.OVERLOADED, null)))
                    .encode()));
                return;
            }
            inflight.incrementAndGet();
            if (replies == null) {
                replies = new BatchingWriter(ctx.channel());
            }
            BatchingWriter out = replies;
            CompletableFuture<byte[]> reply;
            try {
                reply = h.handle(f.body());
            } catch (CodecException e) {
                inflight.decrementAndGet();
                refuse(ctx, f, "malformed request: " + e.getMessage());
                return;
            } catch (RuntimeException e) {
                inflight.decrementAndGet();
                throw e;
            }
            reply.whenComplete((body, error) -> {
                inflight.decrementAndGet();
                if (error != null) {
                    Throwable cause = error instanceof CompletionException && error.getCause() != null
                        ? error.getCause() : error;
                    refuse(ctx, f, String.valueOf(cause.getMessage()));
                } else {
                    out.write(new Frame(Frame.Kind.RESPONSE, f.requestId(), f.group(), body).encode());
                }
            });
        }

        private void refuse(ChannelHandlerContext ctx, Frame f, String reason) {
            refused.incrementAndGet();
            if (inboundWarned.first(host(ctx) + " " + reason)) {
                LOG.warn("refused a frame from {}: {} (the same refusals from that host are logged at DEBUG from now "
                    + "on)", ctx.channel().remoteAddress(), reason);
            } else {
                LOG.debug("refused a frame from {}: {}", ctx.channel().remoteAddress(), reason);
            }
            byte[] err = new Frame(Frame.Kind.ERROR, f.requestId(), f.group(), reason.getBytes(StandardCharsets.UTF_8))
                .encode();
            ctx.writeAndFlush(Unpooled.wrappedBuffer(err));
        }

        private String host(ChannelHandlerContext ctx) {
            java.net.SocketAddress a = ctx.channel().remoteAddress();
            return a instanceof InetSocketAddress i ? i.getHostString() : String.valueOf(a);
        }

        /** Refuses an unauthenticated frame or a failed handshake: says why, then closes the connection. */
        private void deny(ChannelHandlerContext ctx, Frame f, String reason) {
            refused.incrementAndGet();
            String text = Handshake.REFUSAL_PREFIX + reason;
            if (inboundWarned.first(host(ctx) + " " + f.group() + " " + text)) {
                LOG.warn("[{}] refused connection from {} and closed it: {} (the same refusals from that host are "
                    + "logged at DEBUG from now on)", f.group(), ctx.channel().remoteAddress(), text);
            } else {
                LOG.debug("[{}] refused connection from {} and closed it: {}", f.group(), ctx.channel().remoteAddress(),
                    text);
            }
            byte[] err = new Frame(Frame.Kind.ERROR, f.requestId(), f.group(), text.getBytes(StandardCharsets.UTF_8))
                .encode();
            ctx.writeAndFlush(Unpooled.wrappedBuffer(err)).addListener(ChannelFutureListener.CLOSE);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
            if (evt instanceof SslHandshakeCompletionEvent e && !e.isSuccess()) {
                LOG.warn("refused connection from {}: TLS handshake failed: {}", ctx.channel().remoteAddress(),
                    e.cause().toString());
                ctx.close();
                return;
            }
            super.userEventTriggered(ctx, evt);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof TooLongFrameException) {
                LOG.warn("closing connection from {}: {}", ctx.channel().remoteAddress(), cause.getMessage());
            } else if (expected(ctx, cause)) {
                LOG.warn("closing connection from {}: {}", ctx.channel().remoteAddress(), cause.toString());
            }
            ctx.close();
        }
    }
}
