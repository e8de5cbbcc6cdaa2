package dev.dledger.raft.store;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The log on disk in DLedger 0.3.x's layout (see {@link EntryFormat}): {@code <dir>/data/} holds data files of a
 * fixed size named by their 20-digit start position, {@code <dir>/index/} holds index files of 32-byte units. A
 * store written by stock DLedger opens in place; ours computes the body and chain CRCs of every entry it writes and
 * records in {@code <dir>/crc-from} the first index it wrote, so a zero CRC at or after it is corruption.
 *
 * <p>Data files may be spread over several folders and older ones may live in read-only folders, as DLedger's
 * multi-path allows (see {@link StoreConfig#dataStorePaths()}); a file in a read-only folder is read, never written
 * or deleted: appends after it start a new file, and deleting a prefix (compaction, retention) stops at it.
 *
 * <p>Writes use positional {@link FileChannel} writes; {@link #prepareSync()} makes the data durable and the index
 * at file rolls, truncations and {@link #sync()} (the data is the truth: recovery rebuilds index units that did not
 * reach the disk). Reads check the body and chain CRCs of every entry of our range, and an index unit is used only
 * where its record agrees with it. Recovery scans the last three data files: a torn record at the end of the last
 * file is cut off (and the index follows the data), a missing or zero index unit is rebuilt from its entry; a bad
 * record before the tail, the end of the log before a data file that holds records, a broken chain, an index unit that
 * disagrees with the data, or a missing file fails with {@link StoreCorruptedException} naming the file and position.
 *
 * <p>Not thread-safe: one writer (the node's driver thread) calls every method.
 */
public final class SegmentedLogStore implements LogView, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(SegmentedLogStore.class);
    private static final String CRC_FROM = "crc-from";
    private static final String COMPACTED = "compacted";
    /** The record of a witness's dropped bodies (issue 19), see {@link #dropBodiesThrough(long)}. */
    static final String DROPPED = "dropped";
    /** Bytes encoded before they are written out, at most (a larger entry gets a buffer of its own size). */
    private static final int WRITE_BUFFER_BYTES = 4 << 20;
    /** The newest entries kept as written, at most: 8192 entries and 32 MiB (see {@link RecentEntries}). */
    private static final int RECENT_ENTRIES = 1 << 13;
    /** End positions kept of the newest appended entries, at most (a power of two; see {@link #endPosition}). */
    private static final int RECENT_ENDS = 1 << 12;

    private final Path dir;
    /** Folders new data files may go to, sorted by name (DLedger's rotation order). */
    private final List<Path> writableFolders;
    private final List<Path> readOnlyFolders;
    private final Path indexDir;
    private final StoreConfig config;
    private final FileOpener opener;
    private final TreeMap<Long, FileChannel> data = new TreeMap<>();
    private final TreeMap<Long, Path> dataPaths = new TreeMap<>();
    private final Set<Long> readOnlyData = new HashSet<>();
    private final TreeMap<Long, FileChannel> index = new TreeMap<>();
    private final Set<FileChannel> dirty = new LinkedHashSet<>();
    private final Set<FileChannel> dirtyIndex = new LinkedHashSet<>();
    /** The index is fsynced with the next sync round: a data file was sealed or entries were truncated. */
    private boolean indexSyncDue;
    private volatile Set<Path> fullFolders = Set.of();
    private ByteBuffer writeBuffer;
    private ByteBuffer unitBuffer;
    private long writePos;
    private long firstIndex;
    private long lastIndex;
    private int lastChainCrc;
    private long crcFrom;
    private SnapshotMeta snapshot = SnapshotMeta.NONE;
    /**
     * On a witness (issue 19): the last entry whose data file was deleted, -1 when none; its body and those before it
     * are gone, its index unit (index, term, position, size) stays.
     */
    private long droppedThrough = -1;
    /** The highest index a caller allowed to drop ({@link #dropBodiesThrough}); at least {@link #droppedThrough}. */
    private long dropAllowed = -1;
    /** The NOOP and CONFIG entries of the dropped range, kept whole in the {@value #DROPPED} record. */
    private final TreeMap<Long, Entry> droppedKept = new TreeMap<>();
    private volatile boolean failed;
    private WriteHook writeHook;
    /** Terms of the tail of the log, {@code [cacheBase, lastIndex]}, so the core's term lookups do not touch disk. */
    private long[] terms = new long[1024];
    private long cacheBase;
    /**
     * The newest entries as written: replication and apply read what was just written, and take it from here instead
     * of the files. Reading it back would give the same entry: what is written is the entry's bytes after the
     * {@link WriteHook}, and an entry held here is that same object.
     */
    private final RecentEntries recent;
    /**
     * The end positions of the newest appended entries, entry {@code i} in slot {@code i % RECENT_ENDS} with its index
     * in {@link #endIndexes} (-1: none), so that an application asking where a just committed entry ends (a broker's
     * commit tracking, once per applied batch) reads no index unit and header. The tag alone keeps it right: entries
     * come into the log only by an append, which sets its slot, so an entry truncated or compacted away and written
     * again has its new end there.
     */
    private final long[] ends = new long[RECENT_ENDS];
    private final long[] endIndexes = new long[RECENT_ENDS];

    private SegmentedLogStore(Path dir, StoreConfig config, FileOpener opener) {
        this.dir = dir;
        this.opener = opener;
        this.indexDir = dir.resolve("index");
        this.config = config;
        this.recent = new RecentEntries(RECENT_ENTRIES, config.recentBytes());
        java.util.Arrays.fill(endIndexes, -1);
        List<Path> folders = config.dataStorePaths().isEmpty() ? List.of(dir.resolve("data")) : config.dataStorePaths();
        this.readOnlyFolders = List.copyOf(new LinkedHashSet<>(config.readOnlyDataStoreDirs()));
        List<Path> writable = new ArrayList<>(new LinkedHashSet<>(folders));
        writable.removeAll(readOnlyFolders);
        writable.sort(Comparator.comparing(Path::toString));
        this.writableFolders = List.copyOf(writable);
    }

    /**
     * Opens (creating if needed) the store in {@code dir} and recovers it.
     *
     * @throws StoreCorruptedException if the files are damaged beyond a torn tail
     * @throws StoreIoException        if the files cannot be read or created
     */
    public static SegmentedLogStore open(Path dir, StoreConfig config) {
        return open(dir, config, FileOpener.DEFAULT);
    }

    /**
     * Opens the store with files opened by {@code opener} (tests inject faults through it).
     *
     * @see #open(Path, StoreConfig)
     */
    public static SegmentedLogStore open(Path dir, StoreConfig config, FileOpener opener) {
        SegmentedLogStore s = new SegmentedLogStore(dir, config, opener);
        try {
            for (Path folder : s.writableFolders) {
                Files.createDirectories(folder);
            }
            for (Path folder : s.readOnlyFolders) {
                if (!Files.isDirectory(folder)) {
                    throw new StoreIoException("read-only data folder " + folder + " of store " + dir
                        + " does not exist", null);
                }
            }
            Files.createDirectories(s.indexDir);
            s.recover();
        } catch (IOException e) {
            s.close();
            throw new StoreIoException("cannot open store " + dir + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            s.close();
            throw e;
        }
        return s;
    }

    // ------------------------------------------------------------------------------------------------------------
    // LogView

    @Override
    public long firstIndex() {
        return firstIndex;
    }

    @Override
    public long lastIndex() {
        return lastIndex;
    }

    @Override
    public long term(long i) {
        if (i == firstIndex - 1) {
            return i == -1 ? 0 : snapshot.index() == i ? snapshot.term() : checkedUnit(i).term();
        }
        if (i < firstIndex || i > lastIndex) {
            return -1;
        }
        if (i >= cacheBase) {
            return terms[(int) (i - cacheBase)];
        }
        return unitOf(i).term();
    }

    @Override
    public List<Entry> entries(long lo, long hi, long maxBytes) {
        if (lo < firstIndex || hi > lastIndex + 1 || lo > hi) {
            throw new IllegalArgumentException("range [" + lo + "," + hi + ") outside [" + firstIndex + ","
                + (lastIndex + 1) + ")");
        }
        List<Entry> out = new ArrayList<>();
        long bytes = 0;
        Integer chain = null;
        for (long i = lo; i < hi; i++) {
            Read r = read(i, chain);
            Entry e = r.entry();
            if (!out.isEmpty() && bytes + e.sizeBytes() > maxBytes) {
                break;
            }
            out.add(e);
            bytes += e.sizeBytes();
            chain = r.chainCrc();
        }
        return out;
    }

    @Override
    public SnapshotMeta snapshot() {
        return snapshot;
    }

    /**
     * At least the highest index whose body a witness may have dropped here (issue 19): what {@link
     * #dropBodiesThrough} was allowed, or after a restart what it did drop; -1 when none. Up to
     * {@link #bodiesDroppedThrough()} {@link #entries} gives NORMAL entries without their body.
     */
    @Override
    public long droppedBodiesThrough() {
        return Math.max(dropAllowed, droppedThrough);
    }

    /** The last entry whose body is gone from this store (its data file deleted by a witness's drop), or -1. */
    public long bodiesDroppedThrough() {
        return droppedThrough;
    }

    /**
     * Entry {@code i} with its body, for a reader that needs the bytes (a client's read, a dump): unlike {@link
     * #entries}, which gives the core a dropped NORMAL entry without its body, this refuses one.
     *
     * @throws IllegalArgumentException if {@code i} is not in the log
     * @throws BodyDroppedException     if this witness dropped the body of {@code i}
     */
    public Entry entryWithBody(long i) {
        checkRange(i);
        if (i <= droppedThrough && !droppedKept.containsKey(i)) {
            throw new BodyDroppedException("entry " + i + " of " + dir + ": body dropped on witness (bodies through "
                + droppedThrough + " are gone; a data member holds them)");
        }
        return read(i, null).entry();
    }

    /** Whether the record of entry {@code i} (header and body) is in the data files. */
    private boolean bodyHeld(long i) {
        return i >= firstIndex && i > droppedThrough;
    }

    /** The index unit of entry {@code i}: checked against its record, or alone where a witness dropped the record. */
    private EntryFormat.IndexUnit unitOf(long i) {
        return i <= droppedThrough ? droppedUnit(i) : checkedUnit(i);
    }

    /**
     * The index unit of an entry whose record a witness dropped: nothing is left to check it against but its own
     * index field.
     */
    private EntryFormat.IndexUnit droppedUnit(long i) {
        EntryFormat.IndexUnit u = readUnit(i);
        if (u.index() != i || u.term() < 0 || u.size() < EntryFormat.HEADER_SIZE) {
            throw new StoreCorruptedException(unitLocation(i) + ": index unit " + u + " of entry " + i
                + " (body dropped on this witness) is damaged");
        }
        return u;
    }

    /** What the log gives for an entry whose body was dropped: a NOOP or CONFIG whole, a NORMAL entry without body. */
    private Entry droppedEntry(long i) {
        Entry kept = droppedKept.get(i);
        return kept != null ? kept : new Entry(i, droppedUnit(i).term(), EntryType.NORMAL, null);
    }

    /**
     * On a witness (issue 19): drops the bodies of the entries up to {@code index}, which the caller may drop (every
     * data member holds them durably; {@code RaftNode.witnessDropIndex()}). Whole data files go: those whose entries
     * are all at or below {@code index}, never the file being written nor a read-only one; the index files stay, so
     * every entry keeps its index, term, position and size for votes and log matching. The NOOP and CONFIG entries of
     * the deleted files are kept whole in the {@value #DROPPED} record, written durably (with the last dropped index
     * and the first kept position) before any file is deleted; a crash in between is finished at the next open.
     * Afterwards {@link #entries} gives the dropped NORMAL entries without body, {@link #entryWithBody} refuses them.
     *
     * @throws StoreIoException if the record cannot be written or a file deleted; the store then refuses writes
     */
    public void dropBodiesThrough(long index) {
        checkWritable();
        if (index <= dropAllowed) {
            return;
        }
        dropAllowed = index;
        long upTo = Math.min(index, lastIndex);
        if (upTo <= droppedThrough || upTo < firstIndex || data.isEmpty()) {
            return;
        }
        long fileSize = config.dataFileSizeBytes();
        long keepFrom = upTo < lastIndex ? fileStart(checkedUnit(upTo + 1).pos(), fileSize) : fileStart(writePos, fileSize);
        // Never the file being written, nor the last one: the log's end is found in the data files.
        keepFrom = Math.min(keepFrom, Math.min(fileStart(writePos, fileSize), data.lastKey()));
        for (long ro : readOnlyData) {
            keepFrom = Math.min(keepFrom, ro);
        }
        if (keepFrom <= data.firstKey()) {
            return;
        }
        long firstKept = data.containsKey(keepFrom) ? firstEntryIndex(keepFrom) : -1;
        long through = firstKept >= 0 ? firstKept - 1 : lastIndex;
        if (through <= droppedThrough || through < firstIndex) {
            return;
        }
        try {
            TreeMap<Long, Entry> kept = new TreeMap<>(droppedKept);
            for (long i = Math.max(firstIndex, droppedThrough + 1); i <= through; i++) {
                // One header read per entry, once: the few NOOP and CONFIG entries are kept whole.
                EntryFormat.Header h = readHeader(checkedUnit(i).pos());
                if (h.type() != EntryType.NORMAL) {
                    kept.put(i, read(i, null).entry());
                }
            }
            kept.headMap(firstIndex, false).clear();
            writeDropped(through, keepFrom, kept);
            droppedKept.clear();
            droppedKept.putAll(kept);
            droppedThrough = through;
            recent.dropBelow(through + 1);
            dropFilesBelow(data, null, keepFrom, fileSize);
            LOG.info("store {}: witness dropped the bodies through entry {} (data files before position {})", dir,
                through, keepFrom);
        } catch (IOException e) {
            failed = true;
            throw new StoreIoException("dropping the bodies through " + through + " in " + dir + " failed: "
                + e.getMessage(), e);
        }
    }

    /**
     * Forgets that bodies were dropped here, once the log holds none of the entries it covered: a snapshot of a data
     * member replaced them (a witness promoted to a data member, issue 19). The record is deleted durably; a crash
     * before that leaves it, and the node is refilled again.
     *
     * @throws IllegalStateException if the log still holds an entry whose body was, or may be, dropped
     */
    public void clearDropped() {
        checkWritable();
        if (droppedThrough < 0 && dropAllowed < 0) {
            return;
        }
        if (Math.max(droppedThrough, dropAllowed) >= firstIndex) {
            throw new IllegalStateException("store " + dir + ": bodies through " + Math.max(droppedThrough, dropAllowed)
                + " may be dropped and the log starts at " + firstIndex + ": the record of them must stay");
        }
        try {
            Files.deleteIfExists(dir.resolve(DROPPED));
            AtomicFiles.syncFolder(dir);
        } catch (IOException e) {
            failed = true;
            throw new StoreIoException("cannot delete " + dir.resolve(DROPPED) + ": " + e.getMessage(), e);
        }
        LOG.info("store {}: the record of the bodies dropped through entry {} is gone: a snapshot replaced them", dir,
            droppedThrough);
        droppedThrough = -1;
        dropAllowed = -1;
        droppedKept.clear();
    }

    private void writeDropped(long through, long keepFrom, TreeMap<Long, Entry> kept) throws IOException {
        Properties p = new Properties();
        p.setProperty("through", Long.toString(through));
        p.setProperty("keepFrom", Long.toString(keepFrom));
        p.setProperty("first", Long.toString(firstIndex));
        for (Entry e : kept.values()) {
            p.setProperty("entry." + e.index(), e.term() + "," + e.type().name() + ","
                + java.util.Base64.getEncoder().encodeToString(e.data()));
        }
        AtomicFiles.writeProperties(dir.resolve(DROPPED), p);
    }

    /**
     * At open: reads the {@value #DROPPED} record, if any, and deletes the data files it says are gone (a crash came
     * between writing it and deleting them).
     *
     * @return the first index of the log when the bodies were dropped, or -1 without a record
     */
    private long recoverDropped() throws IOException {
        Path file = dir.resolve(DROPPED);
        Properties p = AtomicFiles.readStoreProperties(file);
        if (p == null) {
            return -1;
        }
        droppedThrough = AtomicFiles.longProperty(file, p, "through", null);
        dropAllowed = droppedThrough;
        long keepFrom = AtomicFiles.longProperty(file, p, "keepFrom", null);
        long first = AtomicFiles.longProperty(file, p, "first", null);
        for (String key : p.stringPropertyNames()) {
            if (!key.startsWith("entry.")) {
                continue;
            }
            String[] f = p.getProperty(key).split(",", 3);
            try {
                long i = Long.parseLong(key.substring("entry.".length()));
                droppedKept.put(i, new Entry(i, Long.parseLong(f[0]), EntryType.valueOf(f[1]),
                    java.util.Base64.getDecoder().decode(f[2])));
            } catch (RuntimeException e) {
                throw new StoreCorruptedException(file + ": bad kept entry " + key + "=" + p.getProperty(key) + ": "
                    + e.getMessage());
            }
        }
        if (!data.isEmpty() && data.firstKey() < keepFrom) {
            LOG.info("store {}: finishing the drop of the bodies through {}: deleting the data files before {}", dir,
                droppedThrough, keepFrom);
            dropFilesBelow(data, null, keepFrom, config.dataFileSizeBytes());
        }
        return first;
    }

    /** The data-file position of entry {@code i} (DLedger's {@code pos}). */
    public long position(long i) {
        checkRange(i);
        return unitOf(i).pos();
    }

    /** The first index written by this store's code: entries from here on carry CRCs. */
    public long crcFrom() {
        return crcFrom;
    }

    /** The position the next entry would be written at (at most, a BLANK may move it to the next file). */
    public long writePosition() {
        return writePos;
    }

    /** Installs the hook that sees each entry before it is written (null: none). Call before the first append. */
    public void writeHook(WriteHook hook) {
        this.writeHook = hook;
    }

    /**
     * Makes an empty store begin at {@code pos}, a data-file boundary: the first entry is written there. RocketMQ's
     * CommitLog files from before the Raft log end below that position and stay readable as they are. The first data
     * file is created at once, so the start survives a restart.
     *
     * @throws IllegalStateException    if the store holds entries or data files
     * @throws IllegalArgumentException if {@code pos} is not a multiple of the data file size
     */
    public void startAt(long pos) {
        checkWritable();
        if (lastIndex >= firstIndex || !data.isEmpty()) {
            throw new IllegalStateException("store " + dir + " is not empty: it cannot start at " + pos);
        }
        if (pos < 0 || pos % config.dataFileSizeBytes() != 0) {
            throw new IllegalArgumentException("start position " + pos + " is not a boundary of data files of "
                + config.dataFileSizeBytes() + " bytes");
        }
        try {
            dataFile(pos, true);
            writePos = pos;
        } catch (IOException e) {
            failed = true;
            throw new StoreIoException("cannot create the first data file of " + dir + " at " + pos + ": "
                + e.getMessage(), e);
        }
    }

    /** The largest body an entry can have: a data file holds it with its header and the smallest BLANK record. */
    public int maxBodyBytes() {
        return config.dataFileSizeBytes() - EntryFormat.HEADER_SIZE - EntryFormat.MIN_BLANK;
    }

    /** The layout settings the store was opened with. */
    public StoreConfig config() {
        return config;
    }

    /** The store's folder. */
    public Path dir() {
        return dir;
    }

    /** The folders new data files may go to, in rotation order; empty for a store with only read-only folders. */
    public List<Path> writableDataFolders() {
        return writableFolders;
    }

    /** The read-only data folders. */
    public List<Path> readOnlyDataFolders() {
        return readOnlyFolders;
    }

    /**
     * A data file of the store.
     *
     * @param start    its start position (its name)
     * @param path     where it lives
     * @param readOnly whether it lives in a read-only folder
     */
    public record DataFile(long start, Path path, boolean readOnly) {
    }

    /** The data files, oldest first. */
    public List<DataFile> dataFiles() {
        List<DataFile> out = new ArrayList<>();
        for (Map.Entry<Long, Path> f : dataPaths.entrySet()) {
            out.add(new DataFile(f.getKey(), f.getValue(), readOnlyData.contains(f.getKey())));
        }
        return out;
    }

    /**
     * Folders that new data files avoid while others have room, as DLedger avoids full paths; set by
     * {@link LogRetention} from the disk use it measures. Any thread.
     */
    void avoidFolders(Set<Path> full) {
        fullFolders = Set.copyOf(full);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Writes

    /**
     * Appends consecutive entries at the end.
     *
     * @return each entry's position in the data files
     * @throws IllegalArgumentException if the entries do not follow the last one, or one is too large for a file
     * @throws StoreIoException         if the write fails; the store then refuses further writes
     */
    public long[] append(List<Entry> entries) {
        checkWritable();
        long[] positions = new long[entries.size()];
        if (entries.isEmpty()) {
            return positions;
        }
        if (entries.get(0).index() != lastIndex + 1) {
            throw new IllegalArgumentException("append of index " + entries.get(0).index() + " after " + lastIndex);
        }
        try {
            int total = 0;
            for (Entry e : entries) {
                int size = EntryFormat.recordSize(e);
                if (size - EntryFormat.HEADER_SIZE > maxBodyBytes()) {
                    throw new IllegalArgumentException("entry " + e.index() + " of " + e.data().length
                        + " bytes does not fit in a data file of " + config.dataFileSizeBytes() + " bytes");
                }
                total += size;
            }
            ByteBuffer buf = writeBuffer(Math.min(total + EntryFormat.MIN_BLANK * 2, WRITE_BUFFER_BYTES));
            long bufStart = writePos;
            ByteBuffer units = unitBuffer(entries.size() * EntryFormat.INDEX_UNIT_SIZE);
            int chain = lastChainCrc;
            for (int n = 0; n < entries.size(); n++) {
                Entry e = entries.get(n);
                int size = EntryFormat.recordSize(e);
                long fileStart = fileStart(writePos, config.dataFileSizeBytes());
                long room = fileStart + config.dataFileSizeBytes() - writePos;
                if (readOnlyData.contains(fileStart)) {
                    // The newest file is read-only: leave it as it is, the log goes on in the next file.
                    buf = flushBuffer(buf, bufStart);
                    writePos = fileStart + config.dataFileSizeBytes();
                    bufStart = writePos;
                    fileStart = writePos;
                    room = config.dataFileSizeBytes();
                }
                if (size + EntryFormat.MIN_BLANK > room) {
                    // Pad the rest of this file with a BLANK record; the entry goes to the next file.
                    if (buf.remaining() < EntryFormat.MIN_BLANK) {
                        buf = flushBuffer(buf, bufStart);
                        bufStart = writePos;
                    }
                    buf.putInt(EntryFormat.BLANK_MAGIC).putInt((int) room);
                    buf = flushBuffer(buf, bufStart);
                    writePos = fileStart + config.dataFileSizeBytes();
                    bufStart = writePos;
                }
                if (buf.remaining() < size) {
                    buf = flushBuffer(buf, bufStart);
                    bufStart = writePos;
                    if (buf.capacity() < size) {
                        buf = writeBuffer(size);
                    }
                }
                if (writeHook != null) {
                    writeHook.beforeWrite(e, writePos);
                }
                chain = EntryFormat.encode(e, writePos, chain, buf);
                positions[n] = writePos;
                EntryFormat.encodeIndex(EntryFormat.ENTRY_MAGIC, writePos, size, e.index(), e.term(), units);
                writePos += size;
            }
            flushBuffer(buf, bufStart);
            units.flip();
            writeIndex(entries.get(0).index(), units);
            lastChainCrc = chain;
            for (int n = 0; n < entries.size(); n++) {
                Entry e = entries.get(n);
                cacheTerm(e.index(), e.term());
                recent.add(EntryFormat.asRead(e));
                int slot = (int) (e.index() & (RECENT_ENDS - 1));
                ends[slot] = positions[n] + EntryFormat.recordSize(e);
                endIndexes[slot] = e.index();
            }
            lastIndex = entries.get(entries.size() - 1).index();
            return positions;
        } catch (IOException e) {
            failed = true;
            throw new StoreIoException("append at index " + entries.get(0).index() + " in " + dir + " failed: "
                + e.getMessage(), e);
        }
    }

    /** The reusable direct buffer that records are encoded into, cleared, with room for at least {@code bytes}. */
    private ByteBuffer writeBuffer(int bytes) {
        if (writeBuffer == null || writeBuffer.capacity() < bytes) {
            writeBuffer = ByteBuffer.allocateDirect(Math.max(bytes, 64 * 1024));
        }
        writeBuffer.clear();
        return writeBuffer;
    }

    private ByteBuffer unitBuffer(int bytes) {
        if (unitBuffer == null || unitBuffer.capacity() < bytes) {
            unitBuffer = ByteBuffer.allocateDirect(Math.max(bytes, 8 * 1024));
        }
        unitBuffer.clear();
        return unitBuffer;
    }

    /** Writes the buffer's content at {@code start} (within one data file) and returns it cleared. */
    private ByteBuffer flushBuffer(ByteBuffer buf, long start) throws IOException {
        buf.flip();
        if (buf.hasRemaining()) {
            FileChannel ch = dataFile(fileStart(start, config.dataFileSizeBytes()), true);
            long at = start - fileStart(start, config.dataFileSizeBytes());
            while (buf.hasRemaining()) {
                at += ch.write(buf, at);
            }
            dirty.add(ch);
        }
        buf.clear();
        return buf;
    }

    private void writeIndex(long firstEntry, ByteBuffer units) throws IOException {
        long at = firstEntry * EntryFormat.INDEX_UNIT_SIZE;
        while (units.hasRemaining()) {
            long fileStart = fileStart(at, config.indexFileSizeBytes());
            FileChannel ch = indexFile(fileStart, true);
            int len = (int) Math.min(units.remaining(), fileStart + config.indexFileSizeBytes() - at);
            ByteBuffer part = units.slice();
            part.limit(len);
            long off = at - fileStart;
            while (part.hasRemaining()) {
                off += ch.write(part, off);
            }
            units.position(units.position() + len);
            at += len;
            dirtyIndex.add(ch);
        }
    }

    /**
     * Removes every entry at or after {@code from}. The freed bytes are zeroed so recovery cannot bring the removed
     * entries back.
     */
    public void truncateSuffix(long from) {
        checkWritable();
        if (from > lastIndex) {
            return;
        }
        if (from < firstIndex) {
            throw new IllegalArgumentException("truncate at " + from + " below the first index " + firstIndex);
        }
        if (from <= droppedThrough) {
            throw new IllegalArgumentException("truncate at " + from + " in " + dir + ": the bodies through "
                + droppedThrough + " were dropped on this witness (they were committed)");
        }
        long pos = checkedUnit(from).pos();
        for (long ro : readOnlyData) {
            if (ro + config.dataFileSizeBytes() > pos) {
                throw new IllegalStateException("cannot truncate " + dir + " at index " + from + ": position " + pos
                    + " is at or before read-only data file " + dataPath(ro));
            }
        }
        // Forgotten first: if the truncation fails half way, no removed entry is served from memory.
        recent.truncateFrom(from);
        try {
            long end = writePos;
            indexSyncDue = true;
            zeroRange(data, config.dataFileSizeBytes(), pos, end);
            zeroRange(index, config.indexFileSizeBytes(), from * EntryFormat.INDEX_UNIT_SIZE,
                (lastIndex + 1) * EntryFormat.INDEX_UNIT_SIZE);
            dropFilesFrom(data, null, fileStart(pos, config.dataFileSizeBytes()) + config.dataFileSizeBytes());
            dropFilesFrom(index, indexDir, fileStart(from * EntryFormat.INDEX_UNIT_SIZE, config.indexFileSizeBytes())
                + config.indexFileSizeBytes());
            writePos = pos;
            lastIndex = from - 1;
            if (from < crcFrom) {
                // The entries written from here on carry our CRCs: our range starts with them, its chain at 0.
                crcFrom = from;
                writeCrcFrom(crcFrom);
            }
            // Past a compaction, and at the start of our range, the chain restarts from 0.
            lastChainCrc = bodyHeld(lastIndex) && lastIndex >= crcFrom
                ? readHeader(checkedUnit(lastIndex).pos()).chainCrc() : 0;
            if (lastIndex < cacheBase) {
                cacheBase = lastIndex + 1;
            }
        } catch (IOException e) {
            failed = true;
            throw new StoreIoException("truncate at " + from + " in " + dir + " failed: " + e.getMessage(), e);
        }
    }

    private void zeroRange(TreeMap<Long, FileChannel> files, long fileSize, long from, long to) throws IOException {
        long at = from;
        ByteBuffer zeros = ByteBuffer.allocate(64 * 1024);
        while (at < to) {
            long start = fileStart(at, fileSize);
            FileChannel ch = files.get(start);
            long stop = Math.min(to, start + fileSize);
            if (ch != null) {
                long off = at - start;
                while (off < stop - start) {
                    zeros.clear();
                    zeros.limit((int) Math.min(zeros.capacity(), stop - start - off));
                    off += ch.write(zeros, off);
                }
                (files == index ? dirtyIndex : dirty).add(ch);
            }
            at = stop;
        }
    }

    /** Deletes the files from {@code fromStart} on; {@code folder} null means the data files. */
    private void dropFilesFrom(TreeMap<Long, FileChannel> files, Path folder, long fromStart) throws IOException {
        for (Map.Entry<Long, FileChannel> f : new ArrayList<>(files.tailMap(fromStart, true).entrySet())) {
            deleteFile(files, folder, f.getKey());
        }
    }

    private void deleteFile(TreeMap<Long, FileChannel> files, Path folder, long start) throws IOException {
        FileChannel ch = files.remove(start);
        ch.close();
        dirty.remove(ch);
        dirtyIndex.remove(ch);
        Path p = folder == null ? dataPaths.remove(start) : folder.resolve(EntryFormat.fileName(start));
        Files.deleteIfExists(p);
    }

    /**
     * Makes a store that holds no entry after its snapshot go on at {@code pos}, a data-file boundary beyond every data
     * file it has: as {@link #startAt}, but where data files are left that hold nothing after the snapshot (a follower
     * that started at a leader's position, {@link #startAt}, and installs a later position-only snapshot before it
     * wrote an entry there). The snapshot's record names {@code pos} first, so that a crash at any later step reopens
     * the store going on there (the open removes data files a crash left behind such a record); then the older data
     * files go, and the first one at {@code pos} is created.
     *
     * @throws IllegalStateException    if the store holds an entry after its snapshot, or a data file at or beyond
     *                                  {@code pos}
     * @throws IllegalArgumentException if {@code pos} is not a multiple of the data file size
     */
    public void moveStartTo(long pos) {
        checkWritable();
        if (data.isEmpty()) {
            startAt(pos);
            return;
        }
        if (lastIndex >= firstIndex) {
            throw new IllegalStateException("store " + dir + " holds entries " + firstIndex + ".." + lastIndex
                + ": it cannot move its start to " + pos);
        }
        if (pos < 0 || pos % config.dataFileSizeBytes() != 0) {
            throw new IllegalArgumentException("start position " + pos + " is not a boundary of data files of "
                + config.dataFileSizeBytes() + " bytes");
        }
        if (data.lastKey() >= pos) {
            throw new IllegalStateException("store " + dir + " has a data file at " + data.lastKey()
                + ": it cannot move its start back to " + pos);
        }
        try {
            writeCompacted(snapshot, pos);
            dropFilesBelow(data, null, pos, config.dataFileSizeBytes());
            dataFile(pos, true);
            writePos = pos;
        } catch (IOException e) {
            failed = true;
            throw new StoreIoException("cannot move the start of " + dir + " to " + pos + ": " + e.getMessage(), e);
        }
    }

    /**
     * Drops the log up to and including {@code meta.index()}, which a snapshot now covers: records {@code meta}
     * durably, then deletes the data and index files that hold nothing after it. When {@code meta.index()} is past
     * the end (a snapshot from the leader), the log becomes empty and continues at the next data file.
     */
    public void compactPrefix(SnapshotMeta meta) {
        checkWritable();
        if (meta.index() < firstIndex - 1) {
            return;
        }
        try {
            long keepFromPos;
            if (meta.index() >= lastIndex) {
                keepFromPos = fileStart(writePos, config.dataFileSizeBytes()) + config.dataFileSizeBytes();
                if (writePos == fileStart(writePos, config.dataFileSizeBytes())) {
                    keepFromPos = writePos;
                }
            } else {
                keepFromPos = unitOf(meta.index() + 1).pos();
            }
            writeCompacted(meta, meta.index() >= lastIndex ? keepFromPos : -1);
            dropFilesBelow(data, null, keepFromPos, config.dataFileSizeBytes());
            dropFilesBelow(index, indexDir, (meta.index() + 1) * EntryFormat.INDEX_UNIT_SIZE,
                config.indexFileSizeBytes());
            if (meta.index() >= lastIndex) {
                writePos = keepFromPos;
                lastIndex = meta.index();
                lastChainCrc = 0;
                cacheBase = meta.index() + 1;
            }
            firstIndex = meta.index() + 1;
            snapshot = meta;
            recent.dropBelow(firstIndex);
            if (cacheBase < firstIndex) {
                dropCacheBelow(firstIndex);
            }
        } catch (IOException e) {
            failed = true;
            throw new StoreIoException("compaction to " + meta.index() + " in " + dir + " failed: " + e.getMessage(),
                e);
        }
    }

    /**
     * Deletes the files that end at or before {@code keepFrom}, oldest first; {@code folder} null means the data
     * files, whose deletion stops at the first one in a read-only folder (the files after it stay too, so that the
     * files on disk remain one unbroken run).
     */
    private void dropFilesBelow(TreeMap<Long, FileChannel> files, Path folder, long keepFrom, long fileSize)
        throws IOException {
        for (Map.Entry<Long, FileChannel> f : new ArrayList<>(files.headMap(keepFrom, true).entrySet())) {
            if (folder == null && readOnlyData.contains(f.getKey())) {
                return;
            }
            if (f.getKey() + fileSize <= keepFrom) {
                deleteFile(files, folder, f.getKey());
            }
        }
    }

    private void writeCompacted(SnapshotMeta meta, long nextPos) throws IOException {
        Properties p = new Properties();
        p.setProperty("index", Long.toString(meta.index()));
        p.setProperty("term", Long.toString(meta.term()));
        p.setProperty("voters", meta.membership().toString());
        p.setProperty("nextPos", Long.toString(nextPos));
        AtomicFiles.writeProperties(dir.resolve(COMPACTED), p);
    }

    /** Makes every write so far durable, the index included. */
    public void sync() {
        indexSyncDue = true;
        prepareSync().run();
    }

    /**
     * Takes the files written since the last sync and returns the fsync of them, to run later, possibly on another
     * thread while this store goes on taking writes: it makes durable at least every entry written before this call.
     * The index files are in the round only when a data file was sealed or entries were truncated since the last
     * one: index units of the newest files may be lost in a crash, and recovery rebuilds them from the data. A file
     * deleted meanwhile (truncation, compaction) needs no fsync.
     */
    public Runnable prepareSync() {
        List<FileChannel> files = new ArrayList<>(dirty);
        dirty.clear();
        if (indexSyncDue) {
            files.addAll(dirtyIndex);
            dirtyIndex.clear();
            indexSyncDue = false;
        }
        return () -> {
            try {
                for (FileChannel ch : files) {
                    try {
                        ch.force(false);
                    } catch (java.nio.channels.ClosedChannelException deleted) {
                        // the file was closed by a truncation or compaction: nothing of it is needed any more
                    }
                }
            } catch (IOException e) {
                failed = true;
                throw new StoreIoException("fsync of " + dir + " failed: " + e.getMessage(), e);
            }
        };
    }

    @Override
    public void close() {
        for (FileChannel ch : data.values()) {
            closeQuietly(ch);
        }
        for (FileChannel ch : index.values()) {
            closeQuietly(ch);
        }
        data.clear();
        dataPaths.clear();
        index.clear();
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // closing after a failure: nothing more to lose
        }
    }

    private void checkWritable() {
        if (failed) {
            throw new StoreIoException("store " + dir + " failed earlier and takes no more writes", null);
        }
    }

    /**
     * What a full check of the store found.
     *
     * @param entries     entries checked
     * @param first       first index checked, or -1 when empty
     * @param last        last index checked
     * @param stockQuirks entries before {@link #crcFrom()} that carry stock DLedger's known quirks (zero CRCs, a
     *                    NOOP whose index unit says NORMAL); tolerated
     * @param problem     the first problem found, or null
     * @param types       how many of the checked entries are of each type (read from the channel byte, or from
     *                    the magic in older stores)
     */
    public record VerifyReport(long entries, long first, long last, long stockQuirks, String problem,
                               Map<EntryType, Long> types) {

        public VerifyReport {
            types = Map.copyOf(types);
        }

        /** A report without type counts. */
        public VerifyReport(long entries, long first, long last, long stockQuirks, String problem) {
            this(entries, first, last, stockQuirks, problem, Map.of());
        }
    }

    /** One entry as {@code log dump} prints it. */
    public record EntryInfo(long index, long term, long pos, int size, int bodyCrc, EntryType type) {
    }

    /** The data-file position just after entry {@code i}, from its index unit alone. */
    public long endPosition(long i) {
        checkRange(i);
        int slot = (int) (i & (RECENT_ENDS - 1));
        if (endIndexes[slot] == i) {
            return ends[slot];
        }
        EntryFormat.IndexUnit u = unitOf(i);
        return u.pos() + u.size();
    }

    /**
     * Reads the header of entry {@code i} without its body. For an entry whose body a witness dropped, the header is
     * made from its index unit (body CRC 0) and the type kept in the {@value #DROPPED} record.
     */
    public EntryInfo info(long i) {
        checkRange(i);
        if (i <= droppedThrough) {
            EntryFormat.IndexUnit u = droppedUnit(i);
            Entry kept = droppedKept.get(i);
            return new EntryInfo(i, u.term(), u.pos(), u.size(), 0, kept == null ? EntryType.NORMAL : kept.type());
        }
        EntryFormat.IndexUnit u = checkedUnit(i);
        EntryFormat.Header h = readHeader(u.pos());
        return new EntryInfo(h.index(), h.term(), h.pos(), h.size(), h.bodyCrc(), h.type());
    }

    /**
     * Checks every entry: its record against its index unit, its body CRC and the CRC chain in our range. Stops at
     * the first problem and names it.
     */
    public VerifyReport verify() {
        long quirks = 0;
        int chain = 0;
        boolean chainKnown = false;
        long checked = 0;
        Map<EntryType, Long> types = new java.util.EnumMap<>(EntryType.class);
        // The entries whose bodies a witness dropped have no record left to check (their units are read by term()).
        for (long i = Math.max(firstIndex, droppedThrough + 1); i <= lastIndex; i++) {
            try {
                EntryFormat.IndexUnit u = readUnit(i);
                Path file = dataPath(fileStart(u.pos(), config.dataFileSizeBytes()));
                ByteBuffer b = readData(u.pos(), Math.max(u.size(), EntryFormat.HEADER_SIZE));
                ByteBuffer header = b.duplicate();
                EntryFormat.Header h = EntryFormat.Header.read(b);
                String where = file + " at " + (u.pos() - fileStart(u.pos(), config.dataFileSizeBytes()));
                if (h.type() == null || h.index() != i || h.size() != u.size() || h.pos() != u.pos()
                    || h.term() != u.term()) {
                    return new VerifyReport(checked, firstIndex, i - 1, quirks, where + ": entry " + i + " record "
                        + h + " disagrees with its index unit " + u);
                }
                if (h.size() < EntryFormat.HEADER_SIZE || h.bodyLength() != h.size() - EntryFormat.HEADER_SIZE) {
                    // Checked before the body is allocated: its length field must not size a buffer on its own.
                    return new VerifyReport(checked, firstIndex, i - 1, quirks, where + ": entry " + i + " record "
                        + h + " has a body length that does not fit its size");
                }
                if (u.magic() != h.magic()) {
                    if (i < crcFrom && h.magic() == EntryType.NOOP.magic() && u.magic() == EntryFormat.ENTRY_MAGIC) {
                        quirks++;
                    } else {
                        return new VerifyReport(checked, firstIndex, i - 1, quirks, where + ": entry " + i
                            + " has magic " + h.magic() + " but its index unit says " + u.magic());
                    }
                }
                byte[] body = new byte[h.bodyLength()];
                b.get(body);
                if (i >= crcFrom) {
                    if (EntryFormat.bodyCrc(body) != h.bodyCrc()) {
                        return new VerifyReport(checked, firstIndex, i - 1, quirks, where + ": body CRC of entry " + i
                            + " is " + h.bodyCrc() + ", the body hashes to " + EntryFormat.bodyCrc(body));
                    }
                    if (!chainKnown && i > crcFrom && bodyHeld(i - 1)) {
                        chain = readHeader(checkedUnit(i - 1).pos()).chainCrc();
                    }
                    if ((chainKnown || i == crcFrom || bodyHeld(i - 1))
                        && EntryFormat.chainCrc(chain, header, h.bodyCrc()) != h.chainCrc()) {
                        return new VerifyReport(checked, firstIndex, i - 1, quirks, where + ": chain CRC of entry " + i
                            + " breaks the chain");
                    }
                    chain = h.chainCrc();
                    chainKnown = true;
                } else if (h.bodyCrc() == 0 && h.chainCrc() == 0) {
                    quirks++;
                }
                types.merge(h.type(), 1L, Long::sum);
                checked++;
            } catch (StoreCorruptedException e) {
                return new VerifyReport(checked, firstIndex, i - 1, quirks, e.getMessage());
            }
        }
        return new VerifyReport(checked, checked == 0 ? -1 : firstIndex, lastIndex, quirks, null, types);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Reads

    private void checkRange(long i) {
        if (i < firstIndex || i > lastIndex) {
            throw new IllegalArgumentException("index " + i + " outside [" + firstIndex + "," + lastIndex + "]");
        }
    }

    /** An entry read back, and the chain CRC of its record (null for an entry served from the recent entries). */
    private record Read(Entry entry, Integer chainCrc) {
    }

    /**
     * Reads and checks entry {@code i}, or takes it from the recent entries (written by this store, so checked
     * already): its record against its index unit and, in our range, its body CRC and its chain CRC (which covers
     * the header fields the body CRC does not: term, channel). {@code previousChain} is the chain CRC of entry
     * {@code i - 1} when the caller has just read it, else null (it is read here then).
     */
    private Read read(long i, Integer previousChain) {
        if (i <= droppedThrough) {
            return new Read(droppedEntry(i), null);
        }
        Entry held = recent.get(i);
        if (held != null) {
            return new Read(held, null);
        }
        EntryFormat.IndexUnit u = readUnit(i);
        if (u.size() < EntryFormat.HEADER_SIZE) {
            throw new StoreCorruptedException(unitLocation(i) + ": index unit " + u + " of entry " + i
                + " gives a record smaller than its header");
        }
        Path file = dataPath(fileStart(u.pos(), config.dataFileSizeBytes()));
        ByteBuffer b = readData(u.pos(), u.size());
        EntryFormat.Header h = EntryFormat.Header.read(b);
        if (h.index() != i || h.size() != u.size() || h.pos() != u.pos() || h.type() == null
            || h.bodyLength() != h.size() - EntryFormat.HEADER_SIZE) {
            throw new StoreCorruptedException(file + " at " + u.pos() + ": record " + h + " does not match index unit "
                + u + " of entry " + i);
        }
        byte[] body = new byte[h.bodyLength()];
        b.get(body);
        if (i >= crcFrom && EntryFormat.bodyCrc(body) != h.bodyCrc()) {
            throw new StoreCorruptedException(file + " at " + u.pos() + ": body CRC of entry " + i + " is "
                + h.bodyCrc() + ", the body hashes to " + EntryFormat.bodyCrc(body));
        }
        // The chain starts at 0 with the first entry of our range; the first entry after a compaction (or after the
        // bodies a witness dropped) chains from an entry that is gone, so its chain is taken as it is.
        if (i >= crcFrom && (i == crcFrom || bodyHeld(i - 1))) {
            int previous = i == crcFrom ? 0 : previousChain != null ? previousChain
                : readHeader(checkedUnit(i - 1).pos()).chainCrc();
            b.rewind();
            if (EntryFormat.chainCrc(previous, b, h.bodyCrc()) != h.chainCrc()) {
                throw new StoreCorruptedException(file + " at " + u.pos() + ": chain CRC of entry " + i
                    + " breaks the chain (its header was changed)");
            }
        }
        try {
            return new Read(EntryFormat.entry(h, body), h.chainCrc());
        } catch (IllegalArgumentException e) {
            throw new StoreCorruptedException(file + " at " + u.pos() + ": " + e.getMessage());
        }
    }

    EntryFormat.IndexUnit readUnit(long i) {
        long at = i * EntryFormat.INDEX_UNIT_SIZE;
        long start = fileStart(at, config.indexFileSizeBytes());
        FileChannel ch = index.get(start);
        if (ch == null) {
            throw new StoreCorruptedException("index file " + indexDir.resolve(EntryFormat.fileName(start))
                + " for entry " + i + " is missing");
        }
        ByteBuffer b = ByteBuffer.allocate(EntryFormat.INDEX_UNIT_SIZE);
        readFully(ch, b, at - start, indexDir, start);
        b.flip();
        return EntryFormat.IndexUnit.read(b);
    }

    /**
     * The index unit of entry {@code i}, checked against the header of the record it points to: the index carries no
     * CRC, so a unit is trusted only where its record agrees with it (a damaged unit must not give the protocol a
     * wrong term, or a truncation a wrong position).
     *
     * @throws StoreCorruptedException naming the index file and the unit's offset in it when they disagree
     */
    private EntryFormat.IndexUnit checkedUnit(long i) {
        EntryFormat.IndexUnit u = readUnit(i);
        EntryFormat.Header h = readHeader(u.pos());
        if (h.type() == null || h.index() != i || h.term() != u.term() || h.pos() != u.pos() || h.size() != u.size()) {
            throw new StoreCorruptedException(unitLocation(i) + ": index unit " + u + " of entry " + i
                + " disagrees with the record at position " + u.pos() + " of "
                + dataPath(fileStart(u.pos(), config.dataFileSizeBytes())) + ": " + h);
        }
        return u;
    }

    /** The index file of entry {@code i} and the offset of its unit in it, for messages. */
    private String unitLocation(long i) {
        long at = i * EntryFormat.INDEX_UNIT_SIZE;
        long start = fileStart(at, config.indexFileSizeBytes());
        return indexDir.resolve(EntryFormat.fileName(start)) + " at " + (at - start);
    }

    private EntryFormat.Header readHeader(long pos) {
        return EntryFormat.Header.read(readData(pos, EntryFormat.HEADER_SIZE));
    }

    private ByteBuffer readData(long pos, int len) {
        long start = fileStart(pos, config.dataFileSizeBytes());
        FileChannel ch = data.get(start);
        Path file = dataPath(start);
        if (ch == null) {
            throw new StoreCorruptedException("data file " + file + " for position " + pos + " is missing");
        }
        if (pos - start + len > config.dataFileSizeBytes() || len < 0) {
            throw new StoreCorruptedException(file + " at " + pos + ": a record of " + len
                + " bytes runs past the end of the file");
        }
        ByteBuffer b = ByteBuffer.allocate(len);
        readFully(ch, b, pos - start, file);
        b.flip();
        return b;
    }

    /** {@link #readFully(FileChannel, ByteBuffer, long, Path)} of the file named {@code start} in {@code folder}. */
    private static void readFully(FileChannel ch, ByteBuffer b, long at, Path folder, long start) {
        try {
            long off = at;
            while (b.hasRemaining()) {
                int n = ch.read(b, off);
                if (n < 0) {
                    // The file name is made only when needed: this runs for every index unit read.
                    throw new StoreCorruptedException(folder.resolve(EntryFormat.fileName(start)) + " ends at " + off
                        + ", before " + (at + b.capacity()));
                }
                off += n;
            }
        } catch (IOException e) {
            throw new StoreIoException("read of " + folder.resolve(EntryFormat.fileName(start)) + " at " + at
                + " failed: " + e.getMessage(), e);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long at, Path file) {
        try {
            long off = at;
            while (b.hasRemaining()) {
                int n = ch.read(b, off);
                if (n < 0) {
                    throw new StoreCorruptedException(file + " ends at " + off + ", before " + (at + b.capacity()));
                }
                off += n;
            }
        } catch (IOException e) {
            throw new StoreIoException("read of " + file + " at " + at + " failed: " + e.getMessage(), e);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Files

    static long fileStart(long offset, long fileSize) {
        return offset - Math.floorMod(offset, fileSize);
    }

    /** Where the data file that starts at {@code start} is, or would be created. */
    private Path dataPath(long start) {
        Path p = dataPaths.get(start);
        if (p != null) {
            return p;
        }
        List<Path> folders = writableFolders.isEmpty() ? readOnlyFolders : writableFolders;
        return folders.get(0).resolve(EntryFormat.fileName(start));
    }

    /**
     * The folder of a new data file, as DLedger picks it: the writable folders that are not full, sorted by name,
     * taken in turn by file number; all writable folders when every one is full.
     */
    private Path folderFor(long start) {
        if (writableFolders.isEmpty()) {
            throw new StoreIoException("store " + dir + " has only read-only data folders " + readOnlyFolders
                + ": it cannot create data file " + EntryFormat.fileName(start), null);
        }
        List<Path> candidates = new ArrayList<>(writableFolders);
        candidates.removeAll(fullFolders);
        if (candidates.isEmpty()) {
            candidates = writableFolders;
        }
        long fileNumber = start / config.dataFileSizeBytes();
        return candidates.get((int) (fileNumber % candidates.size()));
    }

    private FileChannel dataFile(long start, boolean create) throws IOException {
        FileChannel ch = data.get(start);
        if (ch == null && create) {
            Path folder = folderFor(start);
            ch = file(data, folder, start, config.dataFileSizeBytes(), true);
            dataPaths.put(start, folder.resolve(EntryFormat.fileName(start)));
            // A new data file seals the one before: its index units go to disk with the next sync round.
            indexSyncDue = true;
        }
        return ch;
    }

    private FileChannel indexFile(long start, boolean create) throws IOException {
        return file(index, indexDir, start, config.indexFileSizeBytes(), create);
    }

    private FileChannel file(TreeMap<Long, FileChannel> files, Path folder, long start, long size, boolean create)
        throws IOException {
        FileChannel ch = files.get(start);
        if (ch == null && create) {
            Path p = folder.resolve(EntryFormat.fileName(start));
            ch = opener.open(p, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
            if (ch.size() < size) {
                // Files have DLedger's fixed size (sparse until written), so stock DLedger maps them as its own.
                ch.write(ByteBuffer.wrap(new byte[1]), size - 1);
            }
            files.put(start, ch);
            AtomicFiles.syncFolder(folder);
        }
        return ch;
    }

    private void cacheTerm(long i, long term) {
        if (i < cacheBase || i > cacheBase + terms.length * 4L) {
            cacheBase = i;
        }
        int slot = (int) (i - cacheBase);
        if (slot >= terms.length) {
            if (terms.length >= config.termCacheEntries()) {
                dropCacheBelow(i - terms.length / 2);
                slot = (int) (i - cacheBase);
            } else {
                terms = java.util.Arrays.copyOf(terms, Math.min(terms.length * 2, config.termCacheEntries()));
            }
        }
        terms[slot] = term;
    }

    private void dropCacheBelow(long newBase) {
        int shift = (int) Math.min(terms.length, Math.max(0, newBase - cacheBase));
        System.arraycopy(terms, shift, terms, 0, terms.length - shift);
        cacheBase += shift;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Recovery

    private void recover() throws IOException {
        loadDataFiles();
        loadFiles(index, indexDir, config.indexFileSizeBytes(), "index");
        Path compactedFile = dir.resolve(COMPACTED);
        Properties compacted = AtomicFiles.readStoreProperties(compactedFile);
        long compactedNextPos = -1;
        if (compacted != null) {
            long index = AtomicFiles.longProperty(compactedFile, compacted, "index", null);
            long term = AtomicFiles.longProperty(compactedFile, compacted, "term", null);
            String voters = compacted.getProperty("voters", "");
            try {
                snapshot = new SnapshotMeta(index, term,
                    voters.isEmpty() ? Membership.EMPTY : Membership.decode(voters.getBytes(StandardCharsets.UTF_8)));
            } catch (IllegalArgumentException e) {
                throw new StoreCorruptedException(compactedFile + " holds no valid snapshot: " + e.getMessage());
            }
            compactedNextPos = AtomicFiles.longProperty(compactedFile, compacted, "nextPos", -1L);
        }
        long droppedFirst = recoverDropped();
        Path fromFile = dir.resolve(CRC_FROM);
        Properties from = AtomicFiles.readStoreProperties(fromFile);
        if (data.isEmpty()) {
            firstIndex = snapshot.index() + 1;
            lastIndex = snapshot.index();
            writePos = Math.max(0, compactedNextPos);
            cacheBase = firstIndex;
            lastChainCrc = 0;
            crcFrom = from != null ? AtomicFiles.longProperty(fromFile, from, "index", null) : firstIndex;
            if (from == null) {
                writeCrcFrom(crcFrom);
            }
            zeroIndexFrom(firstIndex);
            return;
        }
        long firstFileIndex = firstEntryIndex(data.firstKey());
        firstIndex = snapshot.index() >= 0 ? snapshot.index() + 1 : droppedFirst >= 0 ? droppedFirst : firstFileIndex;
        if (snapshot.index() < 0 && droppedFirst < 0 && firstFileIndex < 0) {
            firstIndex = 0;
        }
        crcFrom = from != null ? AtomicFiles.longProperty(fromFile, from, "index", null) : -1;
        List<Long> starts = new ArrayList<>(data.keySet());
        int scanFrom = Math.max(0, starts.size() - 3);
        long scanStart = starts.get(scanFrom);
        long expected = scanFrom == 0 ? firstFileIndex : firstEntryIndex(scanStart);
        if (expected < 0) {
            // An empty first scanned file: the log ends before it (after the bodies a witness dropped, if any).
            expected = Math.max(firstIndex, droppedThrough + 1);
        }
        int chain = 0;
        long prevTerm = 0;
        // The chain can be checked from the first scanned entry only if its predecessor is readable, or if it is the
        // first entry of our range; otherwise checking starts with the entry after it.
        boolean chainKnown = bodyHeld(expected - 1) || (crcFrom >= 0 && expected <= crcFrom);
        if (bodyHeld(expected - 1)) {
            EntryFormat.IndexUnit prev = checkedUnit(expected - 1);
            EntryFormat.Header ph = readHeader(prev.pos());
            chain = ph.chainCrc();
            prevTerm = ph.term();
        } else if (expected - 1 >= firstIndex) {
            // The entry before the first kept data file had its body dropped on this witness: its unit gives the term.
            prevTerm = droppedUnit(expected - 1).term();
        }
        long lastStart = starts.get(starts.size() - 1);
        long pos = scanStart;
        cacheBase = expected;
        boolean crcFromUnknown = crcFrom < 0;
        long rebuiltUnits = 0;
        ReadWindow dataWindow = new ReadWindow();
        ReadWindow indexWindow = new ReadWindow();
        while (true) {
            long fStart = fileStart(pos, config.dataFileSizeBytes());
            FileChannel ch = data.get(fStart);
            Path file = dataPath(fStart);
            if (ch == null) {
                break;
            }
            long room = fStart + config.dataFileSizeBytes() - pos;
            String problem = null;
            EntryFormat.Header h = null;
            if (room < EntryFormat.MIN_BLANK) {
                pos = fStart + config.dataFileSizeBytes();
                continue;
            }
            ByteBuffer head = ByteBuffer.allocate((int) Math.min(room, EntryFormat.HEADER_SIZE));
            dataWindow.read(ch, head, pos - fStart, file);
            head.flip();
            int magic = head.getInt(0);
            if (magic == 0 && head.getInt(4) == 0) {
                if (readOnlyData.contains(fStart) && fStart != lastStart) {
                    // A read-only file that was the newest when written to last: the log went on in the next file.
                    pos = fStart + config.dataFileSizeBytes();
                    continue;
                }
                Long later = firstFileWithRecordsAfter(fStart);
                if (later != null) {
                    // The end of the log, yet a later file holds records: a hole, not a torn tail (taking it for one
                    // would drop the entries after it, and the next appends would overwrite them).
                    throw new StoreCorruptedException(file + " at " + (pos - fStart) + " (position " + pos + "): the "
                        + "log ends here, but the later data file " + dataPath(later) + " holds records; it is not the "
                        + "tail of the log, so the store will not open");
                }
                break;
            }
            if (magic == EntryFormat.BLANK_MAGIC) {
                if (head.getInt(4) != room) {
                    problem = "BLANK record of " + head.getInt(4) + " bytes where " + room + " remain";
                } else {
                    pos = fStart + config.dataFileSizeBytes();
                    continue;
                }
            } else if (head.remaining() < EntryFormat.HEADER_SIZE) {
                problem = "a record header does not fit in the " + room + " bytes left";
            } else {
                h = EntryFormat.Header.read(head);
                problem = checkRecord(h, pos, room, expected, prevTerm);
            }
            byte[] body = null;
            if (problem == null) {
                ByteBuffer bb = ByteBuffer.allocate(h.bodyLength());
                dataWindow.read(ch, bb, pos - fStart + EntryFormat.HEADER_SIZE, file);
                body = bb.array();
                if (crcFromUnknown && h.bodyCrc() != 0 && h.bodyCrc() == EntryFormat.bodyCrc(body)) {
                    crcFrom = h.index();
                    crcFromUnknown = false;
                }
                if (!crcFromUnknown && h.index() >= crcFrom) {
                    ByteBuffer hb = ByteBuffer.allocate(EntryFormat.HEADER_SIZE);
                    dataWindow.read(ch, hb, pos - fStart, file);
                    hb.flip();
                    if (EntryFormat.bodyCrc(body) != h.bodyCrc()) {
                        problem = "body CRC of entry " + h.index() + " is " + h.bodyCrc() + ", the body hashes to "
                            + EntryFormat.bodyCrc(body);
                    } else if ((chainKnown || h.index() == crcFrom)
                        && EntryFormat.chainCrc(h.index() == crcFrom ? 0 : chain, hb, h.bodyCrc()) != h.chainCrc()) {
                        // The first entry of our range chains from 0, never from the stock entry before it.
                        problem = "chain CRC of entry " + h.index() + " breaks the chain";
                    }
                }
            }
            if (problem != null) {
                if (fStart != lastStart) {
                    throw new StoreCorruptedException(file + " at " + (pos - fStart) + " (position " + pos + "): "
                        + problem + "; it is not the tail of the log, so the store will not open");
                }
                if (readOnlyData.contains(fStart)) {
                    throw new StoreCorruptedException(file + " at " + (pos - fStart) + " (position " + pos + "): "
                        + problem + "; the file is in a read-only folder, so the torn tail cannot be cut off");
                }
                // A torn write at the end of the last file: cut it off.
                zeroRange(data, config.dataFileSizeBytes(), pos, fStart + config.dataFileSizeBytes());
                break;
            }
            if (h.index() >= firstIndex) {
                // Units below the first index belong to a compacted prefix kept on disk (a read-only file).
                if (checkOrRepairUnit(h, fStart == lastStart, file, crcFromUnknown || h.index() < crcFrom,
                    indexWindow)) {
                    rebuiltUnits++;
                }
                cacheTerm(h.index(), h.term());
            }
            chainKnown = true;
            chain = h.chainCrc();
            prevTerm = h.term();
            expected = h.index() + 1;
            pos += h.size();
        }
        writePos = pos;
        lastIndex = expected - 1;
        lastChainCrc = chain;
        if (lastIndex < firstIndex - 1) {
            lastIndex = firstIndex - 1;
        }
        if (compactedNextPos > writePos) {
            writePos = compactedNextPos;
        }
        if (lastIndex < firstIndex && compactedNextPos > lastStart) {
            // A compaction to an empty log, or a move of its start (moveStartTo), that a crash interrupted after its
            // record: the log goes on beyond every data file, and none holds an entry after the snapshot. The files
            // go, as the step would have done (left, the next data file would open a gap between them).
            LOG.info("store {}: removing data files {}..{}, which hold nothing after snapshot {}: the log goes on at {}",
                dir, EntryFormat.fileName(data.firstKey()), EntryFormat.fileName(lastStart), snapshot.index(),
                compactedNextPos);
            dropFilesBelow(data, null, compactedNextPos, config.dataFileSizeBytes());
        }
        if (crcFromUnknown) {
            crcFrom = lastIndex + 1;
        }
        if (lastIndex + 1 <= crcFrom) {
            // The next entry starts our CRC range, whose chain starts at 0: an entry before it is stock (its chain
            // field unchecked, possibly damaged) and never a chain predecessor.
            lastChainCrc = 0;
        }
        if (from == null) {
            writeCrcFrom(crcFrom);
        }
        zeroIndexFrom(lastIndex + 1);
        sync();
        if (rebuiltUnits > 0) {
            LOG.info("store {}: rebuilt {} index units of the newest entries from the data", dir, rebuiltUnits);
        }
    }

    private String checkRecord(EntryFormat.Header h, long pos, long room, long expected, long prevTerm) {
        if (h.type() == null) {
            return "bad magic " + h.magic();
        }
        if (h.size() != EntryFormat.HEADER_SIZE + h.bodyLength() || h.bodyLength() < 0) {
            return "size " + h.size() + " does not match body length " + h.bodyLength();
        }
        if (h.size() + EntryFormat.MIN_BLANK > room) {
            return "a record of " + h.size() + " bytes where " + room + " remain";
        }
        if (!indexInRange(h.index())) {
            return "index " + h.index() + " is out of range";
        }
        if (h.index() != expected) {
            return "index " + h.index() + " where " + expected + " was expected";
        }
        if (h.term() < prevTerm || h.term() < 0) {
            return "term " + h.term() + " after term " + prevTerm;
        }
        if (h.pos() != pos) {
            return "pos field " + h.pos() + " at position " + pos;
        }
        return null;
    }

    /**
     * The index unit of a recovered entry must match it. A missing or zero unit (the index is not fsynced with every
     * round) is rebuilt from the entry, and so is any unit in the last data file (a torn write).
     *
     * @return whether the unit was rewritten
     */
    private boolean checkOrRepairUnit(EntryFormat.Header h, boolean inLastFile, Path dataFile, boolean stockRange,
                                      ReadWindow window) throws IOException {
        long at = h.index() * EntryFormat.INDEX_UNIT_SIZE;
        long start = fileStart(at, config.indexFileSizeBytes());
        FileChannel ch = index.get(start);
        EntryFormat.IndexUnit u = null;
        if (ch != null) {
            ByteBuffer b = ByteBuffer.allocate(EntryFormat.INDEX_UNIT_SIZE);
            window.read(ch, b, at - start, indexDir, start);
            b.flip();
            u = EntryFormat.IndexUnit.read(b);
        }
        // Stock DLedger writes magic 1 into the index unit of a NOOP entry; tolerated in its range only.
        boolean stockNoop = stockRange && h.magic() == EntryType.NOOP.magic() && u != null
            && u.magic() == EntryFormat.ENTRY_MAGIC;
        boolean matches = u != null && (u.magic() == h.magic() || stockNoop) && u.pos() == h.pos()
            && u.size() == h.size() && u.index() == h.index() && u.term() == h.term();
        if (matches) {
            return false;
        }
        boolean lost = u == null || (u.magic() == 0 && u.pos() == 0 && u.size() == 0 && u.index() == 0
            && u.term() == 0);
        if (!inLastFile && !lost) {
            throw new StoreCorruptedException(indexDir.resolve(EntryFormat.fileName(start)) + " at " + (at - start)
                + ": index unit " + u + " disagrees with entry " + h.index() + " at position " + h.pos() + " of "
                + dataFile);
        }
        ByteBuffer unit = ByteBuffer.allocate(EntryFormat.INDEX_UNIT_SIZE);
        EntryFormat.encodeIndex(h.magic(), h.pos(), h.size(), h.index(), h.term(), unit);
        unit.flip();
        writeIndex(h.index(), unit);
        window.invalidate();
        return true;
    }

    /** Bytes recovery reads at once from a data or index file. */
    private static final int RECOVERY_WINDOW_BYTES = 4 << 20;

    /**
     * Recovery's reads of a file through one buffer: a read of {@value #RECOVERY_WINDOW_BYTES} bytes serves the
     * headers, bodies and index units that follow, where reading each of them took its own system call (four per
     * entry; on 1 KiB entries that cost more than the bytes). Only recovery uses it, on the writer's thread.
     */
    private static final class ReadWindow {
        private final ByteBuffer buf = ByteBuffer.allocate(RECOVERY_WINDOW_BYTES);
        private FileChannel ch;
        private long start = -1;
        private int length;

        /** Fills {@code dst} from {@code ch} at {@code at}, as {@code readFully} does. */
        void read(FileChannel from, ByteBuffer dst, long at, Path file) {
            read(from, dst, at, file, null, 0);
        }

        /** The same for the index file named {@code fileStart} in {@code folder} (its name made only on an error). */
        void read(FileChannel from, ByteBuffer dst, long at, Path folder, long fileStart) {
            read(from, dst, at, null, folder, fileStart);
        }

        private void read(FileChannel from, ByteBuffer dst, long at, Path file, Path folder, long fileStart) {
            int n = dst.remaining();
            if (n > buf.capacity()) {
                if (file != null) {
                    readFully(from, dst, at, file);
                } else {
                    readFully(from, dst, at, folder, fileStart);
                }
                return;
            }
            if (from != ch || at < start || at + n > start + length) {
                buf.clear();
                long off = at;
                try {
                    while (buf.hasRemaining()) {
                        int r = from.read(buf, off);
                        if (r < 0) {
                            break;
                        }
                        off += r;
                    }
                } catch (IOException e) {
                    Path f = file != null ? file : folder.resolve(EntryFormat.fileName(fileStart));
                    throw new StoreIoException("read of " + f + " at " + at + " failed: " + e.getMessage(), e);
                }
                ch = from;
                start = at;
                length = buf.position();
                if (length < n) {
                    Path f = file != null ? file : folder.resolve(EntryFormat.fileName(fileStart));
                    ch = null;
                    throw new StoreCorruptedException(f + " ends at " + (at + length) + ", before " + (at + n));
                }
            }
            dst.put(buf.array(), (int) (at - start), n);
        }

        /** Forgets what was read (the file was written). */
        void invalidate() {
            ch = null;
        }
    }

    private void zeroIndexFrom(long i) throws IOException {
        if (index.isEmpty()) {
            return;
        }
        long from = i * EntryFormat.INDEX_UNIT_SIZE;
        long end = index.lastKey() + config.indexFileSizeBytes();
        // Only the file holding the new end needs zeroing up to the old units; later files are dropped.
        long start = fileStart(from, config.indexFileSizeBytes());
        FileChannel ch = index.get(start);
        if (ch != null) {
            ByteBuffer b = ByteBuffer.allocate(EntryFormat.INDEX_UNIT_SIZE);
            long off = from - start;
            while (off < config.indexFileSizeBytes()) {
                b.clear();
                readFully(ch, b, off, indexDir.resolve(EntryFormat.fileName(start)));
                if (b.getInt(0) == 0 && b.getLong(4) == 0 && b.getInt(12) == 0) {
                    break;
                }
                off += EntryFormat.INDEX_UNIT_SIZE;
            }
            zeroRange(index, config.indexFileSizeBytes(), from, start + off);
        }
        if (end > start + config.indexFileSizeBytes()) {
            dropFilesFrom(index, indexDir, start + config.indexFileSizeBytes());
        }
    }

    /**
     * The first data file after {@code fileStart} that does not begin with the end-of-log mark (zeros), or null. Files
     * past the end of the log are empty: created, then a crash before their first record.
     */
    private Long firstFileWithRecordsAfter(long fileStart) {
        for (Map.Entry<Long, FileChannel> f : data.tailMap(fileStart, false).entrySet()) {
            ByteBuffer head = ByteBuffer.allocate(8);
            readFully(f.getValue(), head, 0, dataPath(f.getKey()));
            if (head.getInt(0) != 0 || head.getInt(4) != 0) {
                return f.getKey();
            }
        }
        return null;
    }

    /** The index of the entry at the start of the data file at {@code fileStart}, or -1 when none is there. */
    long firstEntryIndex(long fileStart) {
        FileChannel ch = data.get(fileStart);
        ByteBuffer head = ByteBuffer.allocate(EntryFormat.HEADER_SIZE);
        readFully(ch, head, 0, dataPath(fileStart));
        head.flip();
        EntryFormat.Header h = EntryFormat.Header.read(head);
        return h.type() == null || !indexInRange(h.index()) ? -1 : h.index();
    }

    /**
     * Whether an entry index read from a file can be a real one: not negative, and small enough that its index unit's
     * position ({@code (index + 1) * 32}) does not overflow a long. A header with a larger index is damaged.
     */
    static boolean indexInRange(long index) {
        return index >= 0 && index < Long.MAX_VALUE / EntryFormat.INDEX_UNIT_SIZE - 1;
    }

    private void writeCrcFrom(long i) throws IOException {
        Properties p = new Properties();
        p.setProperty("index", Long.toString(i));
        AtomicFiles.writeProperties(dir.resolve(CRC_FROM), p);
    }

    /** Opens the data files of every data folder, writable and read-only. */
    private void loadDataFiles() throws IOException {
        TreeMap<Long, Path> found = new TreeMap<>();
        List<Path> folders = new ArrayList<>(writableFolders);
        folders.addAll(readOnlyFolders);
        for (Path folder : folders) {
            boolean readOnly = readOnlyFolders.contains(folder);
            for (Path p : listFiles(folder, "data")) {
                long start = Long.parseLong(p.getFileName().toString());
                Path other = found.put(start, p);
                if (other != null) {
                    throw new StoreCorruptedException("data file " + EntryFormat.fileName(start) + " is both in "
                        + other.getParent() + " and in " + folder);
                }
                if (readOnly) {
                    readOnlyData.add(start);
                }
            }
        }
        dataPaths.putAll(found);
        openFiles(data, new ArrayList<>(found.values()), config.dataFileSizeBytes(), "data");
    }

    private void loadFiles(TreeMap<Long, FileChannel> files, Path folder, long size, String what)
        throws IOException {
        openFiles(files, listFiles(folder, what), size, what);
    }

    private static List<Path> listFiles(Path folder, String what) throws IOException {
        List<Path> paths;
        try (Stream<Path> list = Files.list(folder)) {
            paths = list.sorted().toList();
        }
        for (Path p : paths) {
            if (!p.getFileName().toString().matches("\\d{20}")) {
                throw new StoreCorruptedException("unexpected file " + p + " in the " + what + " folder");
            }
        }
        return paths;
    }

    /** Opens {@code paths}, sorted by name; a file in a read-only folder is opened for reading only. */
    private void openFiles(TreeMap<Long, FileChannel> files, List<Path> paths, long size, String what)
        throws IOException {
        for (Path p : paths) {
            long start = Long.parseLong(p.getFileName().toString());
            if (start % size != 0) {
                throw new StoreCorruptedException(what + " file " + p + " starts at " + start
                    + ", not a multiple of the file size " + size + " (is the configured file size right?)");
            }
            boolean readOnly = files == data && readOnlyData.contains(start);
            FileChannel ch = readOnly ? opener.open(p, StandardOpenOption.READ)
                : opener.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE);
            boolean newest = p.equals(paths.get(paths.size() - 1));
            if (newest && !readOnly && ch.size() < size) {
                // A crash between creating the newest file and giving it its size: it holds nothing durable
                // (its data is written, then synced, only after it has its size). Give it its size.
                ch.write(ByteBuffer.wrap(new byte[1]), size - 1);
                ch.force(true);
            }
            if (ch.size() != size) {
                ch.close();
                throw new StoreCorruptedException(what + " file " + p + " is " + Files.size(p) + " bytes, expected "
                    + size);
            }
            files.put(start, ch);
        }
        Long prev = null;
        for (long start : files.keySet()) {
            if (prev != null && prev + size != start) {
                throw new StoreCorruptedException(what + " files missing in " + (files == data ? "the data folders "
                    + dataFolderNames() : indexDir) + " between " + EntryFormat.fileName(prev) + " and "
                    + EntryFormat.fileName(start));
            }
            prev = start;
        }
    }

    private String dataFolderNames() {
        List<Path> all = new ArrayList<>(writableFolders);
        all.addAll(readOnlyFolders);
        return all.toString();
    }
}
