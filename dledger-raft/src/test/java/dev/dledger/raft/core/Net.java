package dev.dledger.raft.core;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The test network: messages wait in one FIFO queue until the test delivers, holds or drops them. Isolated nodes,
 * cut links and drop rules make {@link TestCluster} discard a message when it would be delivered.
 */
final class Net {

    private final List<Message> pending = new ArrayList<>();
    private final List<Message> sent = new ArrayList<>();
    private final List<Message> dropped = new ArrayList<>();
    private final Set<String> isolated = new HashSet<>();
    private final Set<String> cutLinks = new HashSet<>();
    private final List<Predicate<Message>> dropRules = new ArrayList<>();

    void send(Message m) {
        sent.add(m);
        pending.add(m);
    }

    /** Every message any node sent so far, in order. */
    List<Message> sent() {
        return List.copyOf(sent);
    }

    /** Every message the network discarded so far. */
    List<Message> dropped() {
        return List.copyOf(dropped);
    }

    /** The messages waiting for delivery, oldest first. */
    List<Message> pending() {
        return List.copyOf(pending);
    }

    /** The waiting messages of a type, oldest first. */
    <T extends Message> List<T> pending(Class<T> type) {
        List<T> out = new ArrayList<>();
        for (Message m : pending) {
            if (type.isInstance(m)) {
                out.add(type.cast(m));
            }
        }
        return out;
    }

    /** Removes the waiting messages that match, and returns them (to re-inject later, or to inspect). */
    List<Message> take(Predicate<Message> which) {
        List<Message> out = new ArrayList<>();
        for (Iterator<Message> it = pending.iterator(); it.hasNext(); ) {
            Message m = it.next();
            if (which.test(m)) {
                it.remove();
                out.add(m);
            }
        }
        return out;
    }

    /** Drops the waiting messages that match. */
    void dropPending(Predicate<Message> which) {
        dropped.addAll(take(which));
    }

    /** Puts a message back at the end of the queue (a delayed or duplicated message). */
    void inject(Message m) {
        pending.add(m);
    }

    /** The oldest waiting message matching {@code which}, removed from the queue, or null. */
    Message poll(Predicate<Message> which) {
        for (Iterator<Message> it = pending.iterator(); it.hasNext(); ) {
            Message m = it.next();
            if (which.test(m)) {
                it.remove();
                return m;
            }
        }
        return null;
    }

    /** Cuts {@code id} off from everyone, both ways. */
    void isolate(String id) {
        isolated.add(id);
    }

    /** Cuts the link between {@code a} and {@code b}, both ways. */
    void cut(String a, String b) {
        cutLinks.add(a + ">" + b);
        cutLinks.add(b + ">" + a);
    }

    /** Cuts only the direction {@code from -> to}. */
    void cutOneWay(String from, String to) {
        cutLinks.add(from + ">" + to);
    }

    /** Drops every message matching {@code rule} from now on, until {@link #heal()}. */
    void dropIf(Predicate<Message> rule) {
        dropRules.add(rule);
    }

    /** Removes every isolation, cut and drop rule. */
    void heal() {
        isolated.clear();
        cutLinks.clear();
        dropRules.clear();
    }

    /** Whether the network lets {@code m} through; records it as dropped when not. */
    boolean admit(Message m) {
        boolean ok = !isolated.contains(m.from()) && !isolated.contains(m.to())
            && !cutLinks.contains(m.from() + ">" + m.to());
        for (Predicate<Message> rule : dropRules) {
            ok = ok && !rule.test(m);
        }
        if (!ok) {
            dropped.add(m);
        }
        return ok;
    }

    /** Message predicates that read well in scenarios. */
    static Predicate<Message> from(String id) {
        return m -> m.from().equals(id);
    }

    static Predicate<Message> to(String id) {
        return m -> m.to().equals(id);
    }

    static Predicate<Message> between(String from, String to) {
        return m -> m.from().equals(from) && m.to().equals(to);
    }

    static Predicate<Message> ofType(Class<? extends Message> type) {
        return type::isInstance;
    }
}
