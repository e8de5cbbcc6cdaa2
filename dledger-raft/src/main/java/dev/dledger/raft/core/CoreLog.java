package dev.dledger.raft.core;

/**
 * Where the core writes its log lines. The driver binds it to SLF4J with a {@code [group node term]} prefix; the
 * simulation buffers each node's lines in memory and prints them for a failing seed only.
 */
public interface CoreLog {

    /** A sink that drops everything. */
    CoreLog NONE = new CoreLog() {
        @Override
        public boolean debugEnabled() {
            return false;
        }

        @Override
        public void info(String line) {
        }

        @Override
        public void debug(String line) {
        }
    };

    /** Whether {@link #debug} lines are kept; the core builds debug strings only when true. */
    boolean debugEnabled();

    /** Role, term and membership changes. */
    void info(String line);

    /** Per-message decisions. */
    void debug(String line);
}
