package dev.dledger.rocketmq;

import dev.dledger.raft.store.EntryFormat;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The read side of the Raft log's data files for the broker's readers (reput, pulls, queries): each file mapped
 * read-only once, shared by every reader thread. The writer (the Raft node) writes the same files through its own
 * channel; the page cache makes its bytes visible here. Callers only read below the committed end, which the writer
 * never changes.
 */
final class DataFiles {

    private final Path dataDir;
    private final int fileSize;
    private final ConcurrentHashMap<Long, MappedByteBuffer> maps = new ConcurrentHashMap<>();

    DataFiles(Path dataDir, int fileSize) {
        this.dataDir = dataDir;
        this.fileSize = fileSize;
    }

    int fileSize() {
        return fileSize;
    }

    long fileStart(long offset) {
        return offset - offset % fileSize;
    }

    /**
     * A view of {@code [offset, min(end, end of its file))}, positioned at 0, or null when the file is gone or the
     * range is empty.
     */
    ByteBuffer slice(long offset, long end) {
        long start = fileStart(offset);
        long stop = Math.min(end, start + fileSize);
        if (stop <= offset) {
            return null;
        }
        MappedByteBuffer m = map(start);
        if (m == null) {
            return null;
        }
        return m.slice((int) (offset - start), (int) (stop - offset));
    }

    void clear() {
        maps.clear();
    }

    private MappedByteBuffer map(long start) {
        MappedByteBuffer m = maps.get(start);
        if (m != null) {
            return m;
        }
        Path file = dataDir.resolve(EntryFormat.fileName(start));
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            if (ch.size() < fileSize) {
                throw new IllegalStateException("data file " + file + " has " + ch.size() + " bytes, expected "
                    + fileSize + " (is mappedFileSizeCommitLog the size the store was written with?)");
            }
            MappedByteBuffer mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, fileSize);
            MappedByteBuffer raced = maps.putIfAbsent(start, mapped);
            return raced != null ? raced : mapped;
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot map " + file + ": " + e.getMessage(), e);
        }
    }

    /** The number of data files present. */
    long fileCount() {
        try (var s = Files.list(dataDir)) {
            return s.filter(p -> p.getFileName().toString().matches("\\d{20}")).count();
        } catch (IOException e) {
            return 0;
        }
    }
}
