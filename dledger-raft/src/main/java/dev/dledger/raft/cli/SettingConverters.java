package dev.dledger.raft.cli;

import dev.dledger.raft.server.FlushMode;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * The converters of the typed {@code dledger server} options, used by picocli for a flag and by {@link ServerConfig}
 * for the same key in a config file, so that both accept the same text and refuse it with the same words. Each
 * refusal is a phrase that follows the key's name ({@code is 'soon', not a whole number}); the caller puts the key
 * and where it came from in front.
 */
final class SettingConverters {

    private SettingConverters() {
    }

    /** Which state machine a node runs. */
    enum StateMachineKind {
        /** A plain replicated log. */
        LOG,
        /** The key-value register. */
        KV;

        /** The name as written in the file and on the command line. */
        String text() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** A whole number that fits an int (its range is checked later, against the other settings). */
    static final class IntValue implements ITypeConverter<Integer> {
        @Override
        public Integer convert(String value) {
            long n = LongValue.parse(value);
            if (n < Integer.MIN_VALUE || n > Integer.MAX_VALUE) {
                throw new TypeConversionException("is " + n + ", outside " + Integer.MIN_VALUE + ".."
                    + Integer.MAX_VALUE);
            }
            return (int) n;
        }
    }

    /** A whole number (its range is checked later, against the other settings). */
    static final class LongValue implements ITypeConverter<Long> {
        @Override
        public Long convert(String value) {
            return parse(value);
        }

        static long parse(String value) {
            try {
                return Long.parseLong(value.trim());
            } catch (NumberFormatException e) {
                throw new TypeConversionException("is '" + value + "', not a whole number");
            }
        }
    }

    /** {@code sync} or {@code async}, any case. */
    static final class FlushValue implements ITypeConverter<FlushMode> {
        @Override
        public FlushMode convert(String value) {
            String v = value.trim().toUpperCase(Locale.ROOT);
            if (v.equals("SYNC") || v.equals("ASYNC")) {
                return FlushMode.valueOf(v);
            }
            throw new TypeConversionException("is '" + value + "'; use sync or async");
        }
    }

    /** {@code log} or {@code kv}, any case. */
    static final class StateMachineValue implements ITypeConverter<StateMachineKind> {
        @Override
        public StateMachineKind convert(String value) {
            String v = value.trim().toUpperCase(Locale.ROOT);
            for (StateMachineKind k : StateMachineKind.values()) {
                if (k.name().equals(v)) {
                    return k;
                }
            }
            throw new TypeConversionException("is '" + value.trim().toLowerCase(Locale.ROOT) + "'; use log or kv");
        }
    }

    /** A file system path (whether it exists is checked where it is used). */
    static final class PathValue implements ITypeConverter<Path> {
        @Override
        public Path convert(String value) {
            try {
                return Path.of(value.trim());
            } catch (InvalidPathException e) {
                throw new TypeConversionException("is '" + value + "', not a path: " + e.getReason());
            }
        }
    }

    /**
     * Converts a key's text from a config file to the key's type, with the converter its flag uses.
     *
     * @throws TypeConversionException with the phrase that follows the key's name
     * @throws IllegalArgumentException for a type no converter here handles (a programming error)
     */
    static Object convert(Class<?> type, String text) {
        if (type == String.class) {
            return text;
        }
        if (type == Integer.class) {
            return new IntValue().convert(text);
        }
        if (type == Long.class) {
            return new LongValue().convert(text);
        }
        if (type == FlushMode.class) {
            return new FlushValue().convert(text);
        }
        if (type == StateMachineKind.class) {
            return new StateMachineValue().convert(text);
        }
        if (type == Path.class) {
            return new PathValue().convert(text);
        }
        throw new IllegalArgumentException("no converter for settings of type " + type.getName());
    }
}
