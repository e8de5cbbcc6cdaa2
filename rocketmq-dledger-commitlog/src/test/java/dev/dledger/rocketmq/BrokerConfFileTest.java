package dev.dledger.rocketmq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@Tag("in-process")
class BrokerConfFileTest {

    @TempDir
    Path dir;

    private static final String CONF = String.join("\n",
        "# the group's first broker",
        "brokerName=RaftNode00",
        "fileReservedTime = 72",
        "  # an indented comment fileReservedTime=1",
        "enableDLegerCommitLog=true",
        "dLegerPeers=n0-127.0.0.1:40911;\\",
        "    n1-127.0.0.1:40912",
        "myOwnKey=kept",
        "") + "\n";

    @Test
    void aChangedKeyGetsItsNewValueOnItsOwnLineAndNothingElseChanges() {
        String out = BrokerConfFile.withValues(CONF, Map.of("fileReservedTime", "48"));
        assertEquals(CONF.replace("fileReservedTime = 72", "fileReservedTime=48"), out);
    }

    @Test
    void aKeyTheFileLacksIsAppended() {
        String out = BrokerConfFile.withValues(CONF, Map.of("deleteWhen", "03"));
        assertEquals(CONF + "deleteWhen=03\n", out);
        assertEquals("a=1\nb=2\n", BrokerConfFile.withValues("a=1", Map.of("b", "2")));
        assertEquals("b=2\n", BrokerConfFile.withValues("", Map.of("b", "2")));
    }

    @Test
    void aContinuedValueIsReplacedWhole() throws Exception {
        String out = BrokerConfFile.withValues(CONF, Map.of("dLegerPeers", "n0-h:1;n1-h:2"));
        Properties p = load(out);
        assertEquals("n0-h:1;n1-h:2", p.getProperty("dLegerPeers"));
        assertEquals("kept", p.getProperty("myOwnKey"));
        assertEquals(CONF.lines().count() - 1, out.lines().count());
    }

    @Test
    void valuesAreEscapedSoPropertiesReadsThemBack() throws Exception {
        String value = " leading space, a backslash \\ and non-ASCII \u00e9\u4e2d #!=:";
        String out = BrokerConfFile.withValues(CONF, Map.of("brokerName", value));
        assertEquals(value, load(out).getProperty("brokerName"));
        for (char c : out.toCharArray()) {
            assertEquals(true, c == '\n' || (c >= 0x20 && c <= 0x7e), "unescaped character " + (int) c);
        }
    }

    @Test
    void writeKeepsTheFilesPermissionsAndFollowsALink() throws Exception {
        Path real = dir.resolve("broker-n0.conf");
        Files.writeString(real, CONF, StandardCharsets.ISO_8859_1);
        Files.setPosixFilePermissions(real, PosixFilePermissions.fromString("rw-r-----"));
        Path link = Files.createSymbolicLink(dir.resolve("broker.conf"), real);
        BrokerConfFile.write(link, Map.of("fileReservedTime", "48"));
        assertEquals(true, Files.isSymbolicLink(link));
        assertEquals("48", load(Files.readString(real, StandardCharsets.ISO_8859_1)).getProperty("fileReservedTime"));
        assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(real)));
        try (var files = Files.list(dir)) {
            assertEquals(2, files.count(), "a temp file was left behind");
        }
    }

    private static Properties load(String text) throws Exception {
        Properties p = new Properties();
        p.load(new StringReader(text));
        return p;
    }
}
