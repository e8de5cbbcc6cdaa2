package dev.dledger.raft.transport;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.ServerSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;

/**
 * The Netty I/O of the Raft port and the client: Linux's epoll through Netty's native transport where it loads, else
 * Java's NIO selector. {@code -Ddledger.transport.nio=true} forces NIO.
 */
public final class NettyIo {

    /** Whether the native epoll transport is used. */
    public static final boolean EPOLL = !Boolean.getBoolean("dledger.transport.nio") && Epoll.isAvailable();

    private NettyIo() {
    }

    /** An event loop group of {@code threads} threads. */
    public static EventLoopGroup group(int threads) {
        return EPOLL ? new EpollEventLoopGroup(threads) : new NioEventLoopGroup(threads);
    }

    /** The listening channel's class for {@link #group}'s loops. */
    public static Class<? extends ServerSocketChannel> serverChannel() {
        return EPOLL ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
    }

    /** The connection's class for {@link #group}'s loops. */
    public static Class<? extends SocketChannel> socketChannel() {
        return EPOLL ? EpollSocketChannel.class : NioSocketChannel.class;
    }
}
