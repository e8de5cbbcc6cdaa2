package dev.dledger.raft.transport;

import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Writes frames to one channel from any thread, in the order given, with one task on the channel's event loop and
 * one flush for every run of frames that arrived meanwhile. A plain {@code writeAndFlush} from another thread costs
 * a task and a socket write per frame; a driver that sends many frames in one pass (appends to every follower,
 * answers to many clients) costs one of each here.
 *
 * <p>Thread-safe. A frame written after the channel closed is dropped; its listener, if any, sees the failure.
 */
public final class BatchingWriter {

    private final Channel channel;
    private final Queue<Pending> queue = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean scheduled = new AtomicBoolean();
    private final Runnable drain = this::drain;

    private record Pending(byte[] frame, ChannelFutureListener listener) {
    }

    /** A writer of {@code channel}. */
    public BatchingWriter(Channel channel) {
        this.channel = channel;
    }

    /** The channel written to. */
    public Channel channel() {
        return channel;
    }

    /** Writes {@code frame} (a whole frame, length field included) soon. */
    public void write(byte[] frame) {
        write(frame, null);
    }

    /**
     * Writes {@code frame} soon; {@code listener} (when not null) is told, on the event loop, whether the write
     * succeeded.
     */
    public void write(byte[] frame, ChannelFutureListener listener) {
        queue.offer(new Pending(frame, listener));
        // Only the first frame of a run schedules the drain; the drain clears the flag before it takes the queue, so
        // a frame added after it took its last one schedules the next drain.
        if (!scheduled.get() && scheduled.compareAndSet(false, true)) {
            try {
                channel.eventLoop().execute(drain);
            } catch (RejectedExecutionException e) {
                // The event loop is shut down: nothing will be written on this channel any more.
                scheduled.set(false);
                dropAll(e);
            }
        }
    }

    private void dropAll(Throwable cause) {
        Pending p;
        while ((p = queue.poll()) != null) {
            if (p.listener() != null) {
                try {
                    p.listener().operationComplete(channel.newFailedFuture(cause));
                } catch (Exception e) {
                    // a listener that fails on a failure has nothing more to be told
                }
            }
        }
    }

    private void drain() {
        scheduled.set(false);
        Pending p;
        boolean wrote = false;
        while ((p = queue.poll()) != null) {
            if (p.listener() == null) {
                channel.write(Unpooled.wrappedBuffer(p.frame()), channel.voidPromise());
            } else {
                channel.write(Unpooled.wrappedBuffer(p.frame())).addListener(p.listener());
            }
            wrote = true;
        }
        if (wrote) {
            channel.flush();
        }
    }
}
