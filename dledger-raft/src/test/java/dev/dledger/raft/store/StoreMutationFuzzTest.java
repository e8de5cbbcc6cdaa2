package dev.dledger.raft.store;

import static dev.dledger.raft.fuzz.FuzzTally.check;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.HardState;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.RequestId;
import dev.dledger.raft.core.SnapshotMeta;
import dev.dledger.raft.fuzz.FuzzTally;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzzes the store's recovery from a real store with damage: a node folder written by our code (several data files,
 * a compacted prefix, config, no-op and request-id entries, term and vote, checkpoint) is copied, then bytes are
 * flipped, overwritten, zeroed, copied, truncated and files deleted where the input says, past the magic checks that
 * random bytes rarely pass. {@link StoreFuzzing#exercise} then opens and reads it under the store's contract.
 *
 * <p>Beyond that contract: no damage may make the store hand out an entry that was never written. With the
 * {@code crc-from} file intact (it tells from which index on the CRCs are checked), every entry that reads back is the
 * entry written at its index.
 */
class StoreMutationFuzzTest {

    private static final FuzzTally TALLY = new FuzzTally("store-mutation");
    private static final Path DIR = StoreFuzzing.scratch("store-mutation");
    /** The files of the written store, by path relative to its folder, in name order. */
    private static final TreeMap<String, byte[]> BASE = new TreeMap<>();
    private static final Map<Long, Entry> WRITTEN = new HashMap<>();
    private static List<String> names;

    @BeforeAll
    static void writeStore() throws IOException {
        Path dir = StoreFuzzing.scratch("store-base");
        try (SegmentedLogStore s = SegmentedLogStore.open(dir, StoreFuzzing.CONFIG)) {
            // About 25 entries a data file: a few files for the scan at recovery, a few before them.
            s.append(entries(0, 100, 1));
            s.compactPrefix(new SnapshotMeta(30, 1, Membership.of("n0", "n1", "n2")));
            s.append(entries(100, 50, 2));
            s.sync();
        }
        MetaFiles meta = new MetaFiles(dir);
        meta.writeHardState(new HardState(2, "n1"));
        meta.writeCommitCheckpoint(120);
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.filter(Files::isRegularFile).toList()) {
                BASE.put(dir.relativize(p).toString(), Files.readAllBytes(p));
            }
        }
        names = new ArrayList<>(BASE.keySet());
        StoreFuzzing.delete(dir);
    }

    private static List<Entry> entries(long from, int count, long term) {
        List<Entry> out = new ArrayList<>();
        for (long i = from; i < from + count; i++) {
            Entry e;
            if (i % 29 == 0) {
                e = new Entry(i, term, EntryType.NOOP, new byte[0]);
            } else if (i % 41 == 0) {
                e = new Entry(i, term, EntryType.CONFIG, Membership.of("n0", "n1", "n2").encode());
            } else {
                byte[] body = ("entry " + i + " " + "x".repeat((int) (40 + i * 37 % 120))).getBytes(StandardCharsets.UTF_8);
                e = new Entry(i, term, EntryType.NORMAL, body, i % 3 == 0 ? new RequestId(7, i) : null);
            }
            out.add(e);
            WRITTEN.put(i, e);
        }
        return out;
    }

    @AfterAll
    static void report() {
        TALLY.report();
        StoreFuzzing.delete(DIR);
    }

    @FuzzTest
    void recoveryFromDamageSucceedsOrNamesTheFile(FuzzedDataProvider data) {
        TALLY.run(() -> {
            StoreFuzzing.clear(DIR);
            boolean crcFromTouched = damage(data);
            Map<Long, Entry> read = StoreFuzzing.exercise(DIR);
            if (!crcFromTouched) {
                for (Map.Entry<Long, Entry> e : read.entrySet()) {
                    check(e.getValue().equals(WRITTEN.get(e.getKey())), "entry " + e.getKey() + " reads back as "
                        + e.getValue() + ", but " + WRITTEN.get(e.getKey()) + " was written", null);
                }
            }
        });
    }

    /** Writes the store with the damage the input describes; returns whether the crc-from file was touched. */
    private static boolean damage(FuzzedDataProvider data) {
        Map<String, byte[]> files = new HashMap<>();
        BASE.forEach((name, bytes) -> files.put(name, bytes.clone()));
        boolean crcFromTouched = false;
        int damages = data.consumeInt(1, 6);
        for (int k = 0; k < damages; k++) {
            String name = names.get(data.consumeInt(0, names.size() - 1));
            crcFromTouched |= name.equals("crc-from");
            byte[] b = files.get(name);
            if (b == null) {
                continue;
            }
            files.put(name, damaged(data, b));
        }
        try {
            for (Map.Entry<String, byte[]> f : files.entrySet()) {
                if (f.getValue() != null) {
                    Path p = DIR.resolve(f.getKey());
                    Files.createDirectories(p.getParent());
                    Files.write(p, f.getValue());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return crcFromTouched;
    }

    /** One damage to {@code b}; null deletes the file. */
    private static byte[] damaged(FuzzedDataProvider data, byte[] b) {
        int op = data.consumeInt(0, 7);
        if (op == 7) {
            return null;
        }
        if (op == 6) {
            return Arrays.copyOf(b, data.consumeInt(0, b.length + 64));
        }
        if (b.length == 0) {
            return b;
        }
        int at = data.consumeInt(0, b.length - 1);
        switch (op) {
            case 0:
                b[at] ^= (byte) (1 << data.consumeInt(0, 7));
                break;
            case 1:
                b[at] = data.consumeByte();
                break;
            case 2:
                if (b.length >= 4) {
                    ByteBuffer.wrap(b).putInt(Math.min(at, b.length - 4), data.consumeInt());
                }
                break;
            case 3:
                if (b.length >= 8) {
                    ByteBuffer.wrap(b).putLong(Math.min(at, b.length - 8), data.consumeLong());
                }
                break;
            case 4:
                Arrays.fill(b, at, Math.min(b.length, at + data.consumeInt(1, 256)), (byte) 0);
                break;
            default:
                int from = data.consumeInt(0, b.length - 1);
                int n = Math.min(data.consumeInt(1, 256), Math.min(b.length - from, b.length - at));
                System.arraycopy(b, from, b, at, n);
                break;
        }
        return b;
    }
}
