package dev.dledger.raft.transport;

import dev.dledger.raft.core.Message;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.flush.FlushConsolidationHandler;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The production {@link Transport}: one Netty server socket per process, shared by every group it hosts
 * (multi-raft), and one outbound connection per peer address, opened on first use and again after a failure.
 *
 * <p>Each connection carries {@link Frame}s. A frame longer than {@code maxFrameBytes}, or one that does not decode,
 * closes that connection only, with a logged reason; other connections and groups go on. A Raft message for a group
 * this process does not host, for another node id, or from a sender that is not a known peer of the group is
 * refused with an {@link Frame.Kind#ERROR} frame that says why.
 */
public final class NettyTransport implements Transport {

    private static final Logger LOG = LoggerFactory.getLogger(NettyTransport.class);

    /** Default largest frame: 32 MiB. */
    public static final int DEFAULT_MAX_FRAME_BYTES = 32 << 20;

    private final int maxFrameBytes;
    private final EventLoopGroup boss = new NioEventLoopGroup(1);
    private final EventLoopGroup workers;
    private final Channel serverChannel;
    private final Map<String, GroupBinding> groups = new ConcurrentHashMap<>();
    private final Map<InetSocketAddress, Outbound> outbound = new ConcurrentHashMap<>();
    private final AtomicLong dropped = new AtomicLong();
    private final AtomicLong refused = new AtomicLong();
    private final AtomicLong bytesIn = new AtomicLong();
    private final AtomicLong bytesOut = new AtomicLong();
    private volatile Consumer<String> errorListener = reason -> { };

    private record GroupBinding(String selfId, Map<String, InetSocketAddress> peers, Consumer<Message> inbound,
                                java.util.concurrent.atomic.AtomicReference<RequestHandler> requests,
                                java.util.concurrent.atomic.AtomicReference<Consumer<SnapshotChunk>> chunks) {
    }

    /**
     * Starts listening on {@code bind}.
     *
     * @param bind          the address to listen on (port 0 picks a free port)
     * @param ioThreads     Netty worker threads shared by all connections
     * @param maxFrameBytes the largest frame accepted or sent, length field excluded
     * @throws TransportException if the port cannot be bound
     */
    public NettyTransport(InetSocketAddress bind, int ioThreads, int maxFrameBytes) {
        this.maxFrameBytes = maxFrameBytes;
        this.workers = new NioEventLoopGroup(ioThreads);
        ServerBootstrap sb = new ServerBootstrap().group(boss, workers).channel(NioServerSocketChannel.class)
            .childOption(ChannelOption.TCP_NODELAY, true)
            .childHandler(new ChannelInitializer<SocketChannel>() {
                @Override
                protected void initChannel(SocketChannel ch) {
                    ch.pipeline().addLast(new FlushConsolidationHandler(256, true))
                        .addLast(new LengthFieldBasedFrameDecoder(maxFrameBytes, 0, 4, 0, 4))
                        .addLast(new InboundHandler());
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
        LOG.info("listening on {}", serverChannel.localAddress());
    }

    /** The address the server socket is bound to. */
    public InetSocketAddress localAddress() {
        return (InetSocketAddress) serverChannel.localAddress();
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

    /** Inbound frames refused (unknown group, unknown peer, wrong target). */
    public long refusedFrames() {
        return refused.get();
    }

    /** Receives the reason of every ERROR frame a peer sends back (for logs and tests). */
    public void onPeerError(Consumer<String> listener) {
        this.errorListener = listener;
    }

    @Override
    public void register(String group, String selfId, Consumer<Message> inbound) {
        groups.put(group, new GroupBinding(selfId, new ConcurrentHashMap<>(), inbound,
            new java.util.concurrent.atomic.AtomicReference<>(), new java.util.concurrent.atomic.AtomicReference<>()));
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
    }

    @Override
    public void unregister(String group) {
        groups.remove(group);
    }

    @Override
    public void send(String group, Message m) {
        sendFrame(group, m.to(), new Frame(Frame.Kind.RAFT, 0, group, MessageCodec.encode(m)).encode());
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
        outbound.computeIfAbsent(to, Outbound::new).write(frame);
    }

    @Override
    public void close() {
        for (Outbound o : outbound.values()) {
            o.close();
        }
        serverChannel.close().syncUninterruptibly();
        boss.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
        workers.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
    }

    /** One outbound connection, opened lazily and again after it fails. */
    private final class Outbound {
        private final InetSocketAddress address;
        private volatile Channel channel;
        private volatile ChannelFuture connecting;

        Outbound(InetSocketAddress address) {
            this.address = address;
        }

        void write(byte[] frame) {
            Channel ch = channel;
            if (ch != null && ch.isActive()) {
                if (!ch.isWritable()) {
                    dropped.incrementAndGet();
                    return;
                }
                bytesOut.addAndGet(frame.length);
                ch.writeAndFlush(Unpooled.wrappedBuffer(frame), ch.voidPromise());
                return;
            }
            dropped.incrementAndGet();
            connect();
        }

        private synchronized void connect() {
            if (connecting != null && !connecting.isDone()) {
                return;
            }
            Bootstrap b = new Bootstrap().group(workers).channel(NioSocketChannel.class)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 1000)
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, new WriteBufferWaterMark(8 << 20, 16 << 20))
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new FlushConsolidationHandler(256, true))
                            .addLast(new LengthFieldBasedFrameDecoder(maxFrameBytes, 0, 4, 0, 4))
                            .addLast(new ReplyHandler());
                    }
                });
            connecting = b.connect(address);
            connecting.addListener(f -> {
                if (f.isSuccess()) {
                    channel = connecting.channel();
                    LOG.info("connected to {}", address);
                } else {
                    LOG.debug("cannot connect to {}: {}", address, f.cause().toString());
                }
            });
        }

        void close() {
            Channel ch = channel;
            if (ch != null) {
                ch.close();
            }
        }
    }

    /** Reads ERROR frames a peer sends back on an outbound connection. */
    private final class ReplyHandler extends SimpleChannelInboundHandler<ByteBuf> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, ByteBuf msg) {
            try {
                Frame f = Frame.decode(msg.nioBuffer());
                if (f.kind() == Frame.Kind.ERROR) {
                    String reason = new String(f.body(), StandardCharsets.UTF_8);
                    LOG.warn("[{}] {} refused our message: {}", f.group(), ctx.channel().remoteAddress(), reason);
                    errorListener.accept(reason);
                }
            } catch (CodecException e) {
                LOG.warn("closing connection to {}: {}", ctx.channel().remoteAddress(), e.getMessage());
                ctx.close();
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.warn("closing connection to {}: {}", ctx.channel().remoteAddress(), cause.toString());
            ctx.close();
        }
    }

    /** Decodes inbound frames, checks who they are from and for, and hands Raft messages to their group. */
    private final class InboundHandler extends SimpleChannelInboundHandler<ByteBuf> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, ByteBuf msg) {
            Frame f;
            Message m;
            bytesIn.addAndGet(msg.readableBytes() + 4L);
            try {
                f = Frame.decode(msg.nioBuffer());
                if (f.kind() == Frame.Kind.REQUEST) {
                    serve(ctx, f);
                    return;
                }
                if (f.kind() == Frame.Kind.SNAPSHOT) {
                    chunk(ctx, f, SnapshotChunk.decode(java.nio.ByteBuffer.wrap(f.body())));
                    return;
                }
                if (f.kind() != Frame.Kind.RAFT) {
                    refuse(ctx, f, "frame kind " + f.kind() + " is not served here");
                    return;
                }
                m = MessageCodec.decode(java.nio.ByteBuffer.wrap(f.body()));
            } catch (CodecException e) {
                LOG.warn("closing connection from {}: malformed frame: {}", ctx.channel().remoteAddress(),
                    e.getMessage());
                ctx.close();
                return;
            }
            GroupBinding g = groups.get(f.group());
            if (g == null) {
                refuse(ctx, f, "unknown group '" + f.group() + "'");
            } else if (!g.selfId().equals(m.to())) {
                refuse(ctx, f, "group '" + f.group() + "' here is node " + g.selfId() + ", not " + m.to());
            } else if (!g.peers().containsKey(m.from())) {
                refuse(ctx, f, "unknown peer '" + m.from() + "' in group '" + f.group() + "'");
            } else {
                g.inbound().accept(m);
            }
        }

        private void chunk(ChannelHandlerContext ctx, Frame f, SnapshotChunk c) {
            GroupBinding g = groups.get(f.group());
            Consumer<SnapshotChunk> h = g == null ? null : g.chunks().get();
            if (h == null) {
                refuse(ctx, f, "unknown group '" + f.group() + "'");
            } else if (!g.selfId().equals(c.to())) {
                refuse(ctx, f, "group '" + f.group() + "' here is node " + g.selfId() + ", not " + c.to());
            } else if (!g.peers().containsKey(c.from())) {
                refuse(ctx, f, "unknown peer '" + c.from() + "' in group '" + f.group() + "'");
            } else {
                h.accept(c);
            }
        }

        private void serve(ChannelHandlerContext ctx, Frame f) {
            GroupBinding g = groups.get(f.group());
            RequestHandler h = g == null ? null : g.requests().get();
            if (h == null) {
                refuse(ctx, f, "unknown group '" + f.group() + "'");
                return;
            }
            CompletableFuture<byte[]> reply;
            try {
                reply = h.handle(f.body());
            } catch (CodecException e) {
                refuse(ctx, f, "malformed request: " + e.getMessage());
                return;
            }
            reply.whenComplete((body, error) -> {
                if (error != null) {
                    Throwable cause = error instanceof java.util.concurrent.CompletionException && error.getCause() != null
                        ? error.getCause() : error;
                    refuse(ctx, f, String.valueOf(cause.getMessage()));
                } else {
                    ctx.writeAndFlush(Unpooled.wrappedBuffer(
                        new Frame(Frame.Kind.RESPONSE, f.requestId(), f.group(), body).encode()));
                }
            });
        }

        private void refuse(ChannelHandlerContext ctx, Frame f, String reason) {
            refused.incrementAndGet();
            LOG.warn("refused a frame from {}: {}", ctx.channel().remoteAddress(), reason);
            byte[] err = new Frame(Frame.Kind.ERROR, f.requestId(), f.group(), reason.getBytes(StandardCharsets.UTF_8))
                .encode();
            ctx.writeAndFlush(Unpooled.wrappedBuffer(err));
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof TooLongFrameException) {
                LOG.warn("closing connection from {}: {}", ctx.channel().remoteAddress(), cause.getMessage());
            } else {
                LOG.warn("closing connection from {}: {}", ctx.channel().remoteAddress(), cause.toString());
            }
            ctx.close();
        }
    }
}
