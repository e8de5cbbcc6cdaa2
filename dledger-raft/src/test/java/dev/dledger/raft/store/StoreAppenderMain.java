package dev.dledger.raft.store;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The child process of {@link StoreKillTest}: reopens the store, then appends batches forever, fsyncing each and
 * printing {@code durable N} once entry N is durable. The parent kills it with SIGKILL at random moments.
 */
public final class StoreAppenderMain {

    private StoreAppenderMain() {
    }

    static byte[] body(long index) {
        return ("kill-test-entry-" + index + "-" + "k".repeat((int) (index % 200))).getBytes(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        Random random = new Random(Long.parseLong(args[1]));
        // The harness's negative control: a child that ends on its own once this index is durable (never by default).
        long exitAfter = args.length > 2 ? Long.parseLong(args[2]) : Long.MAX_VALUE;
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, StoreKillTest.CONFIG)) {
            long next = s.lastIndex() + 1;
            System.out.println("opened " + s.lastIndex());
            System.out.flush();
            while (true) {
                int n = 1 + random.nextInt(20);
                List<Entry> batch = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    batch.add(new Entry(next + i, 1, EntryType.NORMAL, body(next + i)));
                }
                s.append(batch);
                s.sync();
                next += n;
                System.out.println("durable " + (next - 1));
                System.out.flush();
                if (next - 1 >= exitAfter) {
                    System.out.println("exiting on my own");
                    System.out.flush();
                    return;
                }
            }
        }
    }
}
