package dev.dledger.rocketmq;

import static dev.dledger.raft.fuzz.FuzzTally.check;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.dledger.raft.fuzz.FuzzTally;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.rocketmq.broker.ConfigContext;
import org.junit.jupiter.api.AfterAll;

/**
 * Fuzzes the broker launcher's config check: the input is a {@code broker.conf}, read as {@link RaftBrokerStartup}
 * reads it ({@code -c FILE} through the stock parser, {@link RaftBrokerStartup#parse}), then checked by
 * {@link RaftBrokerStartup#settings}; settings that pass must also give the store and transport settings the installer
 * derives from them.
 *
 * <p>Contract: the config is not for the Raft log, or it passes, or it is refused with an
 * {@link IllegalArgumentException} whose one-line message names the key, or the file when it is no properties file
 * (the launcher prints it and exits with 2).
 * Anything else is a finding, and so is a refusal that names no key: an {@link IllegalArgumentException} from a path
 * or a size that the check let through. Host names resolve against the fuzz JVM's hosts file only.
 *
 * <p>The stock parser is not instrumented, so the fuzzer cannot learn the key names from it: they come from the
 * dictionary below and from the committed broker.conf inputs.
 */
class BrokerConfigFuzzTest {

    private static final FuzzTally TALLY = new FuzzTally("broker-config");
    /** The keys the check reads; a refusal names one of them. */
    private static final List<String> KEYS = List.of("namesrvAddr", "enableControllerMode", "dLegerGroup",
        "dLegerSelfId", "dLegerPeers", "preferredLeaderId", "storePathRootDir", "storePathDLedgerCommitLog",
        "readOnlyCommitLogStorePaths", "mappedFileSizeCommitLog", "listenPort", "haListenPort", "raftFlushMode",
        "raftAppendTimeoutMs", "raftElectionTimeoutMs", "raftTickMs", "raftSecret", "raftTlsKeyStore",
        "raftTlsKeyStorePassword", "raftTlsTrustStore", "raftTlsTrustStorePassword", "raftAdminToken",
        "raftMetricsPort");
    private static final Path FILE = file();

    private static Path file() {
        try {
            return Files.createTempDirectory("broker-config").resolve("broker.conf");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @DictionaryEntries({"enableDLegerCommitLog=true", "namesrvAddr=", "enableControllerMode=true", "dLegerGroup=",
        "dLegerSelfId=n0", "dLegerPeers=", "n0-127.0.0.1:40911;", "n1-localhost:40912", "preferredLeaderId=",
        "storePathRootDir=", "storePathDLedgerCommitLog=", "readOnlyCommitLogStorePaths=", "mappedFileSizeCommitLog=",
        "listenPort=", "haListenPort=", "raftFlushMode=sync", "raftAppendTimeoutMs=", "raftElectionTimeoutMs=",
        "raftTickMs=", "raftSecret=", "raftTlsKeyStore=", "raftTlsKeyStorePassword=", "raftTlsTrustStore=",
        "raftTlsTrustStorePassword=", "raftAdminToken=", "raftMetricsPort="})
    @FuzzTest
    void brokerConfigsPassOrAreRefusedNamingTheKey(byte[] conf) {
        TALLY.run(() -> checkConfig(conf));
    }

    @AfterAll
    static void report() throws IOException {
        TALLY.report();
        Files.deleteIfExists(FILE);
        Files.deleteIfExists(FILE.getParent());
    }

    private static void checkConfig(byte[] conf) {
        ConfigContext ctx;
        try {
            Files.write(FILE, conf);
            ctx = RaftBrokerStartup.parse(new String[] {"-c", FILE.toString()});
        } catch (IllegalArgumentException e) {
            FuzzTally.clearErrorNaming(e, FILE.toString());
            return;
        } catch (Exception e) {
            throw new AssertionError("the parser failed on the file: " + e, e);
        }
        try {
            RaftStoreSettings s = RaftBrokerStartup.settings(ctx);
            if (s != null) {
                s.storeConfig();
                s.transportOptions();
                check(s.selfIndex() >= 0, "this node is one of the peers", null);
                check(s.tickMs() > 0 && s.electionTimeoutMs() >= 4 * s.tickMs() && s.appendTimeoutMs() > 0,
                    "the timeouts are positive and the election takes at least 4 ticks", null);
            }
        } catch (IllegalArgumentException e) {
            FuzzTally.clearError(e);
            check(KEYS.stream().anyMatch(e.getMessage()::contains), "a refusal that names no key", e);
        }
    }
}
