package dev.dledger.raft.server;

import dev.dledger.raft.core.CoreLog;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Binds the core's log lines to SLF4J with a {@code [group node tTerm]} prefix on every line. */
final class Slf4jCoreLog implements CoreLog {

    private static final Logger LOG = LoggerFactory.getLogger("dev.dledger.raft.core");

    private final String group;
    private final String id;
    private final LongSupplier term;

    Slf4jCoreLog(String group, String id, LongSupplier term) {
        this.group = group;
        this.id = id;
        this.term = term;
    }

    @Override
    public boolean debugEnabled() {
        return LOG.isDebugEnabled();
    }

    @Override
    public void info(String line) {
        LOG.info("[{} {} t{}] {}", group, id, term.getAsLong(), line);
    }

    @Override
    public void debug(String line) {
        LOG.debug("[{} {} t{}] {}", group, id, term.getAsLong(), line);
    }
}
