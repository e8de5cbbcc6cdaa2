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
}
