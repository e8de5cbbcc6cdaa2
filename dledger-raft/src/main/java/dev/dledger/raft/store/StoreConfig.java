package dev.dledger.raft.store;

/**
 * The layout settings of a {@link SegmentedLogStore}. They must match the store on disk: a store written with other
 * sizes refuses to open, naming the file whose size is off.
 *
 * @param dataFileSizeBytes  size of each data file. Default 1 GiB, DLedger's {@code mappedFileSizeForEntryData};
 *                           RocketMQ DLedger mode uses its {@code mappedFileSizeCommitLog}
 * @param indexFileSizeBytes size of each index file, a multiple of 32. Default 160 MiB (5 Mi units), DLedger's
 *                           {@code mappedFileSizeForEntryIndex}
 * @param termCacheEntries   terms of the newest entries kept in memory for the protocol's lookups. Default 1 Mi
 */
public record StoreConfig(int dataFileSizeBytes, int indexFileSizeBytes, int termCacheEntries) {

    public StoreConfig {
        if (dataFileSizeBytes < 4096) {
            throw new IllegalArgumentException("dataFileSizeBytes must be >= 4096, was " + dataFileSizeBytes);
        }
        if (indexFileSizeBytes < EntryFormat.INDEX_UNIT_SIZE || indexFileSizeBytes % EntryFormat.INDEX_UNIT_SIZE != 0) {
            throw new IllegalArgumentException("indexFileSizeBytes must be a positive multiple of 32, was "
                + indexFileSizeBytes);
        }
        if (termCacheEntries < 1024) {
            throw new IllegalArgumentException("termCacheEntries must be >= 1024, was " + termCacheEntries);
        }
    }

    /** DLedger's defaults. */
    public static StoreConfig defaults() {
        return new StoreConfig(1 << 30, 32 * 5 * 1024 * 1024, 1 << 20);
    }

    /** A copy with other file sizes. */
    public StoreConfig withFileSizes(int dataBytes, int indexBytes) {
        return new StoreConfig(dataBytes, indexBytes, termCacheEntries);
    }

    /**
     * The layout of an existing store: file sizes read off its first data and index files; {@code fallback}'s for
     * a folder that has none yet.
     */
    public static StoreConfig detect(java.nio.file.Path dir, StoreConfig fallback) throws java.io.IOException {
        int data = firstFileSize(dir.resolve("data"), fallback.dataFileSizeBytes());
        int index = firstFileSize(dir.resolve("index"), fallback.indexFileSizeBytes());
        return new StoreConfig(data, index, fallback.termCacheEntries());
    }

    private static int firstFileSize(java.nio.file.Path folder, int fallback) throws java.io.IOException {
        if (!java.nio.file.Files.isDirectory(folder)) {
            return fallback;
        }
        try (java.util.stream.Stream<java.nio.file.Path> s = java.nio.file.Files.list(folder)) {
            java.util.Optional<java.nio.file.Path> first = s.filter(p -> p.getFileName().toString().matches("\\d{20}"))
                .sorted().findFirst();
            if (first.isEmpty()) {
                return fallback;
            }
            long size = java.nio.file.Files.size(first.get());
            if (size <= 0 || size > Integer.MAX_VALUE) {
                throw new StoreCorruptedException(first.get() + " has an impossible size of " + size + " bytes");
            }
            return (int) size;
        }
    }
}
