package dev.dledger.raft.store;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.OpenOption;
import java.nio.file.Path;

/**
 * How a {@link SegmentedLogStore} opens its data and index files: the production opener is
 * {@link FileChannel#open(Path, OpenOption...)}; tests pass a decorator that injects faults (a full disk, an I/O
 * error) into one store instance.
 */
@FunctionalInterface
public interface FileOpener {

    /** The production opener. */
    FileOpener DEFAULT = FileChannel::open;

    /** Opens {@code path} with {@code options}. */
    FileChannel open(Path path, OpenOption... options) throws IOException;
}
