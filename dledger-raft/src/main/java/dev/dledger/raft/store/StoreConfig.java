package dev.dledger.raft.store;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The layout settings of a {@link SegmentedLogStore}. The file sizes must match the store on disk: a store written
 * with other sizes refuses to open, naming the file whose size is off.
 *
 * @param dataFileSizeBytes     size of each data file. Default 1 GiB, DLedger's {@code mappedFileSizeForEntryData};
 *                              RocketMQ DLedger mode uses its {@code mappedFileSizeCommitLog}
 * @param indexFileSizeBytes    size of each index file, a multiple of 32. Default 160 MiB (5 Mi units), DLedger's
 *                              {@code mappedFileSizeForEntryIndex}
 * @param termCacheEntries      terms of the newest entries kept in memory for the protocol's lookups. Default 1 Mi
 *                              (8 MiB of heap); at least {@value #MIN_TERM_CACHE}
 * @param recentBytes           bytes of the newest entries kept in memory as written, so that replication and apply
 *                              do not read them back from the files. Default 32 MiB; 0 keeps only the newest entry
 * @param dataStorePaths        the folders the data files live in, DLedger's {@code dataStorePath} (several folders:
 *                              multi-path). Empty (the default) means {@code <store dir>/data}. New data files go to
 *                              the folders in turn, as DLedger does: sorted by name, file number modulo the number of
 *                              folders that are neither read-only nor full. The index stays in
 *                              {@code <store dir>/index} whatever this says
 * @param readOnlyDataStoreDirs folders of older data files that are read, never written or deleted, DLedger's
 *                              {@code readOnlyDataStoreDirs}. Default none. A folder listed here and in
 *                              {@code dataStorePaths} is read-only
 */
