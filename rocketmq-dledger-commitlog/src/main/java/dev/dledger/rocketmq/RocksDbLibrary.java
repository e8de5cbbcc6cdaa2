package dev.dledger.rocketmq;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.rocksdb.NativeLibraryLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads RocksDB's native library (RocketMQ 5.5's store opens RocksDB at every start) from one file under the broker's
 * store folder, {@code native/}, written again at each start of the process. Left to itself, RocksDB writes a new
 * copy of the library (about 13 MB) into {@code java.io.tmpdir} under a random name at each start and deletes it only
 * when the JVM exits normally: every broker killed or crashed left its copy behind, and a host whose brokers restart
 * often filled its temporary folder. An operator's {@code ROCKSDB_SHAREDLIB_DIR} (RocksDB's own setting) wins; a
 * folder that cannot take the file leaves RocksDB's own way in place, with one warning.
 */
final class RocksDbLibrary {

    private static final Logger LOG = LoggerFactory.getLogger(RocksDbLibrary.class);
    /** RocksDB's own variable naming the folder for its library. */
    static final String DIR_VARIABLE = "ROCKSDB_SHAREDLIB_DIR";

    private static boolean tried;

    private RocksDbLibrary() {
    }

    /**
     * Loads the library into this process from {@code storeRoot/native}, once per process (a container's later brokers
     * find it loaded); before anything of RocketMQ's opens RocksDB.
     */
    static synchronized void loadUnder(Path storeRoot) {
        if (tried || System.getenv(DIR_VARIABLE) != null) {
            return;
        }
        tried = true;
        Path dir = storeRoot.resolve("native");
        try {
            Files.createDirectories(dir);
            // Deletes the file a former process left and writes it again: a process still running on the old file
            // keeps its mapping of it.
            NativeLibraryLoader.getInstance().loadLibrary(dir.toString());
        } catch (IOException | RuntimeException | UnsatisfiedLinkError e) {
            LOG.warn("RocksDB's native library could not be loaded from {} ({}); RocksDB writes its own copy to {} as "
                + "usual", dir, e, System.getProperty("java.io.tmpdir"));
        }
    }
}
