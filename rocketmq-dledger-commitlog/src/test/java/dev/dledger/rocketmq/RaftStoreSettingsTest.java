package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dledger.raft.server.FlushMode;
import dev.dledger.raft.store.RetentionPolicy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import org.apache.rocketmq.store.config.FlushDiskType;
import org.apache.rocketmq.store.config.MessageStoreConfig;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@Tag("in-process")
class RaftStoreSettingsTest {

    @TempDir
    Path dir;

    private MessageStoreConfig config() {
        MessageStoreConfig c = new MessageStoreConfig();
        c.setStorePathRootDir(dir.resolve("root").toString());
        c.setdLegerGroup("g");
        c.setdLegerPeers("n0-127.0.0.1:40911;n1-127.0.0.1:40912");
        c.setdLegerSelfId("n1");
        return c;
    }

    @Test
    void flushDiskTypeSyncFlushMeansASyncRaftLogUnlessRaftFlushModeSaysOtherwise() {
        MessageStoreConfig c = config();
        assertEquals(FlushMode.ASYNC, RaftStoreSettings.from(c, new Properties()).flush(), "stock default ASYNC_FLUSH");
        c.setFlushDiskType(FlushDiskType.SYNC_FLUSH);
        assertEquals(FlushMode.SYNC, RaftStoreSettings.from(c, new Properties()).flush(), "SYNC_FLUSH alone");
        Properties explicit = new Properties();
        explicit.setProperty("raftFlushMode", "async");
        assertEquals(FlushMode.ASYNC, RaftStoreSettings.from(c, explicit).flush(), "raftFlushMode=async wins");
        c.setFlushDiskType(FlushDiskType.ASYNC_FLUSH);
        explicit.setProperty("raftFlushMode", "sync");
        assertEquals(FlushMode.SYNC, RaftStoreSettings.from(c, explicit).flush(), "raftFlushMode=sync wins");
    }

    @Test
    void witnessKeysMarkTheWitnessInTheBootstrapMembershipAndAreCheckedNamingTheKey() throws Exception {
        MessageStoreConfig c = config();
        c.setdLegerPeers("n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913");
        Properties p = new Properties();
        p.setProperty("raftWitnessPeers", "n2");
        RaftStoreSettings data = RaftStoreSettings.from(c, p);
        assertEquals(List.of("n2"), data.witnesses());
        assertEquals(false, data.witness());
        assertEquals(List.of("n2"), RaftCommitLog.configuredMembership(data).witnesses());
        assertEquals(List.of("n0", "n1"), RaftCommitLog.configuredMembership(data).dataMembers());

        c.setdLegerSelfId("n2");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RaftStoreSettings.from(c, p));
        assertTrue(e.getMessage().startsWith("raftWitness=false but raftWitnessPeers=[n2] lists dLegerSelfId=n2"),
            e.getMessage());
        p.setProperty("raftWitness", "true");
        assertTrue(RaftStoreSettings.from(c, p).witness());
        p.setProperty("raftWitnessPeers", "n1,n2");
        e = assertThrows(IllegalArgumentException.class, () -> RaftStoreSettings.from(c, p));
        assertTrue(e.getMessage().startsWith("raftWitnessPeers=n1,n2 leaves 1 data members for 2 witnesses"),
            e.getMessage());
        p.setProperty("raftWitnessPeers", "n7");
        e = assertThrows(IllegalArgumentException.class, () -> RaftStoreSettings.from(c, p));
        assertTrue(e.getMessage().startsWith("raftWitnessPeers=n7: 'n7' is not among dLegerPeers"), e.getMessage());