public record StoreConfig(int dataFileSizeBytes, int indexFileSizeBytes, int termCacheEntries, long recentBytes,
                          List<Path> dataStorePaths, List<Path> readOnlyDataStoreDirs) {

    /** The smallest term cache. */
    public static final int MIN_TERM_CACHE = 1024;
    private static final long DEFAULT_RECENT_BYTES = 32L << 20;

    /** How DLedger separates the folders of {@code dataStorePath} and {@code readOnlyDataStoreDirs}. */
    public static final String PATH_SEPARATOR = ",";

    public StoreConfig {
        if (dataFileSizeBytes < 4096) {
            throw new IllegalArgumentException("dataFileSizeBytes must be >= 4096, was " + dataFileSizeBytes);
        }
        if (indexFileSizeBytes < EntryFormat.INDEX_UNIT_SIZE || indexFileSizeBytes % EntryFormat.INDEX_UNIT_SIZE != 0) {
            throw new IllegalArgumentException("indexFileSizeBytes must be a positive multiple of 32, was "
                + indexFileSizeBytes);
        }
        if (termCacheEntries < MIN_TERM_CACHE) {
            throw new IllegalArgumentException("termCacheEntries must be >= " + MIN_TERM_CACHE + ", was "
                + termCacheEntries);
        }
        if (recentBytes < 0) {
            throw new IllegalArgumentException("recentBytes must be >= 0, was " + recentBytes);
        }
        dataStorePaths = List.copyOf(dataStorePaths);
        readOnlyDataStoreDirs = List.copyOf(readOnlyDataStoreDirs);
    }

    /** Settings with the data files in {@code <store dir>/data} and no read-only folder. */
    public StoreConfig(int dataFileSizeBytes, int indexFileSizeBytes, int termCacheEntries) {
        this(dataFileSizeBytes, indexFileSizeBytes, termCacheEntries, DEFAULT_RECENT_BYTES, List.of(), List.of());
    }

    /** DLedger's defaults. */
    public static StoreConfig defaults() {
        return new StoreConfig(1 << 30, 32 * 5 * 1024 * 1024, 1 << 20);
    }

    /** A copy with other file sizes. */
    public StoreConfig withFileSizes(int dataBytes, int indexBytes) {
        return new StoreConfig(dataBytes, indexBytes, termCacheEntries, recentBytes, dataStorePaths,
            readOnlyDataStoreDirs);
    }

    /**
     * DLedger's layout with the smallest caches (about 8 KiB of terms, only the newest entry): for a tool that passes
     * over a store once in a small heap (a conversion, a check, an export), where the default caches would take 40 MiB.
     */
    public static StoreConfig lean() {
        return defaults().withCaches(MIN_TERM_CACHE, 0);
    }

    /** A copy with other in-memory caches ({@code termCacheEntries}, {@code recentBytes}). */
    public StoreConfig withCaches(int terms, long recent) {
        return new StoreConfig(dataFileSizeBytes, indexFileSizeBytes, terms, recent, dataStorePaths,
            readOnlyDataStoreDirs);
    }

    /** A copy whose data files live in {@code folders} (multi-path); an empty list means {@code <dir>/data}. */
    public StoreConfig withDataStorePaths(List<Path> folders) {
        return new StoreConfig(dataFileSizeBytes, indexFileSizeBytes, termCacheEntries, recentBytes, folders,
            readOnlyDataStoreDirs);
    }

    /** A copy with other read-only data folders. */
    public StoreConfig withReadOnlyDataStoreDirs(List<Path> folders) {
        return new StoreConfig(dataFileSizeBytes, indexFileSizeBytes, termCacheEntries, recentBytes, dataStorePaths,
            folders);
    }

    /**
     * Splits a DLedger path list ({@code dataStorePath}, {@code readOnlyDataStoreDirs}): folders separated by
     * {@value #PATH_SEPARATOR}, blanks around them ignored; null or blank gives an empty list.
     *
     * @throws IllegalArgumentException if an element between two separators is empty
     */
    public static List<Path> splitPaths(String paths) {
        List<Path> out = new ArrayList<>();
        if (paths == null || paths.isBlank()) {
            return out;
        }
        for (String p : paths.trim().split(PATH_SEPARATOR, -1)) {
            if (p.isBlank()) {
                throw new IllegalArgumentException("empty folder in the path list \"" + paths + "\"");
            }
            out.add(Path.of(p.trim()));
        }
        return out;
    }

    /**
     * The layout of an existing store: file sizes read off its first data and index files; {@code fallback}'s for
     * a folder that has none yet. The data folders are {@code fallback}'s.
     */
    public static StoreConfig detect(Path dir, StoreConfig fallback) throws IOException {
        List<Path> folders = new ArrayList<>(fallback.dataStorePaths());
        if (folders.isEmpty()) {
            folders.add(dir.resolve("data"));
        }
        folders.addAll(fallback.readOnlyDataStoreDirs());
        int data = -1;
        for (Path folder : folders) {
            data = firstFileSize(folder, -1);
            if (data > 0) {
                break;
            }
        }
        int index = firstFileSize(dir.resolve("index"), fallback.indexFileSizeBytes());
        return new StoreConfig(data > 0 ? data : fallback.dataFileSizeBytes(), index, fallback.termCacheEntries(),
            fallback.recentBytes(), fallback.dataStorePaths(), fallback.readOnlyDataStoreDirs());
    }

    private static int firstFileSize(Path folder, int fallback) throws IOException {
        if (!Files.isDirectory(folder)) {
            return fallback;
        }
        try (Stream<Path> s = Files.list(folder)) {
            Optional<Path> first = s.filter(p -> p.getFileName().toString().matches("\\d{20}")).sorted().findFirst();
            if (first.isEmpty()) {
                return fallback;
            }
            long size = Files.size(first.get());
            if (size <= 0 || size > Integer.MAX_VALUE) {
                throw new StoreCorruptedException(first.get() + " has an impossible size of " + size + " bytes");
            }
            return (int) size;
        }
    }
}
