package dev.dledger.rocketmq;

import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.remoting.protocol.body.BrokerMemberGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The address of this broker group's master as the nameserver lists it (brokerId 0 of the group's members), for the
 * moments the Raft leadership moves: a follower forwards sends to the master the nameserver lists
 * ({@link SendForwardGuard}), and a master that stepped down registers as a slave once another master is listed
 * ({@link RaftRoleHandler}). Callers never wait for the nameserver: they get the last answer, and a thread of its own
 * asks again when that answer is older than {@value #REFRESH_MS} ms and somebody wants it.
 *
 * <p>An answer may be old: a broker that forwarded sends as a follower, then led for a while, still holds the master
 * it asked about as a follower (the address of a broker that died, and may since have come back as the new leader).
 * A caller that must know what the nameserver lists now asks {@link #otherMasterListedSince} with the moment from
 * which an answer counts.
 */
final class MasterLookup implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(MasterLookup.class);
    /** An answer older than this is asked again when somebody wants it. */
    static final long REFRESH_MS = 20;

    /**
     * The master an answer named (null: none, or the question failed), when the question was asked and when the answer
     * came (nanoTime): its freshness for a caller counts from the question, its age for the next question from the
     * answer (a slow nameserver is not asked back to back).
     */
    private record Answer(String master, long askedAt, long answeredAt) {
    }

    private final Callable<String> question;
    private final Supplier<String> ownAddress;
    private final String name;
    private final ExecutorService asker;
    private final AtomicBoolean asking = new AtomicBoolean();
    private volatile Answer last;

    MasterLookup(BrokerController broker) {
        this(() -> {
            BrokerMemberGroup group = broker.getBrokerOuterAPI().getBrokerMemberGroup(
                broker.getBrokerConfig().getBrokerClusterName(), broker.getBrokerConfig().getBrokerName());
            return group == null || group.getBrokerAddrs() == null ? null : group.getBrokerAddrs().get(MixAll.MASTER_ID);
        }, broker::getBrokerAddr, broker.getBrokerConfig().getBrokerName());
    }

    /**
     * @param question asks the nameserver for the group's master address (null when none is listed)
     * @param ownAddress this broker's address, which is never "another" master
     */
    MasterLookup(Callable<String> question, Supplier<String> ownAddress, String name) {
        this.question = Objects.requireNonNull(question, "question");
        this.ownAddress = Objects.requireNonNull(ownAddress, "ownAddress");
        this.name = name;
        this.asker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "MasterLookup-" + name);
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * The listed master's address when it is not this broker's, from an answer to a question asked at or after
     * {@code sinceNanos} ({@link System#nanoTime()}); null when none is listed, or no such answer came yet (one is
     * asked for).
     */
    String otherMasterListedSince(long sinceNanos) {
        Answer answer = answer();
        return answer == null || answer.askedAt - sinceNanos < 0 ? null : other(answer.master);
    }

    /**
     * From when an answer counts for a request that arrived at {@code arrivedNanos}: asked at most {@value #REFRESH_MS}
     * ms before it arrived, or after (an older answer may name a master that has gone since: a follower that forwarded
     * nothing for a while holds the master of that time). For {@link #otherMasterListedSince}.
     */
    static long answersFor(long arrivedNanos) {
        return arrivedNanos - TimeUnit.MILLISECONDS.toNanos(REFRESH_MS);
    }

    private String other(String master) {
        return master == null || master.equals(ownAddress.get()) ? null : master;
    }

    /** The nameserver's last answer, or null before the first; asks again when that answer is old. */
    private Answer answer() {
        Answer answer = last;
        if ((answer == null || System.nanoTime() - answer.answeredAt > REFRESH_MS * 1_000_000L)
            && asking.compareAndSet(false, true)) {
            try {
                asker.execute(this::ask);
            } catch (RejectedExecutionException e) {
                asking.set(false);
            }
        }
        return answer;
    }

    private void ask() {
        long askedAt = System.nanoTime();
        String master = null;
        try {
            master = question.call();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            LOG.debug("asking the nameserver for the master of {} failed: {}", name, e.toString());
        } finally {
            last = new Answer(master, askedAt, System.nanoTime());
            asking.set(false);
        }
    }

    @Override
    public void close() {
        asker.shutdownNow();
    }
}