        // The example of the package: two data brokers and a witness that agree on the group.
        Path confDir = Path.of("..", "conf", "witness").toAbsolutePath().normalize();
        for (String n : List.of("n0", "n1", "n2")) {
            Properties file = new Properties();
            try (java.io.Reader r = Files.newBufferedReader(confDir.resolve("broker-" + n + ".conf"))) {
                file.load(r);
            }
            MessageStoreConfig m = new MessageStoreConfig();
            org.apache.rocketmq.common.MixAll.properties2Object(file, m);
            RaftStoreSettings s = RaftStoreSettings.from(m, file);
            assertEquals(List.of("n2"), s.witnesses(), n);
            assertEquals(n.equals("n2"), s.witness(), n);
        }
    }

    @Test
    void withoutFoldersTheDataLivesWhereStockKeepsIt() {
        RaftStoreSettings s = RaftStoreSettings.from(config(), new Properties());
        assertEquals(dir.resolve("root").resolve("dledger-n1"), s.dir());
        assertEquals(List.of(), s.dataStorePaths());
        assertEquals(List.of(s.dir().resolve("data")), s.dataFolders());
    }

    @Test
    void severalDataFoldersAndReadOnlyFoldersAreSplitAsStockSplitsThem() throws Exception {
        String sep = MessageStoreConfig.MULTI_PATH_SPLITTER;
        Path a = Files.createDirectories(dir.resolve("a"));
        Path b = dir.resolve("b");
        Path c = dir.resolve("c");
        MessageStoreConfig cfg = config();
        cfg.setStorePathDLedgerCommitLog(" " + b + sep + c + " ");
        cfg.setReadOnlyCommitLogStorePaths(a.toString());
        RaftStoreSettings s = RaftStoreSettings.from(cfg, new Properties());
        assertEquals(List.of(b, c), s.dataStorePaths());
        assertEquals(List.of(a), s.readOnlyDataStoreDirs());
        assertEquals(List.of(b, c, a), s.dataFolders());
        assertEquals(List.of(b, c), s.storeConfig().dataStorePaths());
        assertEquals(List.of(a), s.storeConfig().readOnlyDataStoreDirs());
    }

    @Test
    void badFolderListsAreRefusedNamingTheKey() throws Exception {
        String sep = MessageStoreConfig.MULTI_PATH_SPLITTER;
        MessageStoreConfig empty = config();
        empty.setStorePathDLedgerCommitLog(dir.resolve("a") + sep + sep + dir.resolve("b"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> RaftStoreSettings.from(empty, new Properties()));
        assertTrue(e.getMessage().startsWith("storePathDLedgerCommitLog="), e.getMessage());

        MessageStoreConfig missing = config();
        missing.setReadOnlyCommitLogStorePaths(dir.resolve("gone").toString());
        e = assertThrows(IllegalArgumentException.class, () -> RaftStoreSettings.from(missing, new Properties()));
        assertTrue(e.getMessage().contains("readOnlyCommitLogStorePaths") && e.getMessage().contains("gone"),
            e.getMessage());

        Path ro = Files.createDirectories(dir.resolve("ro"));
        MessageStoreConfig allReadOnly = config();
        allReadOnly.setStorePathDLedgerCommitLog(ro.toString());
        allReadOnly.setReadOnlyCommitLogStorePaths(ro.toString());
        e = assertThrows(IllegalArgumentException.class, () -> RaftStoreSettings.from(allReadOnly, new Properties()));
        assertTrue(e.getMessage().contains("writable"), e.getMessage());
    }

    @Test
    void expiryPolicyCopiesWhatStockDLedgerModeCopies() {
        MessageStoreConfig c = config();
        c.setFileReservedTime(48);
        c.setDeleteWhen("03;15");
        c.setDiskMaxUsedSpaceRatio(80);
        c.setCleanFileForciblyEnable(false);
        RetentionPolicy p = RaftRetention.policy(c);
        assertEquals(49, p.fileReservedHours(), "stock gives DLedger fileReservedTime + 1");
        assertEquals("03;15", p.deleteWhen());
        assertEquals(0.80, p.diskSpaceRatioToCheckExpired(), 1e-9);
        assertEquals(RetentionPolicy.defaults().diskSpaceRatioToForceClean(), p.diskSpaceRatioToForceClean());
        assertEquals(false, p.enableDiskForceClean());

        c.setDeleteWhen("04;25");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> RaftRetention.policy(c));
        assertTrue(e.getMessage().contains("deleteWhen=04;25"), e.getMessage());
    }
}
