package dev.dledger.raft.cli;

import static dev.dledger.raft.fuzz.FuzzTally.check;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.dledger.raft.fuzz.FuzzTally;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;

/**
 * Fuzzes the {@code dledger server --config FILE} parser: the input is the file's bytes, with now and then a few
 * command-line flags over it, read by {@link ServerConfig#load} for one of the subcommands; a config that loads must
 * also give each group its node options (as the server does next).
 *
 * <p>Contract: it loads, or fails with {@link ServerConfig.ConfigException} whose one-line message names the file, a
 * key or a flag. Anything else is a finding (a {@link NumberFormatException}, an {@link IllegalArgumentException} from
 * a path or a setting the parser let through, ...). Host names resolve against the fuzz JVM's hosts file only.
 */
class ServerConfigFuzzTest {

    private static final FuzzTally TALLY = new FuzzTally("server-config");
    private static final List<ServerConfig.CommandDefaults> COMMANDS = List.of(
        new ServerConfig.CommandDefaults("server", false, "log"),
        new ServerConfig.CommandDefaults("appender", true, "log"),
        new ServerConfig.CommandDefaults("register", true, "kv"));
    private static final Path FILE = file();

    private static Path file() {
        try {
            Path dir = Files.createTempDirectory("server-config");
            return dir.resolve("node.properties");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @FuzzTest
    void configFilesLoadOrAreRefusedNamingTheKey(FuzzedDataProvider data) {
        TALLY.run(() -> load(data));
    }

    @AfterAll
    static void report() throws IOException {
        TALLY.report();
        Files.deleteIfExists(FILE);
        Files.deleteIfExists(FILE.getParent());
    }

    private static void load(FuzzedDataProvider data) {
        ServerConfig.CommandDefaults command = COMMANDS.get(data.consumeInt(0, COMMANDS.size() - 1));
        Map<String, String> flags = new LinkedHashMap<>();
        Map<String, String> flagNames = new LinkedHashMap<>();
        int flagCount = data.consumeInt(0, 2);
        for (int i = 0; i < flagCount; i++) {
            ServerConfig.Key key = ServerConfig.KEYS.get(data.consumeInt(0, ServerConfig.KEYS.size() - 1));
            if (key.flag() != null) {
                flags.put(key.name(), data.consumeString(48));
                flagNames.put(key.name(), key.flag());
            }
        }
        boolean withFile = data.consumeInt(0, 7) != 0;
        try {
            Files.write(FILE, data.consumeRemainingAsBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try {
            ServerConfig c = ServerConfig.load(withFile ? FILE : null, flags, flagNames, command);
            check(!c.groups.isEmpty(), "a loaded config has a group", null);
            for (ServerConfig.GroupSpec g : c.groups) {
                c.nodeOptions(g);
                check(g.port() > 0, "this node of group " + g.group() + " has a port", null);
            }
        } catch (ServerConfig.ConfigException e) {
            FuzzTally.clearError(e);
            check(namesWhere(e.getMessage()), "a refusal that names no file, key or flag", e);
        }
    }

    private static boolean namesWhere(String message) {
        if (message.contains(FILE.toString())) {
            return true;
        }
        for (ServerConfig.Key k : ServerConfig.KEYS) {
            if (message.contains(k.name()) || k.flag() != null && message.contains(k.flag())) {
                return true;
            }
        }
        return false;
    }
}
