package dev.dledger.raft.store;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * Where the CONFIG entries of a node's log are, so that a node finds its membership at start without reading every
 * entry header of its log (on a log of 600,000 entries that read took minutes). Kept in the file {@code configs} of the
 * node folder, next to {@code currterm}, as Java properties:
 *
 * <pre>
 * configs=0@1,400@1,1000@2     index@term of every CONFIG entry recorded, in index order
 * coveredIndex=1500            the recorded list is complete up to this index ...
 * coveredTerm=2                ... of this term (the log's entry there, when the file was written)
 * </pre>
 *
 * <p>Contract with the writer (the node storage): the file is written durably <em>before</em> a CONFIG entry is
 * appended to the log, so every CONFIG entry the log holds up to {@code coveredIndex} is listed; entries listed that
 * the log no longer holds (a crash before the append reached the disk, a truncation) are told apart at start by
 * reading the one header at their index. Past {@code coveredIndex} the log may hold entries written by someone else
 * (a tool that appends to a stopped node's log): those headers are read at start. When the log's entry at
 * {@code coveredIndex} has another term than recorded, the log was rewritten under the file and the reader scans it
 * all.
 *
 * @param configs      the recorded CONFIG entries, in index order
 * @param coveredIndex the index up to which {@code configs} is complete, -1 for none
 * @param coveredTerm  the term of the entry at {@code coveredIndex} (0 for -1)
 */
public record ConfigIndexFile(List<Point> configs, long coveredIndex, long coveredTerm) {

    /** The file's name in the node folder. */
    public static final String FILE = "configs";

    /** One CONFIG entry: its index and term. */
    public record Point(long index, long term) {
    }

    public ConfigIndexFile {
        configs = List.copyOf(configs);
        for (int i = 1; i < configs.size(); i++) {
            if (configs.get(i).index() <= configs.get(i - 1).index()) {
                throw new IllegalArgumentException("config entries out of order: " + configs);
            }
        }
        if (coveredIndex < -1) {
            throw new IllegalArgumentException("coveredIndex must be >= -1, was " + coveredIndex);
        }
    }

    /**
     * The file in the node folder {@code dir}, or null when there is none (a store written before it existed).
     *
     * @throws StoreCorruptedException naming the file and what is wrong when it cannot be parsed
     * @throws StoreIoException        when it cannot be read
     */
    public static ConfigIndexFile read(Path dir) {
        Path file = dir.resolve(FILE);
        Properties p;
        try {
            p = AtomicFiles.readStoreProperties(file);
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new StoreIoException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (p == null) {
            return null;
        }
        long covered = AtomicFiles.longProperty(file, p, "coveredIndex", null);
        long term = AtomicFiles.longProperty(file, p, "coveredTerm", null);
        String list = p.getProperty("configs");
        if (list == null) {
            throw new StoreCorruptedException(file + " has no configs");
        }
        List<Point> points = new ArrayList<>();
        for (String s : list.trim().split(",")) {
            if (s.isBlank()) {
                continue;
            }
            int at = s.indexOf('@');
            try {
                points.add(new Point(Long.parseLong(s.substring(0, at).trim()), Long.parseLong(s.substring(at + 1).trim())));
            } catch (RuntimeException e) {
                throw new StoreCorruptedException(file + ": config entry '" + s.trim() + "' is not index@term");
            }
        }
        try {
            return new ConfigIndexFile(points, covered, term);
        } catch (IllegalArgumentException e) {
            throw new StoreCorruptedException(file + ": " + e.getMessage());
        }
    }

    /** The file's bytes: the same record gives the same bytes (no date line). */
    byte[] encode() {
        StringBuilder b = new StringBuilder();
        for (Point c : configs) {
            if (b.length() > 0) {
                b.append(',');
            }
            b.append(c.index()).append('@').append(c.term());
        }
        String text = "configs=" + b + "\ncoveredIndex=" + coveredIndex + "\ncoveredTerm=" + coveredTerm + "\n";
        return text.getBytes(StandardCharsets.ISO_8859_1);
    }

    /**
     * Replaces the file in {@code dir} durably (write, fsync, rename, fsync the folder): it must be before the CONFIG
     * entries it lists reach the log.
     *
     * @throws StoreIoException naming the file when it cannot be written
     */
    public void write(Path dir) {
        try {
            AtomicFiles.write(dir.resolve(FILE), encode());
        } catch (IOException e) {
            throw new StoreIoException("cannot write " + dir.resolve(FILE) + ": " + e.getMessage(), e);
        }
    }

    /**
     * Replaces the file in {@code dir} atomically without fsync: after a crash it is this one or the one before,
     * both true. Only for a record that lists the same CONFIG entries as the durable one and covers more.
     *
     * @throws StoreIoException naming the file when it cannot be written
     */
    public void writeLazily(Path dir) {
        Path target = dir.resolve(FILE);
        Path tmp = target.resolveSibling(FILE + ".tmp");
        try {
            Files.write(tmp, encode());
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new StoreIoException("cannot write " + target + ": " + e.getMessage(), e);
        }
    }
}
