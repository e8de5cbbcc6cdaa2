package dev.dledger.raft.store.bench;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.store.SegmentedLogStore;
import dev.dledger.raft.store.StoreConfig;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Appends of 1 KiB entries to the segmented store in batches of {@link #BATCH} (what a driver writes per Ready), next
 * to raw sequential writes of the same bytes to a plain file. Each operation is one 1 KiB entry, so the scores are
 * entries/s, and times 1 KiB they are bandwidth. {@code fsync=true}: one fsync per batch (group commit).
 */
@State(Scope.Thread)
public class StoreWriteBench {

    /** Entries per write, as a busy Ready carries. */
    public static final int BATCH = 256;
    static final int SIZE = 1024;

    @Param({"false", "true"})
    public boolean fsync;

    private Path dir;
    private SegmentedLogStore store;
    private FileChannel raw;
    private long rawPos;
    private long next;
    private final byte[] body = new byte[SIZE];
    private ByteBuffer rawBlock;

    @Setup(Level.Trial)
    public void open() throws IOException {
        dir = Files.createTempDirectory("store-bench");
        store = SegmentedLogStore.open(dir.resolve("log"), StoreConfig.defaults());
        raw = FileChannel.open(dir.resolve("raw"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        rawBlock = ByteBuffer.allocate(BATCH * (SIZE + 48));
    }

    @TearDown(Level.Trial)
    public void close() throws IOException {
        store.close();
        raw.close();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void storeAppend() {
        List<Entry> batch = new ArrayList<>(BATCH);
        for (int i = 0; i < BATCH; i++) {
            batch.add(new Entry(next++, 1, EntryType.NORMAL, body));
        }
        store.append(batch);
        if (fsync) {
            store.sync();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void rawWrite() throws IOException {
        rawBlock.clear();
        while (rawBlock.hasRemaining()) {
            rawPos += raw.write(rawBlock, rawPos);
        }
        if (fsync) {
            raw.force(false);
        }
    }
}
