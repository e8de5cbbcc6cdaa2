package dev.dledger.raft.store;

import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Properties;

/** Small files replaced atomically and durably: write a temp file, fsync it, rename it over, fsync the folder. */
public final class AtomicFiles {

    private AtomicFiles() {
    }

    /** Replaces {@code target} with {@code props} in Java properties format, durably. */
    public static void writeProperties(Path target, Properties props) throws IOException {
        StringWriter w = new StringWriter();
        props.store(w, null);
        write(target, w.toString().getBytes(StandardCharsets.ISO_8859_1));
    }

    /** Replaces {@code target} with {@code bytes}, durably. */
    public static void write(Path target, byte[] bytes) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(true);
        }
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
        syncFolder(target.getParent());
    }

    /**
     * Replaces {@code target} with {@code props} atomically but without fsync: after a crash the file is either the
     * old or the new one, possibly the old. For hints whose stale value is still true (a commit index checkpoint).
     */
    public static void writePropertiesLazily(Path target, Properties props) throws IOException {
        StringWriter w = new StringWriter();
        props.store(w, null);
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        Files.write(tmp, w.toString().getBytes(StandardCharsets.ISO_8859_1));
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** The properties in {@code file}, or null when it does not exist. */
    public static Properties readProperties(Path file) throws IOException {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.ISO_8859_1);
        } catch (NoSuchFileException e) {
            return null;
        }
        Properties p = new Properties();
        p.load(new StringReader(text));
        return p;
    }

    /**
     * The properties in the store's own file {@code file}, or null when it does not exist.
     *
     * @throws StoreCorruptedException naming the file when it is not a properties file
     */
    static Properties readStoreProperties(Path file) throws IOException {
        try {
            return readProperties(file);
        } catch (IllegalArgumentException e) {
            throw new StoreCorruptedException(file + " is not a properties file: " + e.getMessage());
        }
    }

    /**
     * The whole number under {@code key} in {@code p}, read from {@code file}; {@code fallback} when the key is absent.
     *
     * @throws StoreCorruptedException naming the file and the key when the key is absent without a fallback, or is not
     *                                 a whole number
     */
    static long longProperty(Path file, Properties p, String key, Long fallback) {
        String v = p.getProperty(key);
        if (v == null) {
            if (fallback == null) {
                throw new StoreCorruptedException(file + " has no " + key);
            }
            return fallback;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new StoreCorruptedException(file + ": " + key + " is not a whole number");
        }
    }

    /** Makes the folder's entries (created, renamed, deleted files) durable. */
    public static void syncFolder(Path folder) throws IOException {
        try (FileChannel ch = FileChannel.open(folder, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // Some file systems cannot open a folder for fsync; their renames are then as durable as they get.
            if (!e.getMessage().contains("Is a directory")) {
                throw e;
            }
        }
    }
}
