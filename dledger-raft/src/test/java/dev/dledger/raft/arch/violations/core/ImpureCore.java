package dev.dledger.raft.arch.violations.core;

import dev.dledger.raft.arch.violations.server.Server;
import io.netty.buffer.ByteBuf;
import java.io.File;
import java.net.InetSocketAddress;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Instant;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Deliberately impure "core" classes for the layering test: each nested class breaks exactly the rule its name says,
 * so that the test can prove every rule fires. Nothing here is ever run.
 */
public final class ImpureCore {

    private ImpureCore() {
    }

    static final class FileUse {
        boolean exists() {
            return new File("x").exists();
        }
    }

    static final class PathUse {
        Path path() {
            return Paths.get("x");
        }
    }

    static final class SocketUse {
        InetSocketAddress address() {
            return new InetSocketAddress(1);
        }
    }

    static final class ChannelUse {
        FileChannel channel;
    }

    static final class ConsoleUse {
        void print() {
            System.out.println("x");
        }
    }

    static final class ExecutorUse {
        ExecutorService pool() {
            return Executors.newSingleThreadExecutor();
        }
    }

    static final class LockUse {
        final ReentrantLock lock = new ReentrantLock();
    }

    static final class AtomicUse {
        final AtomicLong counter = new AtomicLong();
    }

    static final class ThreadUse {
        void start(Thread t) {
            t.start();
        }
    }

    static final class RunnableUse implements Runnable {
        @Override
        public void run() {
        }
    }

    static final class WallClockUse {
        long now() {
            return System.currentTimeMillis();
        }
    }

    static final class NanoClockUse {
        long now() {
            return System.nanoTime();
        }
    }

    static final class InstantUse {
        Instant now() {
            return Instant.now();
        }
    }

    static final class RandomUse {
        int roll() {
            return new Random().nextInt(6);
        }
    }

    static final class MathRandomUse {
        double roll() {
            return Math.random();
        }
    }

    static final class UuidUse {
        UUID id() {
            return UUID.randomUUID();
        }
    }

    static final class NettyUse {
        ByteBuf buffer;
    }

    static final class Slf4jUse {
        final Logger log = LoggerFactory.getLogger(Slf4jUse.class);
    }

    static final class JulUse {
        final java.util.logging.Logger log = java.util.logging.Logger.getLogger("x");
    }

    static final class ServerAware {
        Server server;
    }
}
