package dev.dledger.rocketmq;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.server.AppendResult;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.common.BrokerConfig;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.GetMessageResult;
import org.apache.rocketmq.store.GetMessageStatus;
import org.apache.rocketmq.store.PutMessageResult;
import org.apache.rocketmq.store.PutMessageStatus;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Broker state entries in the Raft log: applied to the broker's managers, never dispatched as messages, and proposed
 * by the managers while this node leads.
 */
@Tag("in-process")
class BrokerStateLogTest {

    @TempDir
    Path dir;

    private BrokerController broker(String name) {
        MessageStoreConfig msc = new MessageStoreConfig();
        msc.setStorePathRootDir(dir.resolve(name).toString());
        BrokerConfig bc = new BrokerConfig();
        bc.setBrokerName(name);
        return new BrokerController(bc, new org.apache.rocketmq.remoting.netty.NettyServerConfig(), null, msc);
    }

    private static byte[] entry(BrokerStateEntry.Op... ops) {
        return new BrokerStateEntry(List.of(ops)).encode();
    }

    private static String json(Object config) {
        return BrokerStateLog.json(config);
    }

    @Test
    void aSnapshotImageReplacesTheTablesAndTheEntriesItHoldsAreNotAppliedAgain() throws Exception {
        BrokerController leader = broker("image-leader");
        BrokerStateLog leaderState = BrokerStateLog.install(leader);
        SubscriptionGroupConfig g = new SubscriptionGroupConfig();
        g.setGroupName("G");
        g.setRetryMaxTimes(7);
        leaderState.apply(5, 1, entry(new BrokerStateEntry.TopicPut("T", json(new TopicConfig("T", 4, 4))),
            new BrokerStateEntry.GroupPut("G", json(g), false), new BrokerStateEntry.OffsetCommit("G", "T", 0, 10),
            new BrokerStateEntry.DelayOffset(1, 50)));
        leaderState.apply(7, 2, entry(new BrokerStateEntry.OffsetCommit("G", "T", 0, 12)));
        byte[] image = leaderState.image();
        BrokerStateImage read = BrokerStateImage.decode(image);
        assertEquals(7, read.index());
        assertEquals(2, read.term());
        assertEquals(java.util.Set.of("topics", "subscriptionGroups", "consumerOffsets", "delayOffsets"),
            read.tables().keySet());

        // A follower far behind, with a topic and an offset the leader no longer has.
        BrokerController follower = broker("image-follower");
        BrokerStateLog followerState = BrokerStateLog.install(follower);
        followerState.apply(2, 1, entry(new BrokerStateEntry.TopicPut("Old", json(new TopicConfig("Old", 1, 1))),
            new BrokerStateEntry.OffsetCommit("G", "Old", 0, 1)));
        followerState.snapshotInstalled(4, image, false);
        assertNotNull(follower.getTopicConfigManager().selectTopicConfig("T"));
        assertNull(follower.getTopicConfigManager().selectTopicConfig("Old"), "the image replaces the whole table");
        assertEquals(7, follower.getSubscriptionGroupManager().getSubscriptionGroupTable().get("G").getRetryMaxTimes());
        assertEquals(12, follower.getConsumerOffsetManager().queryOffset("G", "T", 0));
        assertEquals(-1, follower.getConsumerOffsetManager().queryOffset("G", "Old", 0));
        assertTrue(follower.getScheduleMessageService().encode().contains("1:50"));
        // The files and a checkpoint naming the image's entry are written at once.
        Path checkpoint = Path.of(follower.getMessageStoreConfig().getStorePathRootDir(), "config",
            BrokerStateLog.CHECKPOINT_FILE);
        assertTrue(Files.readString(checkpoint).contains("index=7"), Files.readString(checkpoint));
        assertTrue(Files.readString(Path.of(follower.getTopicConfigManager().configFilePath())).contains("\"T\""));
        assertEquals(Long.MAX_VALUE, followerState.keepFromIndex(), "everything applied is in the files");

        // The entries after the snapshot's index up to the image's arrive: not applied again; later ones are.
        followerState.apply(5, 1, entry(new BrokerStateEntry.OffsetCommit("G", "T", 0, 10)));
        assertEquals(12, follower.getConsumerOffsetManager().queryOffset("G", "T", 0));
        followerState.apply(8, 2, entry(new BrokerStateEntry.OffsetCommit("G", "T", 0, 13)));
        assertEquals(13, follower.getConsumerOffsetManager().queryOffset("G", "T", 0));
        // Retention keeps entry 8 until a checkpoint covers it.
        assertEquals(8, followerState.keepFromIndex());
        followerState.checkpoint();
        assertEquals(Long.MAX_VALUE, followerState.keepFromIndex());

        // At a restart, an image older than the files' checkpoint is ignored.
        BrokerController restarted = broker("image-follower");
        BrokerStateLog restartedState = BrokerStateLog.install(restarted);
        restarted.getConsumerOffsetManager().load();
        restartedState.readCheckpoint();
        restartedState.snapshotInstalled(4, image, true);
        assertEquals(13, restarted.getConsumerOffsetManager().queryOffset("G", "T", 0), "the files are newer");
    }

