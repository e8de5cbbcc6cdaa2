package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** What the nameserver lists as the group's master, and which answers count for a master that just stepped down. */
class MasterLookupTest {

    private static final String SELF = "10.0.0.2:10911";
    private static final String OTHER = "10.0.0.1:10911";

    private final AtomicReference<String> listed = new AtomicReference<>();
    private final AtomicInteger asked = new AtomicInteger();
    private final long start = System.nanoTime();

    private MasterLookup lookup() {
        return new MasterLookup(() -> {
            asked.incrementAndGet();
            String master = listed.get();
            if ("fail".equals(master)) {
                throw new IllegalStateException("nameserver unreachable");
            }
            return master;
        }, () -> SELF, "g");
    }

    @Test
    void anAnswerFromBeforeTheStepDownDoesNotCountAsTheNextMaster() {
        try (MasterLookup lookup = lookup()) {
            // As a follower this broker forwarded sends to OTHER, the master then.
            listed.set(OTHER);
            await().atMost(Duration.ofSeconds(10)).until(() -> OTHER.equals(lookup.otherMasterListedSince(start)));
            // It led since (the nameserver lists it), and nobody asked. It steps down; OTHER comes back as the leader
            // but has not registered yet: the old answer names OTHER, the nameserver does not.
            listed.set(SELF);
            long since = System.nanoTime();
            assertNull(lookup.otherMasterListedSince(since), "an answer asked before the step-down");
            int before = asked.get();
            await().atMost(Duration.ofSeconds(10)).until(() -> {
                lookup.otherMasterListedSince(since);
                return asked.get() > before + 1;
            });
            assertNull(lookup.otherMasterListedSince(since), "the nameserver lists this broker: no other master yet");
            // OTHER registers as master.
            listed.set(OTHER);
            await().atMost(Duration.ofSeconds(10)).until(() -> OTHER.equals(lookup.otherMasterListedSince(since)));
        }
    }

    @Test
    void aSendCountsAnAnswerAskedShortlyBeforeItArrivedOrAfterOnly() {
        try (MasterLookup lookup = lookup()) {
            listed.set(OTHER);
            long asking = System.nanoTime();
            await().atMost(Duration.ofSeconds(10)).until(() -> OTHER.equals(lookup.otherMasterListedSince(asking)));
            // Every answer so far was asked at or after `asking`.
            long arrivedSoonAfter = asking + TimeUnit.MILLISECONDS.toNanos(MasterLookup.REFRESH_MS);
            assertEquals(OTHER, lookup.otherMasterListedSince(MasterLookup.answersFor(arrivedSoonAfter)),
                "asked at most the refresh interval before the send arrived");
            long arrivesLater = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            assertNull(lookup.otherMasterListedSince(MasterLookup.answersFor(arrivesLater)),
                "asked long before the send arrived: the master it names may have gone");
        }
    }

    @Test
    void noMasterAndAFailedQuestionAreNoOtherMaster() {
        try (MasterLookup lookup = lookup()) {
            listed.set(OTHER);
            await().atMost(Duration.ofSeconds(10)).until(() -> OTHER.equals(lookup.otherMasterListedSince(start)));
            listed.set("fail");
            int before = asked.get();
            await().atMost(Duration.ofSeconds(10)).until(() -> lookup.otherMasterListedSince(start) == null);
            assertEquals(true, asked.get() > before);
            listed.set(null);
            long since = System.nanoTime();
            int now = asked.get();
            await().atMost(Duration.ofSeconds(10)).until(() -> {
                lookup.otherMasterListedSince(since);
                return asked.get() > now + 1;
            });
            assertNull(lookup.otherMasterListedSince(since), "none listed");
        }
    }
}
