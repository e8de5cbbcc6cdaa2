package dev.dledger.raft.store;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.dledger.raft.fuzz.FuzzTally;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;

/**
 * Fuzzes the store's recovery from arbitrary file bytes: the input lays out a node folder (data files and index files
 * named as DLedger names them, mostly of the right size, and the meta files) with fuzzed contents, then
 * {@link StoreFuzzing#exercise} opens and reads it under the store's contract.
 */
class StoreBytesFuzzTest {

    private static final FuzzTally TALLY = new FuzzTally("store-bytes");
    private static final Path DIR = StoreFuzzing.scratch("store-bytes");

    @FuzzTest
    void recoveryFromAnyBytesSucceedsOrNamesTheFile(FuzzedDataProvider data) {
        TALLY.run(() -> {
            StoreFuzzing.clear(DIR);
            layOut(data, DIR);
            StoreFuzzing.exercise(DIR);
        });
    }

    @AfterAll
    static void report() {
        TALLY.report();
        StoreFuzzing.delete(DIR);
    }

    private static void layOut(FuzzedDataProvider data, Path dir) {
        try {
            Path dataDir = Files.createDirectories(dir.resolve("data"));
            Path indexDir = Files.createDirectories(dir.resolve("index"));
            files(data, dataDir, StoreFuzzing.CONFIG.dataFileSizeBytes(), 4);
            files(data, indexDir, StoreFuzzing.CONFIG.indexFileSizeBytes(), 2);
            for (String name : StoreFuzzing.META_FILES) {
                if (data.consumeBoolean()) {
                    Files.write(dir.resolve(name), data.consumeBytes(data.consumeInt(0, 96)));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Up to {@code most} consecutive files; now and then one of a wrong size or name. */
    private static void files(FuzzedDataProvider data, Path folder, int size, int most) throws IOException {
        int count = data.consumeInt(0, most);
        long first = data.consumeInt(0, 3);
        for (int k = 0; k < count; k++) {
            int shape = data.consumeInt(0, 15);
            String name = shape == 0 ? data.consumeString(24) : EntryFormat.fileName((first + k) * size
                + (shape == 1 ? data.consumeInt(1, size - 1) : 0));
            int length = shape == 2 ? data.consumeInt(0, 2 * size) : size;
            byte[] content = Arrays.copyOf(data.consumeBytes(data.consumeInt(0, length)), length);
            // Only plain names: a fuzzed name never leaves the folder.
            if (name.matches("[0-9A-Za-z_-][0-9A-Za-z_.-]*")) {
                Files.write(folder.resolve(name), content);
            }
        }
    }
}