    @Test
    void appliedEntriesChangeTheManagersAndTheCheckpointWritesTheirFiles() throws Exception {
        BrokerController b = broker("apply");
        BrokerStateLog state = BrokerStateLog.install(b);
        assertTrue(state.covers());
        assertInstanceOf(RaftConsumerOffsetManager.class, b.getConsumerOffsetManager());
        assertInstanceOf(RaftTopicConfigManager.class, b.getTopicConfigManager());
        assertInstanceOf(RaftSubscriptionGroupManager.class, b.getSubscriptionGroupManager());
        assertInstanceOf(StateSlaveSynchronize.class, b.getSlaveSynchronize(), "slaves copy only what the log lacks");

        TopicConfig t = new TopicConfig("T", 4, 2);
        SubscriptionGroupConfig g = new SubscriptionGroupConfig();
        g.setGroupName("G");
        g.setRetryMaxTimes(7);
        state.apply(5, 1, entry(new BrokerStateEntry.TopicPut("T", json(t)), new BrokerStateEntry.GroupPut("G", json(g),
            false), new BrokerStateEntry.OffsetCommit("G", "T", 0, 10), new BrokerStateEntry.OffsetCommit("G", "T", 1,
            11)));
        assertEquals(4, b.getTopicConfigManager().selectTopicConfig("T").getReadQueueNums());
        assertEquals(2, b.getTopicConfigManager().selectTopicConfig("T").getWriteQueueNums());
        assertEquals(7, b.getSubscriptionGroupManager().getSubscriptionGroupTable().get("G").getRetryMaxTimes());
        assertEquals(10, b.getConsumerOffsetManager().queryOffset("G", "T", 0));
        assertEquals(11, b.getConsumerOffsetManager().queryOffset("G", "T", 1));
        // The files are written by the checkpoint (every 5 s; here at once).
        state.checkpoint();
        String topicsFile = Files.readString(Path.of(b.getTopicConfigManager().configFilePath()));
        assertTrue(topicsFile.contains("\"T\""), "the applied topic is persisted");
        String groupsFile = Files.readString(Path.of(b.getSubscriptionGroupManager().configFilePath()));
        assertTrue(groupsFile.contains("\"G\""), "the applied group is persisted");

        // An auto-created group (ifAbsent) does not replace one that exists; a later offset replaces the earlier.
        SubscriptionGroupConfig auto = new SubscriptionGroupConfig();
        auto.setGroupName("G");
        state.apply(6, 1, entry(new BrokerStateEntry.GroupPut("G", json(auto), true),
            new BrokerStateEntry.OffsetCommit("G", "T", 0, 20)));
        assertEquals(7, b.getSubscriptionGroupManager().getSubscriptionGroupTable().get("G").getRetryMaxTimes());
        assertEquals(20, b.getConsumerOffsetManager().queryOffset("G", "T", 0));

        // A damaged entry changes nothing and does not throw (the apply path goes on).
        byte[] damaged = entry(new BrokerStateEntry.TopicDelete("T"));
        damaged[14] = 99;
        state.apply(7, 1, damaged);
        assertNotNull(b.getTopicConfigManager().selectTopicConfig("T"));

        // An operation that cannot be applied (a config naming another topic) is skipped; the next one still applies.
        state.apply(8, 1, entry(new BrokerStateEntry.TopicPut("X", json(new TopicConfig("Y", 1, 1))),
            new BrokerStateEntry.OffsetCommit("G", "T", 2, 5)));
        assertNull(b.getTopicConfigManager().selectTopicConfig("X"));
        assertNull(b.getTopicConfigManager().selectTopicConfig("Y"));
        assertEquals(5, b.getConsumerOffsetManager().queryOffset("G", "T", 2));

        state.apply(9, 1, entry(new BrokerStateEntry.OffsetsRemoveTopic("T"), new BrokerStateEntry.TopicDelete("T"),
            new BrokerStateEntry.GroupDelete("G")));
        state.checkpoint();
        assertNull(b.getTopicConfigManager().selectTopicConfig("T"));
        assertNull(b.getSubscriptionGroupManager().getSubscriptionGroupTable().get("G"));
        assertEquals(-1, b.getConsumerOffsetManager().queryOffset("G", "T", 0));
        assertTrue(!Files.readString(Path.of(b.getTopicConfigManager().configFilePath())).contains("\"T\""),
            "the deletion is persisted");

        // Delay offsets only move forward, and reach the file the schedule service starts from as master.
        state.apply(10, 1, entry(new BrokerStateEntry.DelayOffset(1, 50), new BrokerStateEntry.DelayOffset(2, 7)));
        state.apply(11, 1, entry(new BrokerStateEntry.DelayOffset(1, 40)));
        String delay = b.getScheduleMessageService().encode();
        assertTrue(delay.contains("{1:50,2:7}"), delay);
        String delayFile = Files.readString(Path.of(org.apache.rocketmq.store.config.StorePathConfigHelper
            .getDelayOffsetStorePath(b.getMessageStoreConfig().getStorePathRootDir())));
        assertTrue(delayFile.contains("1:50"), delayFile);

        // Without a Raft node (loading at start) the managers behave as stock.
        b.getConsumerOffsetManager().commitOffset("client", "H", "U", 0, 3);
        assertEquals(3, b.getConsumerOffsetManager().queryOffset("H", "U", 0));
    }

