package dev.dledger.migration;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * What a bridge conversion put into a node's store, file by file, so that the store can be shipped to another host
 * and checked there, and an interrupted conversion resumed. One line per file, appended (and fsynced) once the file
 * is complete in the target: {@code <crc32c hex> <bytes> <path relative to the store root>}. The file is
 * {@value #NAME} in the store root.
 *
 * <p>{@link #check(Path)} reads every listed file of a store and compares its size and CRC32C: a file that is
 * missing, shorter, longer or different is named (exit status 1), so a copy damaged in transit, or a hard link to a
 * file that changed, is found before the broker starts on it.
 */
final class BridgeManifest {

    static final String NAME = "dledger-migrate.manifest";
    private static final int BUFFER = 1 << 20;

    /**
     * One listed file.
     *
     * @param crc   CRC32C of its bytes
     * @param bytes its size
     */
    record Item(long crc, long bytes) {
    }

    private final Path file;
    private final Map<String, Item> items = new LinkedHashMap<>();

    private BridgeManifest(Path file) {
        this.file = file;
    }

    /** Reads the manifest in {@code root} (empty if there is none). */
    static BridgeManifest read(Path root) {
        BridgeManifest m = new BridgeManifest(root.resolve(NAME));
        if (!Files.exists(m.file)) {
            return m;
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(m.file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new MigrationException("cannot read " + m.file + ": " + e.getMessage());
        }
        for (int i = 0; i < lines.size(); i++) {
            String[] f = lines.get(i).split(" ", 3);
            try {
                m.items.put(f[2], new Item(Long.parseUnsignedLong(f[0], 16), Long.parseLong(f[1])));
            } catch (RuntimeException e) {
                if (i == lines.size() - 1) {
                    // A line torn by an interrupted run: its file is copied again.
                    break;
                }
                throw new MigrationException(m.file + ": line " + (i + 1) + " '" + lines.get(i) + "' is not "
                    + "'<crc32c> <bytes> <path>'");
            }
        }
        return m;
    }

    /** The entry of {@code relative}, or null. */
    Item get(String relative) {
        return items.get(relative);
    }

    /** Whether the manifest lists any file. */
    boolean isEmpty() {
        return items.isEmpty();
    }

    /** The number of listed files. */
    int size() {
        return items.size();
    }

    /**
     * Copies {@code from} to {@code root/relative} (or hard-links it when {@code link}), computing the CRC32C of the
     * bytes, then records the file. Returns its size.
     */
    long copy(Path from, Path root, String relative, boolean link) {
        Path to = root.resolve(relative);
        CRC32C crc = new CRC32C();
        long bytes = 0;
        try {
            Files.createDirectories(to.getParent());
            Files.deleteIfExists(to);
            byte[] buf = new byte[BUFFER];
            if (link) {
                Files.createLink(to, from);
                try (InputStream in = Files.newInputStream(from)) {
                    for (int n = in.read(buf); n >= 0; n = in.read(buf)) {
                        crc.update(buf, 0, n);
                        bytes += n;
                    }
                }
            } else {
                try (InputStream in = Files.newInputStream(from); OutputStream out = Files.newOutputStream(to)) {
                    for (int n = in.read(buf); n >= 0; n = in.read(buf)) {
                        crc.update(buf, 0, n);
                        out.write(buf, 0, n);
                        bytes += n;
                    }
                }
                try (FileChannel ch = FileChannel.open(to, StandardOpenOption.WRITE)) {
                    ch.force(true);
                }
            }
        } catch (IOException e) {
            throw new MigrationException("cannot " + (link ? "link" : "copy") + " " + from + " to " + to + ": "
                + e.getMessage());
        }
        add(relative, new Item(crc.getValue(), bytes));
        return bytes;
    }

    private void add(String relative, Item item) {
        items.put(relative, item);
        String line = Long.toHexString(item.crc()) + " " + item.bytes() + " " + relative + "\n";
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.APPEND)) {
            ch.write(java.nio.ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8)));
            ch.force(true);
        } catch (IOException e) {
            throw new MigrationException("cannot write " + file + ": " + e.getMessage());
        }
    }

    /** Whether {@code root/relative} is listed and has the listed size (a finished copy of an interrupted run). */
    boolean done(Path root, String relative) {
        Item i = items.get(relative);
        try {
            return i != null && Files.isRegularFile(root.resolve(relative)) && Files.size(root.resolve(relative))
                == i.bytes();
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Checks every listed file of the store in {@code root} (progress on {@code err}): returns the number of files and
     * bytes checked.
     *
     * @throws MigrationException (exit status 1) naming the first file that is missing or differs; (exit status 2)
     *                            when the store has no manifest
     */
    static long[] check(Path root, java.io.PrintStream err) {
        BridgeManifest m = read(root);
        if (m.isEmpty()) {
            throw new MigrationException("store " + root + " has no " + NAME + " (written by convert --mode bridge)");
        }
        Progress progress = new Progress(err, "verify", m.bytes());
        long total = 0;
        byte[] buf = new byte[BUFFER];
        try {
            total = checkItems(m, root, progress, buf);
        } catch (MigrationException e) {
            progress.abandon();
            throw e;
        }
        progress.finish();
        return new long[] {m.size(), total};
    }

    private static long checkItems(BridgeManifest m, Path root, Progress progress, byte[] buf) {
        long total = 0;
        for (Map.Entry<String, Item> e : m.items.entrySet()) {
            Path f = root.resolve(e.getKey());
            if (!Files.isRegularFile(f)) {
                throw new MigrationException(f + " is missing (listed in " + m.file + ")", MigrateCommand.EXIT_UNSAFE);
            }
            CRC32C crc = new CRC32C();
            long bytes = 0;
            try (InputStream in = Files.newInputStream(f)) {
                for (int n = in.read(buf); n >= 0; n = in.read(buf)) {
                    crc.update(buf, 0, n);
                    bytes += n;
                    progress.advance(n);
                }
            } catch (IOException ex) {
                throw new MigrationException("cannot read " + f + ": " + ex.getMessage());
            }
            if (bytes != e.getValue().bytes() || crc.getValue() != e.getValue().crc()) {
                throw new MigrationException(f + " differs from the file the bridge conversion wrote: " + bytes
                    + " bytes, CRC32C " + Long.toHexString(crc.getValue()) + "; expected " + e.getValue().bytes()
                    + " bytes, CRC32C " + Long.toHexString(e.getValue().crc()) + " (copy it again from the source)",
                    MigrateCommand.EXIT_UNSAFE);
            }
            total += bytes;
        }
        return total;
    }

    /** Bytes of all listed files (for progress). */
    long bytes() {
        return items.values().stream().mapToLong(Item::bytes).sum();
    }
}
