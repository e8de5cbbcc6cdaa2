package dev.dledger.raft.store;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a store's open costs at a broker's start (the cutover pause of a migration): recovery checks every record of
 * the last three data files. Writes three data files of 1 KiB entries ({@code -Dopen.fileMb}, default 16
 * MiB files here; brokers use 1 GiB), then opens the store twice (the second time from the page cache) and prints the
 * time and the rate.
 */
class StoreOpenCostTest {

    @TempDir
    Path dir;

    @Test
    void openRecoversTheLastThreeDataFilesAndReportsItsCost() {
        int fileBytes = Integer.getInteger("open.fileMb", 16) << 20;
        StoreConfig cfg = StoreConfig.defaults().withFileSizes(fileBytes, StoreConfig.defaults().indexFileSizeBytes());
        byte[] body = new byte[1024];
        // Three data files, nearly full: all of them are checked.
        long entries = 3L * (fileBytes / (body.length + EntryFormat.HEADER_SIZE) - 1);
        try (SegmentedLogStore log = SegmentedLogStore.open(dir, cfg)) {
            List<Entry> batch = new ArrayList<>();
            for (long i = 0; i < entries; i++) {
                batch.add(new Entry(i, 1, EntryType.NORMAL, body));
                if (batch.size() == 512) {
                    log.append(batch);
                    batch = new ArrayList<>();
                }
            }
            if (!batch.isEmpty()) {
                log.append(batch);
            }
            log.sync();
        }
        for (int run = 1; run <= 2; run++) {
            long t0 = System.nanoTime();
            try (SegmentedLogStore log = SegmentedLogStore.open(dir, cfg)) {
                long ms = (System.nanoTime() - t0) / 1_000_000;
                assertEquals(entries - 1, log.lastIndex());
                double mb = 3.0 * fileBytes / 1e6;
                System.out.printf("store open %d: %d entries, data files of %d MiB, the last 3 (%.0f MB) checked in "
                    + "%d ms (%.0f MB/s)%n", run, entries, fileBytes >> 20, mb, ms, mb / Math.max(1e-3, ms / 1e3));
            }
        }
    }
}