    @Test
    void stateEntriesRideBetweenMessagesWithoutTakingQueueOffsetsOrMovingMessages() throws Exception {
        List<BrokerStateEntry> applied = new CopyOnWriteArrayList<>();
        try (StoreGroup g = new StoreGroup(dir.resolve("group"), 1)) {
            g.beforeStart = s -> StoreGroup.log(s).onStateEntry((index, term, body) ->
                applied.add(BrokerStateEntry.decode(body)));
            DefaultMessageStore s = g.start("n0", false);
            g.awaitLeader();
            RaftCommitLog log = StoreGroup.log(s);
            // A state entry first of all: the earliest message time must step over it.
            byte[] first = entry(new BrokerStateEntry.OffsetCommit("G", "T", 0, 1));
            AppendResult a1 = log.node().append(List.of(first)).get(5, TimeUnit.SECONDS);
            assertEquals(AppendResult.Status.OK, a1.status());
            PutMessageResult m0 = s.putMessage(StoreGroup.message("T", 0, "m0"));
            assertEquals(PutMessageStatus.PUT_OK, m0.getPutMessageStatus());
            // A state entry long enough to be stamped if it were taken for a message.
            byte[] second = entry(new BrokerStateEntry.TopicPut("T", "x".repeat(100)));
            AppendResult a2 = log.node().append(List.of(second)).get(5, TimeUnit.SECONDS);
            assertEquals(AppendResult.Status.OK, a2.status());
            PutMessageResult m1 = s.putMessage(StoreGroup.message("T", 0, "m1"));
            assertEquals(PutMessageStatus.PUT_OK, m1.getPutMessageStatus());
            assertEquals(1, m1.getAppendMessageResult().getLogicsOffset(), "a state entry takes no queue offset");

            await().atMost(Duration.ofSeconds(5)).until(() -> s.getMaxOffsetInQueue("T", 0) == 2);
            List<MessageExt> got = read(s, "T", 0);
            assertEquals(List.of("m0", "m1"), got.stream().map(m -> new String(m.getBody(), StandardCharsets.UTF_8))
                .toList());
            assertEquals(m0.getAppendMessageResult().getWroteOffset(), got.get(0).getCommitLogOffset());
            assertEquals(m1.getAppendMessageResult().getWroteOffset(), got.get(1).getCommitLogOffset());
            assertEquals(a2.positions()[0] + RaftCommitLog.BODY_OFFSET + second.length,
                m1.getAppendMessageResult().getWroteOffset() - RaftCommitLog.BODY_OFFSET,
                "the message after the state entry is at the next entry's position + 48");
            assertEquals(List.of(BrokerStateEntry.decode(first), BrokerStateEntry.decode(second)), applied);
            // Stored as proposed: the physical offset stamp never touches a state entry.
            assertArrayEquals(second, log.node().get(a2.index()).get(5, TimeUnit.SECONDS).data());
            assertTrue(s.getEarliestMessageTime() > 0, "the earliest message time steps over the state entry");
            assertEquals(0, s.dispatchBehindBytes());

            // A restart replays the log into the applier (the managers end in the same state) and keeps the queues.
            g.stop("n0");
            applied.clear();
            DefaultMessageStore again = g.start("n0", false);
            g.awaitLeader();
            await().atMost(Duration.ofSeconds(10)).until(() -> applied.size() == 2);
            assertEquals(2, again.getMaxOffsetInQueue("T", 0));
            assertEquals(List.of("m0", "m1"), read(again, "T", 0).stream()
                .map(m -> new String(m.getBody(), StandardCharsets.UTF_8)).toList());
        }
    }

