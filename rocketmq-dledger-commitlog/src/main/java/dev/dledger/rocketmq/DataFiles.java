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
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The read side of the Raft log's data files for the broker's readers (reput, pulls, queries): each file mapped
 * read-only once, shared by every reader thread. The writer (the Raft node) writes the same files through its own
 * channel; the page cache makes its bytes visible here. Callers only read below the committed end, which the writer
 * never changes.
 *
 * <p>With several data folders (multi-path, read-only folders) a file is looked for in each folder in turn; a file
 * name is unique across them. Files that retention deleted are forgotten ({@link #forgetBelow}) and never mapped
 * again; a reader that still holds a view of one keeps reading it (the mapping outlives the file's name).
 */
final class DataFiles {

    private final List<Path> folders;
    private final int fileSize;
    private final ConcurrentHashMap<Long, MappedByteBuffer> maps = new ConcurrentHashMap<>();
    /** Files that start below this were deleted: they are not mapped again. */
    private volatile long floor;

    /**
     * @param folders  every folder a data file may be in, writable and read-only
     * @param fileSize the size of each data file, in bytes
     */
    DataFiles(List<Path> folders, int fileSize) {
        if (folders.isEmpty()) {
            throw new IllegalArgumentException("no data folder");
        }
        this.folders = List.copyOf(folders);
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

    /**
     * Forgets the files that end at or before {@code position} (the log's new start after retention deleted them):
     * their mappings are dropped, and they are never mapped again. Any thread.
     */
    void forgetBelow(long position) {
        long start = fileStart(position);
        if (start > floor) {
            floor = start;
        }
        maps.keySet().removeIf(s -> s < floor);
    }

    /** The start of the oldest file that may still be mapped: files below it were deleted. */
    long floor() {
        return floor;
    }

    /** How many files are mapped now. */
    int mappedCount() {
        return maps.size();
    }

    private MappedByteBuffer map(long start) {
        MappedByteBuffer m = maps.get(start);
        if (m != null) {
            return m;
        }
        if (start < floor) {
            return null;
        }
        String name = EntryFormat.fileName(start);
        for (Path folder : folders) {
            Path file = folder.resolve(name);
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                if (ch.size() < fileSize) {
                    throw new IllegalStateException("data file " + file + " has " + ch.size() + " bytes, expected "
                        + fileSize + " (is mappedFileSizeCommitLog the size the store was written with?)");
                }
                MappedByteBuffer mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, fileSize);
                MappedByteBuffer raced = maps.putIfAbsent(start, mapped);
                if (start < floor) {
                    // Retention deleted the file meanwhile: this reader may finish with it, nobody keeps it.
                    maps.remove(start);
                }
                return raced != null ? raced : mapped;
            } catch (NoSuchFileException e) {
                // in another folder, or deleted
            } catch (IOException e) {
                throw new UncheckedIOException("cannot map " + file + ": " + e.getMessage(), e);
            }
        }
        return null;
    }

    /** The number of data files present, in every folder. */
    long fileCount() {
        Set<String> names = new HashSet<>();
        for (Path folder : folders) {
            try (var s = Files.list(folder)) {
                s.map(p -> p.getFileName().toString()).filter(n -> n.matches("\\d{20}")).forEach(names::add);
            } catch (IOException e) {
                // a folder that is not there holds no file
            }
        }
        return names.size();
    }
}
