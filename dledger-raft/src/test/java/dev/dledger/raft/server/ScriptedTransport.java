package dev.dledger.raft.server;

import dev.dledger.raft.core.Message;
import dev.dledger.raft.transport.IoThread;
import dev.dledger.raft.transport.RequestHandler;
import dev.dledger.raft.transport.SnapshotChunk;
import dev.dledger.raft.transport.Transport;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * A {@link Transport} a test drives by hand, for driver tests that need an exact order of events: the node's driver
 * runs on a scripted {@link IoThread} whose tasks run only when the test calls {@link #runTasks()} (on the test's
 * thread, which then is the driver thread); inbound messages and chunks are handed to the node when the test says so;
 * what the node sends is recorded. Timed tasks (the tick timer) run with the next {@link #runTasks()}, whatever their
 * delay: ticks themselves follow the real clock of the driver.
 *
 * <p>Used from the test thread only.
 */
final class ScriptedTransport implements Transport {

    final List<Message> sent = new ArrayList<>();
    final List<SnapshotChunk> chunksSent = new ArrayList<>();
    private final ArrayDeque<Runnable> tasks = new ArrayDeque<>();
    private Consumer<Message> inbound;
    private Consumer<SnapshotChunk> chunks;
    private boolean inTask;

    private final IoThread thread = new IoThread() {
        @Override
        public boolean inThread() {
            return inTask;
        }

        @Override
        public boolean execute(Runnable task) {
            tasks.addLast(task);
            return true;
        }

        @Override
        public boolean schedule(Runnable task, long delayNanos) {
            tasks.addLast(task);
            return true;
        }

        @Override
        public boolean offloadsBlockingWork() {
            // Everything runs on the test's thread, in the order the test gives.
            return false;
        }
    };

    /** Runs the queued tasks (driver passes) until none is left, at most {@code limit} of them. */
    void runTasks(int limit) {
        for (int i = 0; i < limit && !tasks.isEmpty(); i++) {
            inTask = true;
            try {
                tasks.pollFirst().run();
            } finally {
                inTask = false;
            }
        }
    }

    /** Runs one batch of queued tasks: the pass an input woke, and the passes that follow while there is work. */
    void runTasks() {
        runTasks(64);
    }

    /** Runs {@code work} as if on the driver thread (a node closed there stops at once, without waiting). */
    void onThread(Runnable work) {
        inTask = true;
        try {
            work.run();
        } finally {
            inTask = false;
        }
    }

    /** Hands {@code m} to the node as if read from the network (queued for its next pass). */
    void deliver(Message m) {
        inbound.accept(m);
    }

    /** Hands a snapshot chunk to the node as if read from the network (queued for its next pass). */
    void deliver(SnapshotChunk c) {
        chunks.accept(c);
    }

    @Override
    public void send(String group, Message m) {
        sent.add(m);
    }

    @Override
    public void register(String group, String selfId, Consumer<Message> in) {
        this.inbound = in;
    }

    @Override
    public void sendChunk(String group, SnapshotChunk chunk) {
        chunksSent.add(chunk);
    }

    @Override
    public void onChunks(String group, Consumer<SnapshotChunk> in) {
        this.chunks = in;
    }

    @Override
    public void serveRequests(String group, RequestHandler handler) {
    }

    @Override
    public void unregister(String group) {
    }

    @Override
    public IoThread driverThread() {
        return thread;
    }

    @Override
    public void close() {
    }
}