    @Test
    void onTheLeaderTheManagersProposeAndReturnOnceApplied() throws Exception {
        BrokerController b = broker("leader");
        BrokerStateLog state = BrokerStateLog.install(b);
        List<BrokerStateEntry> applied = new CopyOnWriteArrayList<>();
        try (StoreGroup g = new StoreGroup(dir.resolve("group"), 1)) {
            g.beforeStart = s -> {
                state.attach(StoreGroup.log(s));
                // Watch the entries too, behind the state log's own applier.
                RaftCommitLog.StateApplier mine = (index, term, body) -> {
                    state.apply(index, term, body);
                    applied.add(BrokerStateEntry.decode(body));
                };
                StoreGroup.log(s).onStateEntry(mine);
            };
            g.start("n0", false);
            g.awaitLeader();

            TopicConfig t = new TopicConfig("Created", 8, 8);
            b.getTopicConfigManager().updateTopicConfig(t);
            assertEquals(8, b.getTopicConfigManager().selectTopicConfig("Created").getReadQueueNums(),
                "applied before the call returned");
            assertTrue(applied.stream().anyMatch(e -> e.ops().get(0) instanceof BrokerStateEntry.TopicPut p
                && p.topic().equals("Created")), "the topic went through the log");

            SubscriptionGroupConfig sg = new SubscriptionGroupConfig();
            sg.setGroupName("Made");
            b.getSubscriptionGroupManager().updateSubscriptionGroupConfig(sg);
            assertNotNull(b.getSubscriptionGroupManager().getSubscriptionGroupTable().get("Made"));
            assertNotNull(b.getSubscriptionGroupManager().findSubscriptionGroupConfig("AutoMade"),
                "auto-created through the log");
            assertTrue(applied.stream().anyMatch(e -> e.ops().get(0) instanceof BrokerStateEntry.GroupPut p
                && p.group().equals("AutoMade") && p.ifAbsent()));

            // Many commits at once: each returns once its offset is applied; entries carry several.
            int commits = 200;
            int before = applied.size();
            ExecutorService pool = Executors.newFixedThreadPool(16);
            List<Future<?>> fs = new ArrayList<>();
            for (int i = 0; i < commits; i++) {
                int q = i;
                fs.add(pool.submit(() -> {
                    b.getConsumerOffsetManager().commitOffset("client", "Made", "Created", q, 1000 + q);
                    assertEquals(1000 + q, b.getConsumerOffsetManager().queryOffset("Made", "Created", q));
                }));
            }
            for (Future<?> f : fs) {
                f.get(30, TimeUnit.SECONDS);
            }
            pool.shutdown();
            int entries = applied.size() - before;
            int carried = applied.subList(before, applied.size()).stream().mapToInt(e -> e.ops().size()).sum();
            System.out.println("offset commits: " + commits + " in " + entries + " entries");
            assertEquals(commits, carried, "every commit is in exactly one entry");
            assertTrue(entries <= commits);

            // A checkpoint: the files now hold everything applied; what comes after is replayed at the restart.
            state.checkpoint();
            Path config = Path.of(b.getTopicConfigManager().configFilePath()).getParent();
            Path saved = dir.resolve("config-at-checkpoint");
            copyFiles(config, saved);
            long atCheckpoint = checkpointIndex(config);
            b.getConsumerOffsetManager().commitOffset("client", "Made", "Late", 0, 77);
            b.getTopicConfigManager().deleteTopicConfig("Created");
            assertNull(b.getTopicConfigManager().selectTopicConfig("Created"));
            b.getConsumerOffsetManager().cleanOffsetByTopic("Created");
            assertEquals(-1, b.getConsumerOffsetManager().queryOffset("Made", "Created", 0));
            assertTrue(applied.get(applied.size() - 1).ops().get(0) instanceof BrokerStateEntry.OffsetsRemoveTopic);
            state.close();
            g.stop("n0");
            // A clean stop wrote a last checkpoint; a crash would have left the files of the last periodic one.
            assertTrue(checkpointIndex(config) > atCheckpoint, "a last checkpoint was written at the stop");
            copyFiles(saved, config);

            // A restart: the files up to the checkpoint, then only the entries after it.
            BrokerController again = broker("leader");
            BrokerStateLog restarted = BrokerStateLog.install(again);
            assertTrue(again.getTopicConfigManager().load() && again.getConsumerOffsetManager().load()
                && again.getSubscriptionGroupManager().load());
            assertEquals(1000, again.getConsumerOffsetManager().queryOffset("Made", "Created", 0), "from the file");
            List<Long> replayed = new CopyOnWriteArrayList<>();
            g.beforeStart = s -> {
                restarted.attach(StoreGroup.log(s));
                // Watch what the node hands over, behind the state log's own applier and its durableThrough.
                StoreGroup.log(s).onStateEntry(new RaftCommitLog.StateApplier() {
                    @Override
                    public void apply(long index, long term, byte[] body) {
                        restarted.apply(index, term, body);
                        replayed.add(index);
                    }

                    @Override
                    public long durableThrough() {
                        return restarted.durableThrough();
                    }
                });
            };
            g.start("n0", false);
            g.awaitLeader();
            await().atMost(Duration.ofSeconds(10)).until(() -> again.getConsumerOffsetManager()
                .queryOffset("Made", "Late", 0) == 77);
            await().atMost(Duration.ofSeconds(10)).until(() -> again.getConsumerOffsetManager()
                .queryOffset("Made", "Created", 0) == -1);
            assertNull(again.getTopicConfigManager().selectTopicConfig("Created"), "the deletion after the checkpoint");
            assertNotNull(again.getSubscriptionGroupManager().getSubscriptionGroupTable().get("Made"), "from the file");
            // The node starts applying after the checkpoint (StateMachine.durableThrough): the 200 offset commits
            // before it are not read again, let alone applied.
            System.out.println("restart after the checkpoint at " + atCheckpoint + ": state entries handed over "
                + replayed);
            assertTrue(!replayed.isEmpty() && replayed.stream().allMatch(i -> i > atCheckpoint),
                "only the state entries after the checkpoint at " + atCheckpoint + " are replayed: " + replayed);
            restarted.close();
        }
    }

