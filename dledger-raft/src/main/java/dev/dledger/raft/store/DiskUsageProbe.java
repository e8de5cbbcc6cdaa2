package dev.dledger.raft.store;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How full the disk of a folder is, for {@link LogRetention}. The production probe asks the file system; tests pass
 * their own.
 */
@FunctionalInterface
public interface DiskUsageProbe {

    /**
     * The file system's answer: used space over used plus usable space (space reserved for the superuser counts as
     * neither), as DLedger computes it.
     */
    DiskUsageProbe FILE_SYSTEM = folder -> {
        FileStore fs = Files.getFileStore(folder);
        long used = fs.getTotalSpace() - fs.getUnallocatedSpace();
        long all = used + fs.getUsableSpace();
        return all <= 0 ? 0 : (double) used / all;
    };

    /** The share of the disk that holds {@code folder} in use, from 0 to 1. */
    double usedRatio(Path folder) throws IOException;
}
