package dev.dledger.raft.server;

import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.slf4j.Logger;

/**
 * The published {@link NodeStatus} of one {@link RaftGroupNode} and the listeners of its role changes.
 *
 * <p>Contract: {@link #publish} runs on the driver thread; {@link #status()} and {@link #onRoleChange} from any thread.
 * Listeners are called on the driver thread when the role, term, leader or failure changes, in the order added; one
 * that throws is logged and the others still run.
 */
final class StatusPublisher {

    private final String group;
    private final String id;
    private final Logger log;
    private final List<Consumer<NodeStatus>> roleListeners = new CopyOnWriteArrayList<>();
    private volatile NodeStatus status;

    StatusPublisher(String group, String id, Logger log) {
        this.group = group;
        this.id = id;
        this.log = log;
    }

    /** The latest status, or null before the first {@link #publish}. */
    NodeStatus status() {
        return status;
    }

    /** Adds a listener and calls it once with the status now. */
    void onRoleChange(Consumer<NodeStatus> listener) {
        roleListeners.add(listener);
        listener.accept(status);
    }

    /** Publishes {@code now}; tells the listeners when the role, term, leader or failure changed. */
    void publish(NodeStatus now) {
        NodeStatus before = status;
        status = now;
        if (before != null && (before.role() != now.role() || before.term() != now.term()
            || !Objects.equals(before.leaderId(), now.leaderId()) || before.failed() != now.failed())) {
            for (Consumer<NodeStatus> l : roleListeners) {
                try {
                    l.accept(now);
                } catch (RuntimeException e) {
                    log.warn("[{} {}] role listener failed", group, id, e);
                }
            }
        }
    }
}