    @Test
    void followersApplyWhatTheLeaderCommitsAndRefuseOffsetCommitsOfTheirOwn() throws Exception {
        java.util.Map<String, BrokerController> brokers = new java.util.concurrent.ConcurrentHashMap<>();
        java.util.Map<String, BrokerStateLog> states = new java.util.concurrent.ConcurrentHashMap<>();
        try (StoreGroup g = new StoreGroup(dir.resolve("three"), 3)) {
            g.beforeStart = s -> {
                String id = s.getMessageStoreConfig().getdLegerSelfId();
                BrokerController b = broker("broker-" + id);
                BrokerStateLog state = BrokerStateLog.install(b);
                state.attach(StoreGroup.log(s));
                brokers.put(id, b);
                states.put(id, state);
            };
            for (String id : List.of("n0", "n1", "n2")) {
                g.start(id, false);
            }
            DefaultMessageStore leaderStore = g.awaitLeader();
            String leader = leaderStore.getMessageStoreConfig().getdLegerSelfId();
            BrokerController lb = brokers.get(leader);
            lb.getTopicConfigManager().updateTopicConfig(new TopicConfig("Everywhere", 2, 2));
            lb.getConsumerOffsetManager().commitOffset("client", "G", "Everywhere", 1, 42);
            for (String id : List.of("n0", "n1", "n2")) {
                BrokerController b = brokers.get(id);
                await(id + " applied").atMost(Duration.ofSeconds(10)).until(() ->
                    b.getTopicConfigManager().selectTopicConfig("Everywhere") != null
                        && b.getConsumerOffsetManager().queryOffset("G", "Everywhere", 1) == 42);
                if (!id.equals(leader)) {
                    IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                        () -> b.getConsumerOffsetManager().commitOffset("client", "G", "Everywhere", 1, 50));
                    assertTrue(e.getMessage().contains("group G on Everywhere/1")
                        && e.getMessage().contains("not the raft leader"), e.getMessage());
                    assertEquals(42, b.getConsumerOffsetManager().queryOffset("G", "Everywhere", 1),
                        "a follower's table holds only committed offsets");
                }
            }
        } finally {
            states.values().forEach(BrokerStateLog::close);
        }
    }

    private static long checkpointIndex(Path config) throws java.io.IOException {
        java.util.Properties p = new java.util.Properties();
        try (var r = Files.newBufferedReader(config.resolve(BrokerStateLog.CHECKPOINT_FILE))) {
            p.load(r);
        }
        return Long.parseLong(p.getProperty("index"));
    }

    private static void copyFiles(Path from, Path to) throws java.io.IOException {
        Files.createDirectories(to);
        try (var files = Files.list(from)) {
            for (Path f : files.toList()) {
                if (Files.isRegularFile(f) && !f.getFileName().toString().endsWith(".bak")) {
                    Files.copy(f, to.resolve(f.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    private static List<MessageExt> read(DefaultMessageStore s, String topic, int queueId) {
        List<MessageExt> out = new ArrayList<>();
        GetMessageResult r = s.getMessage("group", topic, queueId, 0, 32, null);
        try {
            assertEquals(GetMessageStatus.FOUND, r.getStatus());
            for (ByteBuffer b : r.getMessageBufferList()) {
                out.add(MessageDecoder.decode(b, true, false));
            }
        } finally {
            r.release();
        }
        return out;
    }
}
