package dev.dledger.raft.store;

import dev.dledger.raft.core.Entry;
import dev.dledger.raft.core.EntryType;
import dev.dledger.raft.core.LogView;
import dev.dledger.raft.core.Membership;
import dev.dledger.raft.core.SnapshotMeta;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The log on disk in DLedger 0.3.x's layout (see {@link EntryFormat}): {@code <dir>/data/} holds data files of a
 * fixed size named by their 20-digit start position, {@code <dir>/index/} holds index files of 32-byte units. A
 * store written by stock DLedger opens in place; ours computes the body and chain CRCs of every entry it writes and
 * records in {@code <dir>/crc-from} the first index it wrote, so a zero CRC at or after it is corruption.
 *
 * <p>Writes use positional {@link FileChannel} writes; {@link #sync()} makes them durable. Reads check the body CRC
 * of every entry of our range. Recovery scans the last three data files: a torn record at the end of the last file is
 * cut off (and the index follows the data); a bad record before that, a broken chain, an index unit that disagrees
 * with the data, or a missing file fails with {@link StoreCorruptedException} naming the file and position.
 *
 * <p>Not thread-safe: one writer (the node's driver thread) calls every method.
 */
public final class SegmentedLogStore implements LogView, AutoCloseable {

    private static final String CRC_FROM = "crc-from";
    private static final String COMPACTED = "compacted";

    private final Path dir;
    private final Path dataDir;
    private final Path indexDir;
    private final StoreConfig config;
    private final FileOpener opener;
    private final TreeMap<Long, FileChannel> data = new TreeMap<>();
    private final TreeMap<Long, FileChannel> index = new TreeMap<>();
    private final Set<FileChannel> dirty = new HashSet<>();
    private long writePos;
    private long firstIndex;
    private long lastIndex;
    private int lastChainCrc;
    private long crcFrom;
    private SnapshotMeta snapshot = SnapshotMeta.NONE;
    private volatile boolean failed;
    /** Terms of the tail of the log, {@code [cacheBase, lastIndex]}, so the core's term lookups do not touch disk. */
    private long[] terms = new long[1024];
    private long cacheBase;

    private SegmentedLogStore(Path dir, StoreConfig config, FileOpener opener) {
        this.dir = dir;
        this.opener = opener;
        this.dataDir = dir.resolve("data");
        this.indexDir = dir.resolve("index");
        this.config = config;
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
            Files.createDirectories(s.dataDir);
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
            return i == -1 ? 0 : snapshot.index() == i ? snapshot.term() : readUnit(i).term();
        }
        if (i < firstIndex || i > lastIndex) {
            return -1;
        }
        if (i >= cacheBase) {
            return terms[(int) (i - cacheBase)];
        }
        return readUnit(i).term();
    }

    @Override
    public List<Entry> entries(long lo, long hi, long maxBytes) {
        if (lo < firstIndex || hi > lastIndex + 1 || lo > hi) {
            throw new IllegalArgumentException("range [" + lo + "," + hi + ") outside [" + firstIndex + ","
                + (lastIndex + 1) + ")");
        }
        List<Entry> out = new ArrayList<>();
        long bytes = 0;
        for (long i = lo; i < hi; i++) {
            Entry e = read(i);
            if (!out.isEmpty() && bytes + e.sizeBytes() > maxBytes) {
                break;
            }
            out.add(e);
            bytes += e.sizeBytes();
        }
        return out;
    }

    @Override
    public SnapshotMeta snapshot() {
        return snapshot;
    }

    /** The data-file position of entry {@code i} (DLedger's {@code pos}). */
    public long position(long i) {
        checkRange(i);
        return readUnit(i).pos();
    }

    /** The first index written by this store's code: entries from here on carry CRCs. */
    public long crcFrom() {
        return crcFrom;
    }

    /** The position the next entry would be written at (at most, a BLANK may move it to the next file). */
    public long writePosition() {
        return writePos;
    }

    /** The store's folder. */
    public Path dir() {
        return dir;
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
                if ((long) size + EntryFormat.MIN_BLANK > config.dataFileSizeBytes()) {
                    throw new IllegalArgumentException("entry " + e.index() + " of " + e.data().length
                        + " bytes does not fit in a data file of " + config.dataFileSizeBytes() + " bytes");
                }
                total += size;
            }
            ByteBuffer buf = ByteBuffer.allocate(Math.min(total + EntryFormat.MIN_BLANK * 2, config.dataFileSizeBytes()));
            long bufStart = writePos;
            ByteBuffer units = ByteBuffer.allocate(entries.size() * EntryFormat.INDEX_UNIT_SIZE);
            int chain = lastChainCrc;
            for (int n = 0; n < entries.size(); n++) {
                Entry e = entries.get(n);
                int size = EntryFormat.recordSize(e);
                long fileStart = fileStart(writePos, config.dataFileSizeBytes());
                long room = fileStart + config.dataFileSizeBytes() - writePos;
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
                        buf = ByteBuffer.allocate(size);
                    }
                }
                chain = EntryFormat.encode(e, writePos, chain, buf);
                positions[n] = writePos;
                EntryFormat.encodeIndex(e.type().magic(), writePos, size, e.index(), e.term(), units);
                writePos += size;
            }
            flushBuffer(buf, bufStart);
            units.flip();
            writeIndex(entries.get(0).index(), units);
            lastChainCrc = chain;
            for (Entry e : entries) {
                cacheTerm(e.index(), e.term());
            }
            lastIndex = entries.get(entries.size() - 1).index();
            return positions;
        } catch (IOException e) {
            failed = true;
            throw new StoreIoException("append at index " + entries.get(0).index() + " in " + dir + " failed: "
                + e.getMessage(), e);
        }
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
            dirty.add(ch);
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
        try {
            long pos = readUnit(from).pos();
            long end = writePos;
            zeroRange(data, config.dataFileSizeBytes(), pos, end);
            zeroRange(index, config.indexFileSizeBytes(), from * EntryFormat.INDEX_UNIT_SIZE,
                (lastIndex + 1) * EntryFormat.INDEX_UNIT_SIZE);
            dropFilesFrom(data, dataDir, fileStart(pos, config.dataFileSizeBytes()) + config.dataFileSizeBytes());
            dropFilesFrom(index, indexDir, fileStart(from * EntryFormat.INDEX_UNIT_SIZE, config.indexFileSizeBytes())
                + config.indexFileSizeBytes());
            writePos = pos;
            lastIndex = from - 1;
            // Past a compaction the chain restarts from 0, as for the first entry of our range.
            lastChainCrc = lastIndex >= firstIndex ? readHeader(readUnit(lastIndex).pos()).chainCrc() : 0;
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
                dirty.add(ch);
            }
            at = stop;
        }
    }

    private void dropFilesFrom(TreeMap<Long, FileChannel> files, Path folder, long fromStart) throws IOException {
        for (Map.Entry<Long, FileChannel> f : new ArrayList<>(files.tailMap(fromStart, true).entrySet())) {
            f.getValue().close();
            dirty.remove(f.getValue());
            files.remove(f.getKey());
            Files.deleteIfExists(folder.resolve(EntryFormat.fileName(f.getKey())));
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
                keepFromPos = readUnit(meta.index() + 1).pos();
            }
            writeCompacted(meta, meta.index() >= lastIndex ? keepFromPos : -1);
            dropFilesBelow(data, dataDir, keepFromPos, config.dataFileSizeBytes());
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
            if (cacheBase < firstIndex) {
                dropCacheBelow(firstIndex);
            }
        } catch (IOException e) {
            failed = true;
            throw new StoreIoException("compaction to " + meta.index() + " in " + dir + " failed: " + e.getMessage(),
                e);
        }
    }

    private void dropFilesBelow(TreeMap<Long, FileChannel> files, Path folder, long keepFrom, long fileSize)
        throws IOException {
        for (Map.Entry<Long, FileChannel> f : new ArrayList<>(files.headMap(keepFrom, true).entrySet())) {
            if (f.getKey() + fileSize <= keepFrom) {
                f.getValue().close();
                dirty.remove(f.getValue());
                files.remove(f.getKey());
                Files.deleteIfExists(folder.resolve(EntryFormat.fileName(f.getKey())));
            }
        }
    }

    private void writeCompacted(SnapshotMeta meta, long nextPos) throws IOException {
        Properties p = new Properties();
        p.setProperty("index", Long.toString(meta.index()));
        p.setProperty("term", Long.toString(meta.term()));
        p.setProperty("voters", String.join(",", meta.membership().voters()));
        p.setProperty("nextPos", Long.toString(nextPos));
        AtomicFiles.writeProperties(dir.resolve(COMPACTED), p);
    }

    /** Makes every write so far durable. */
    public void sync() {
        prepareSync().run();
    }

    /**
     * Takes the files written since the last sync and returns the fsync of them, to run later, possibly on another
     * thread while this store goes on taking writes: it makes durable at least everything written before this call.
     * A file deleted meanwhile (truncation, compaction) needs no fsync.
     */
    public Runnable prepareSync() {
        List<FileChannel> files = new ArrayList<>(dirty);
        dirty.clear();
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
     */
    public record VerifyReport(long entries, long first, long last, long stockQuirks, String problem) {
    }

    /** One entry as {@code log dump} prints it. */
    public record EntryInfo(long index, long term, long pos, int size, int bodyCrc, EntryType type) {
    }

    /** Reads the header of entry {@code i} without its body. */
    public EntryInfo info(long i) {
        checkRange(i);
        EntryFormat.IndexUnit u = readUnit(i);
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
        for (long i = firstIndex; i <= lastIndex; i++) {
            try {
                EntryFormat.IndexUnit u = readUnit(i);
                Path file = dataDir.resolve(EntryFormat.fileName(fileStart(u.pos(), config.dataFileSizeBytes())));
                ByteBuffer b = readData(u.pos(), Math.max(u.size(), EntryFormat.HEADER_SIZE));
                ByteBuffer header = b.duplicate();
                EntryFormat.Header h = EntryFormat.Header.read(b);
                String where = file + " at " + (u.pos() - fileStart(u.pos(), config.dataFileSizeBytes()));
                if (h.type() == null || h.index() != i || h.size() != u.size() || h.pos() != u.pos()
                    || h.term() != u.term()) {
                    return new VerifyReport(checked, firstIndex, i - 1, quirks, where + ": entry " + i + " record "
                        + h + " disagrees with its index unit " + u);
                }
                if (u.magic() != h.magic()) {
                    if (i < crcFrom && h.type() == EntryType.NOOP && u.magic() == EntryType.NORMAL.magic()) {
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
                    if (!chainKnown && i > crcFrom && i - 1 >= firstIndex) {
                        chain = readHeader(readUnit(i - 1).pos()).chainCrc();
                    }
                    if ((chainKnown || i == crcFrom || i - 1 >= firstIndex)
                        && EntryFormat.chainCrc(chain, header, h.bodyCrc()) != h.chainCrc()) {
                        return new VerifyReport(checked, firstIndex, i - 1, quirks, where + ": chain CRC of entry " + i
                            + " breaks the chain");
                    }
                    chain = h.chainCrc();
                    chainKnown = true;
                } else if (h.bodyCrc() == 0 && h.chainCrc() == 0) {
                    quirks++;
                }
                checked++;
            } catch (StoreCorruptedException e) {
                return new VerifyReport(checked, firstIndex, i - 1, quirks, e.getMessage());
            }
        }
        return new VerifyReport(checked, checked == 0 ? -1 : firstIndex, lastIndex, quirks, null);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Reads

    private void checkRange(long i) {
        if (i < firstIndex || i > lastIndex) {
            throw new IllegalArgumentException("index " + i + " outside [" + firstIndex + "," + lastIndex + "]");
        }
    }

    /** Reads and checks entry {@code i}. */
    private Entry read(long i) {
        EntryFormat.IndexUnit u = readUnit(i);
        Path file = dataDir.resolve(EntryFormat.fileName(fileStart(u.pos(), config.dataFileSizeBytes())));
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
        try {
            return EntryFormat.entry(h, body);
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
        readFully(ch, b, at - start, indexDir.resolve(EntryFormat.fileName(start)));
        b.flip();
        return EntryFormat.IndexUnit.read(b);
    }

    private EntryFormat.Header readHeader(long pos) {
        return EntryFormat.Header.read(readData(pos, EntryFormat.HEADER_SIZE));
    }

    private ByteBuffer readData(long pos, int len) {
        long start = fileStart(pos, config.dataFileSizeBytes());
        FileChannel ch = data.get(start);
        Path file = dataDir.resolve(EntryFormat.fileName(start));
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

    private FileChannel dataFile(long start, boolean create) throws IOException {
        return file(data, dataDir, start, config.dataFileSizeBytes(), create);
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
        loadFiles(data, dataDir, config.dataFileSizeBytes(), "data");
        loadFiles(index, indexDir, config.indexFileSizeBytes(), "index");
        Properties compacted = AtomicFiles.readProperties(dir.resolve(COMPACTED));
        long compactedNextPos = -1;
        if (compacted != null) {
            String voters = compacted.getProperty("voters", "");
            snapshot = new SnapshotMeta(Long.parseLong(compacted.getProperty("index")),
                Long.parseLong(compacted.getProperty("term")),
                voters.isEmpty() ? Membership.EMPTY : Membership.decode(voters.getBytes()));
            compactedNextPos = Long.parseLong(compacted.getProperty("nextPos", "-1"));
        }
        Properties from = AtomicFiles.readProperties(dir.resolve(CRC_FROM));
        if (data.isEmpty()) {
            firstIndex = snapshot.index() + 1;
            lastIndex = snapshot.index();
            writePos = Math.max(0, compactedNextPos);
            cacheBase = firstIndex;
            lastChainCrc = 0;
            crcFrom = from != null ? Long.parseLong(from.getProperty("index")) : firstIndex;
            if (from == null) {
                writeCrcFrom(crcFrom);
            }
            zeroIndexFrom(firstIndex);
            return;
        }
        long firstFileIndex = firstEntryIndex(data.firstKey());
        firstIndex = snapshot.index() >= 0 ? snapshot.index() + 1 : firstFileIndex;
        if (snapshot.index() < 0 && firstFileIndex < 0) {
            firstIndex = 0;
        }
        crcFrom = from != null ? Long.parseLong(from.getProperty("index")) : -1;
        List<Long> starts = new ArrayList<>(data.keySet());
        int scanFrom = Math.max(0, starts.size() - 3);
        long scanStart = starts.get(scanFrom);
        long expected = scanFrom == 0 ? firstFileIndex : firstEntryIndex(scanStart);
        if (expected < 0) {
            expected = firstIndex;
        }
        int chain = 0;
        long prevTerm = 0;
        // The chain can be checked from the first scanned entry only if its predecessor is readable, or if it is the
        // first entry of our range; otherwise checking starts with the entry after it.
        boolean chainKnown = expected - 1 >= firstIndex || (crcFrom >= 0 && expected <= crcFrom);
        if (expected - 1 >= firstIndex) {
            EntryFormat.IndexUnit prev = readUnit(expected - 1);
            EntryFormat.Header ph = readHeader(prev.pos());
            chain = ph.chainCrc();
            prevTerm = ph.term();
        }
        long lastStart = starts.get(starts.size() - 1);
        long pos = scanStart;
        cacheBase = expected;
        boolean crcFromUnknown = crcFrom < 0;
        while (true) {
            long fStart = fileStart(pos, config.dataFileSizeBytes());
            FileChannel ch = data.get(fStart);
            Path file = dataDir.resolve(EntryFormat.fileName(fStart));
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
            readFully(ch, head, pos - fStart, file);
            head.flip();
            int magic = head.getInt(0);
            if (magic == 0 && head.getInt(4) == 0) {
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
                readFully(ch, bb, pos - fStart + EntryFormat.HEADER_SIZE, file);
                body = bb.array();
                if (crcFromUnknown && h.bodyCrc() != 0 && h.bodyCrc() == EntryFormat.bodyCrc(body)) {
                    crcFrom = h.index();
                    crcFromUnknown = false;
                }
                if (!crcFromUnknown && h.index() >= crcFrom) {
                    ByteBuffer hb = ByteBuffer.allocate(EntryFormat.HEADER_SIZE);
                    readFully(ch, hb, pos - fStart, file);
                    hb.flip();
                    if (EntryFormat.bodyCrc(body) != h.bodyCrc()) {
                        problem = "body CRC of entry " + h.index() + " is " + h.bodyCrc() + ", the body hashes to "
                            + EntryFormat.bodyCrc(body);
                    } else if (chainKnown && EntryFormat.chainCrc(chain, hb, h.bodyCrc()) != h.chainCrc()) {
                        problem = "chain CRC of entry " + h.index() + " breaks the chain";
                    }
                }
            }
            if (problem != null) {
                if (fStart != lastStart) {
                    throw new StoreCorruptedException(file + " at " + (pos - fStart) + " (position " + pos + "): "
                        + problem + "; it is not the tail of the log, so the store will not open");
                }
                // A torn write at the end of the last file: cut it off.
                zeroRange(data, config.dataFileSizeBytes(), pos, fStart + config.dataFileSizeBytes());
                break;
            }
            checkOrRepairUnit(h, fStart == lastStart, file, crcFromUnknown || h.index() < crcFrom);
            chainKnown = true;
            chain = h.chainCrc();
            prevTerm = h.term();
            cacheTerm(h.index(), h.term());
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
        if (crcFromUnknown) {
            crcFrom = lastIndex + 1;
        }
        if (from == null) {
            writeCrcFrom(crcFrom);
        }
        zeroIndexFrom(lastIndex + 1);
        sync();
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

    /** The index unit of a recovered entry must match it; in the last data file a missing or torn unit is rewritten. */
    private void checkOrRepairUnit(EntryFormat.Header h, boolean inLastFile, Path dataFile, boolean stockRange)
        throws IOException {
        long at = h.index() * EntryFormat.INDEX_UNIT_SIZE;
        long start = fileStart(at, config.indexFileSizeBytes());
        FileChannel ch = index.get(start);
        EntryFormat.IndexUnit u = null;
        if (ch != null) {
            ByteBuffer b = ByteBuffer.allocate(EntryFormat.INDEX_UNIT_SIZE);
            readFully(ch, b, at - start, indexDir.resolve(EntryFormat.fileName(start)));
            b.flip();
            u = EntryFormat.IndexUnit.read(b);
        }
        // Stock DLedger writes magic 1 into the index unit of a NOOP entry; tolerated in its range only.
        boolean stockNoop = stockRange && h.magic() == EntryType.NOOP.magic() && u != null
            && u.magic() == EntryType.NORMAL.magic();
        boolean matches = u != null && (u.magic() == h.magic() || stockNoop) && u.pos() == h.pos()
            && u.size() == h.size() && u.index() == h.index() && u.term() == h.term();
        if (matches) {
            return;
        }
        if (!inLastFile) {
            throw new StoreCorruptedException(indexDir.resolve(EntryFormat.fileName(start)) + " at " + (at - start)
                + ": index unit " + u + " disagrees with entry " + h.index() + " at position " + h.pos() + " of "
                + dataFile);
        }
        ByteBuffer unit = ByteBuffer.allocate(EntryFormat.INDEX_UNIT_SIZE);
        EntryFormat.encodeIndex(h.magic(), h.pos(), h.size(), h.index(), h.term(), unit);
        unit.flip();
        writeIndex(h.index(), unit);
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

    private long firstEntryIndex(long fileStart) throws IOException {
        FileChannel ch = data.get(fileStart);
        ByteBuffer head = ByteBuffer.allocate(EntryFormat.HEADER_SIZE);
        readFully(ch, head, 0, dataDir.resolve(EntryFormat.fileName(fileStart)));
        head.flip();
        EntryFormat.Header h = EntryFormat.Header.read(head);
        return h.type() == null ? -1 : h.index();
    }

    private void writeCrcFrom(long i) throws IOException {
        Properties p = new Properties();
        p.setProperty("index", Long.toString(i));
        AtomicFiles.writeProperties(dir.resolve(CRC_FROM), p);
    }

    private void loadFiles(TreeMap<Long, FileChannel> files, Path folder, long size, String what)
        throws IOException {
        List<Path> paths;
        try (Stream<Path> list = Files.list(folder)) {
            paths = list.sorted().toList();
        }
        for (Path p : paths) {
            String name = p.getFileName().toString();
            if (!name.matches("\\d{20}")) {
                throw new StoreCorruptedException("unexpected file " + p + " in the " + what + " folder");
            }
            long start = Long.parseLong(name);
            if (start % size != 0) {
                throw new StoreCorruptedException(what + " file " + p + " starts at " + start
                    + ", not a multiple of the file size " + size + " (is the configured file size right?)");
            }
            FileChannel ch = opener.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE);
            boolean newest = p.equals(paths.get(paths.size() - 1));
            if (newest && ch.size() < size) {
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
                throw new StoreCorruptedException(what + " files missing in " + folder + " between "
                    + EntryFormat.fileName(prev) + " and " + EntryFormat.fileName(start));
            }
            prev = start;
        }
    }
}
