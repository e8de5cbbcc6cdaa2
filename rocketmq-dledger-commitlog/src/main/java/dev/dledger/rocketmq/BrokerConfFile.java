package dev.dledger.rocketmq;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A {@code broker.conf} changed the way a person would change it: the lines of the keys given get their new value,
 * keys not in the file are appended, and every other byte (comments, order, blank lines, other keys, the encoding)
 * stays as it was. This is how the broker on the Raft log keeps {@code updateBrokerConfig} (stock RocketMQ instead
 * rewrites the file with every live setting, among them the ones our launcher sets for itself).
 *
 * <p>The file is read and written as ISO-8859-1, the encoding of {@link java.util.Properties#load(java.io.InputStream)}
 * (which reads it), so bytes it does not touch come back unchanged; values are written with the escapes of
 * {@link java.util.Properties} ({@code \\uXXXX} for characters outside ISO-8859-1's printable ASCII).
 */
final class BrokerConfFile {

    private BrokerConfFile() {
    }

    /**
     * Writes {@code values} into the properties file {@code file}: atomically (a temp file in its folder, fsynced, then
     * renamed over it, then the folder fsynced), keeping its permissions; a symbolic link is followed.
     *
     * @throws IOException naming the file when it cannot be read or written; the file is then unchanged
     */
    static void write(Path file, Map<String, String> values) throws IOException {
        Path real = file.toRealPath();
        String before = new String(Files.readAllBytes(real), StandardCharsets.ISO_8859_1);
        String after = withValues(before, values);
        if (after.equals(before)) {
            return;
        }
        Path dir = real.toAbsolutePath().getParent();
        Path tmp = Files.createTempFile(dir, real.getFileName().toString() + ".", ".tmp");
        try {
            Files.write(tmp, after.getBytes(StandardCharsets.ISO_8859_1));
            PosixFileAttributeView perms = Files.getFileAttributeView(real, PosixFileAttributeView.class);
            if (perms != null) {
                Files.setPosixFilePermissions(tmp, perms.readAttributes().permissions());
            }
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
            try {
                Files.move(tmp, real, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, real, StandardCopyOption.REPLACE_EXISTING);
            }
            try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
                ch.force(true);
            } catch (IOException e) {
                // Some file systems cannot open a folder for fsync; the rename itself is done.
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * {@code text} (a properties file) with each key of {@code values} set: every line (a logical line, with its
     * continuation lines) that assigns the key is replaced by {@code key=value}; a key the file lacks is appended at
     * the end. Nothing else changes.
     */
    static String withValues(String text, Map<String, String> values) {
        List<String> lines = new ArrayList<>(List.of(text.split("\n", -1)));
        boolean endsWithNewline = text.endsWith("\n");
        if (endsWithNewline) {
            lines.remove(lines.size() - 1);
        }
        List<String> out = new ArrayList<>();
        Set<String> written = new LinkedHashSet<>();
        int i = 0;
        while (i < lines.size()) {
            int end = i;
            while (end < lines.size() - 1 && continues(lines.get(end)) && !isComment(lines.get(i))) {
                end++;
            }
            String key = isComment(lines.get(i)) ? null : keyOf(lines.get(i));
            if (key != null && values.containsKey(key)) {
                String eol = lines.get(end).endsWith("\r") ? "\r" : "";
                out.add(escapeKey(key) + "=" + escapeValue(values.get(key)) + eol);
                written.add(key);
            } else {
                out.addAll(lines.subList(i, end + 1));
            }
            i = end + 1;
        }
        Map<String, String> missing = new LinkedHashMap<>(values);
        missing.keySet().removeAll(written);
        StringBuilder sb = new StringBuilder(String.join("\n", out));
        if (!missing.isEmpty()) {
            if (!out.isEmpty() && !(out.size() == 1 && out.get(0).isEmpty())) {
                sb.append('\n');
            }
            List<String> added = new ArrayList<>();
            missing.forEach((k, v) -> added.add(escapeKey(k) + "=" + escapeValue(v)));
            sb.append(String.join("\n", added));
            sb.append('\n');
        } else if (endsWithNewline) {
            sb.append('\n');
        }
        return sb.toString();
    }

    private static boolean isComment(String line) {
        String s = line.stripLeading();
        return s.isEmpty() || s.charAt(0) == '#' || s.charAt(0) == '!';
    }

    /** Whether a line goes on in the next one: it ends with an odd number of backslashes (a CR before LF ignored). */
    private static boolean continues(String line) {
        String s = line.endsWith("\r") ? line.substring(0, line.length() - 1) : line;
        int n = 0;
        for (int j = s.length() - 1; j >= 0 && s.charAt(j) == '\\'; j--) {
            n++;
        }
        return n % 2 == 1;
    }

    /** The key a (non-comment) line assigns, as {@link java.util.Properties} reads it. */
    static String keyOf(String line) {
        String s = line.stripLeading();
        StringBuilder key = new StringBuilder();
        for (int j = 0; j < s.length(); j++) {
            char c = s.charAt(j);
            if (c == '\\' && j + 1 < s.length()) {
                char n = s.charAt(++j);
                if (n == 'u' && j + 4 < s.length()) {
                    try {
                        key.append((char) Integer.parseInt(s.substring(j + 1, j + 5), 16));
                        j += 4;
                        continue;
                    } catch (NumberFormatException e) {
                        return null;
                    }
                }
                key.append(switch (n) {
                    case 't' -> '\t';
                    case 'n' -> '\n';
                    case 'r' -> '\r';
                    case 'f' -> '\f';
                    default -> n;
                });
            } else if (c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' || c == '\r') {
                break;
            } else {
                key.append(c);
            }
        }
        return key.toString();
    }

    private static String escapeKey(String key) {
        return escape(key, true);
    }

    static String escapeValue(String value) {
        return escape(value, false);
    }

    private static String escape(String s, boolean key) {
        StringBuilder sb = new StringBuilder();
        for (int j = 0; j < s.length(); j++) {
            char c = s.charAt(j);
            switch (c) {
                case '\\' -> sb.append("\\\\");
                case '\t' -> sb.append("\\t");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\f' -> sb.append("\\f");
                case ' ' -> sb.append(key || j == 0 ? "\\ " : " ");
                case '=', ':', '#', '!' -> sb.append(key || j == 0 ? "\\" + c : String.valueOf(c));
                default -> {
                    if (c < 0x20 || c > 0x7e) {
                        sb.append(String.format("\\u%04X", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.toString();
    }
}
