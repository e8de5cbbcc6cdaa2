package dev.dledger.raft.server;

import dev.dledger.raft.core.CoreLog;
import java.util.function.LongSupplier;
import org.slf4j.Logger;

/** Binds the core's log lines to SLF4J with a {@code [group node tTerm]} prefix on every line. */
final class Slf4jCoreLog implements CoreLog {

    /** The name of the core's logger in production. */
    static final String CORE_LOGGER = "dev.dledger.raft.core";
    private final Logger log;

    private final String group;
    private final String id;
    private final LongSupplier term;

    Slf4jCoreLog(Logger log, String group, String id, LongSupplier term) {
        this.log = log;
        this.group = group;
        this.id = id;
        this.term = term;
    }

    @Override
    public boolean debugEnabled() {
        return log.isDebugEnabled();
    }

    @Override
    public void info(String line) {
        log.info("[{} {} t{}] {}", group, id, term.getAsLong(), line);
    }

    @Override
    public void debug(String line) {
        log.debug("[{} {} t{}] {}", group, id, term.getAsLong(), line);
    }
}
