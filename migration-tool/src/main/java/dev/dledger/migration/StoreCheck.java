package dev.dledger.migration;

import com.alibaba.fastjson2.JSON;
import com.alibaba.fastjson2.JSONObject;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.rocketmq.common.UtilAll;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.sysflag.MessageSysFlag;

/**
 * The {@code check} of one store, or of a master and its slave: reads everything, changes nothing, and collects the
 * facts (printed as they are found) and the reasons a migration would be unsafe.
 */
final class StoreCheck {

    private final PrintStream out;
    /** Reasons the migration would be unsafe; empty when it is safe. */
    final List<String> problems = new ArrayList<>();
    /** Facts worth a look that do not block the migration. */
    final List<String> warnings = new ArrayList<>();

    StoreCheck(PrintStream out) {
        this.out = out;
    }

    /**
     * Checks {@code root}: returns the scan of a master/slave store, or null for a stock DLedger-mode store (which
     * needs no conversion).
     *
     * @throws MigrationException if the folder is not a store or its files are damaged
     */
    ClassicStore.Scan checkStore(String role, Path root, String commitLog) {
        ClassicStore.Kind kind = commitLog == null ? ClassicStore.kind(root) : ClassicStore.Kind.CLASSIC;
        if (kind == ClassicStore.Kind.DLEDGER) {
            out.printf("%s %s: a stock DLedger-mode store (dledger-<id>/data): our brokers open it in place, set "
                + "storePathRootDir=%s; nothing to convert%n", role, root, root);
            return null;
        }
        try (ClassicStore s = ClassicStore.open(root, commitLog)) {
            out.printf("%s %s: master/slave store, %d CommitLog files of %d bytes%n", role, root, s.files().size(),
                s.fileSize());
            String controller = s.controllerSummary();
            if (controller != null) {
                out.printf("  %s%n", controller);
            }
            if (ClassicStore.inUse(root)) {
                problems.add(role + " " + root + " is in use by a running broker (it holds the lock file): stop it");
            }
            if (!s.cleanShutdown()) {
                problems.add(role + " " + root + " was not shut down cleanly (the abort file is there): start and stop "
                    + "its broker once so that it recovers, then check again");
            } else {
                out.printf("  shut down cleanly: yes%n");
            }
            Map<String, long[]> perQueue = new TreeMap<>();
            long[] badCrc = {-1};
            ClassicStore.Scan scan = s.scan((offset, m) -> {
                MessageExt msg = MessageDecoder.decode(m, true, false, false);
                if (badCrc[0] < 0 && msg.getBody() != null && UtilAll.crc32(msg.getBody()) != msg.getBodyCRC()) {
                    badCrc[0] = offset;
                }
                if (dispatched(msg.getSysFlag())) {
                    long[] q = perQueue.computeIfAbsent(msg.getTopic() + "/" + msg.getQueueId(),
                        k -> new long[] {0, Long.MAX_VALUE, -1});
                    q[0]++;
                    q[1] = Math.min(q[1], msg.getQueueOffset());
                    q[2] = Math.max(q[2], msg.getQueueOffset());
                }
            }, null);
            if (badCrc[0] >= 0) {
                problems.add(role + " " + root + ": the message at offset " + badCrc[0] + " fails its body CRC");
            }
            out.printf("  messages: %d (%d bytes), offsets [%d, %d), %d queues%n", scan.messages(), scan.bytes(),
                scan.minOffset(), scan.endOffset(), perQueue.size());
            checkQueues(role, s, scan, perQueue);
            checkConfig(role, root);
            checkCheckpoint(root);
            return scan;
        }
    }

    static boolean dispatched(int sysFlag) {
        int t = MessageSysFlag.getTransactionValue(sysFlag);
        return t == MessageSysFlag.TRANSACTION_NOT_TYPE || t == MessageSysFlag.TRANSACTION_COMMIT_TYPE;
    }

    private void checkQueues(String role, ClassicStore s, ClassicStore.Scan scan, Map<String, long[]> perQueue) {
        long units = 0;
        long behind = 0;
        int disagree = 0;
        for (Map.Entry<String, Map<Integer, Path>> t : s.queues().entrySet()) {
            for (Map.Entry<Integer, Path> q : t.getValue().entrySet()) {
                String key = t.getKey() + "/" + q.getKey();
                long[] count = {0};
                String[] first = {null};
                ClassicStore.readQueue(q.getValue(), (qo, phy, size, tags) -> {
                    if (phy < scan.minOffset() || phy >= s.limit()) {
                        return; // the message expired with its CommitLog file, or was never confirmed
                    }
                    count[0]++;
                    if (first[0] != null) {
                        return;
                    }
                    if (phy >= scan.endOffset()) {
                        first[0] = "unit " + qo + " points at offset " + phy + ", past the end of the CommitLog "
                            + scan.endOffset();
                        return;
                    }
                    ByteBuffer m = s.messageAt(phy);
                    if (m == null || m.limit() != size) {
                        first[0] = "unit " + qo + " points at offset " + phy + " where no message of " + size
                            + " bytes starts";
                        return;
                    }
                    MessageExt msg = MessageDecoder.decode(m, false, false, false);
                    if (!msg.getTopic().equals(t.getKey()) || msg.getQueueId() != q.getKey()
                        || msg.getQueueOffset() != qo) {
                        first[0] = "unit " + qo + " points at offset " + phy + " which holds " + msg.getTopic() + "/"
                            + msg.getQueueId() + " offset " + msg.getQueueOffset();
                    }
                });
                if (first[0] != null) {
                    disagree++;
                    problems.add(role + " ConsumeQueue " + key + " disagrees with the CommitLog: " + first[0]);
                }
                units += count[0];
                long[] inLog = perQueue.get(key);
                if (inLog != null && inLog[0] > count[0]) {
                    behind += inLog[0] - count[0];
                }
            }
        }
        for (Map.Entry<String, long[]> e : perQueue.entrySet()) {
            int slash = e.getKey().lastIndexOf('/');
            Path dir = s.root().resolve(ClassicStore.CONSUMEQUEUE).resolve(e.getKey().substring(0, slash))
                .resolve(e.getKey().substring(slash + 1));
            if (!Files.isDirectory(dir)) {
                behind += e.getValue()[0];
            }
        }
        out.printf("  ConsumeQueues: %d units, %s%n", units, disagree == 0 ? "agree with the CommitLog"
            : disagree + " disagree");
        if (behind > 0) {
            warnings.add(role + ": " + behind + " messages are not in a ConsumeQueue yet (the broker dispatches them "
                + "at its next start; convert --mode rewrite builds them)");
        }
    }

    private void checkConfig(String role, Path root) {
        for (Path f : ClassicStore.configFiles(root)) {
            String text;
            try {
                text = Files.readString(f);
            } catch (IOException e) {
                throw new MigrationException("cannot read " + f + ": " + e.getMessage());
            }
            JSONObject json;
            try {
                json = text.isBlank() ? new JSONObject() : JSON.parseObject(text);
            } catch (RuntimeException e) {
                problems.add(role + " " + f + " is not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
                continue;
            }
            StringBuilder sb = new StringBuilder();
            for (String table : List.of("topicConfigTable", "subscriptionGroupTable", "offsetTable")) {
                JSONObject t = json == null ? null : json.getJSONObject(table);
                if (t != null) {
                    sb.append(", ").append(t.size()).append(' ').append(table);
                }
            }
            out.printf("  config/%s: %d bytes%s%n", f.getFileName(), text.length(), sb);
        }
    }

    private void checkCheckpoint(Path root) {
        Path cp = root.resolve(ClassicStore.CHECKPOINT);
        if (!Files.exists(cp)) {
            warnings.add("no checkpoint file in " + root);
            return;
        }
        try {
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(cp));
            if (b.limit() >= 24) {
                out.printf("  checkpoint: physic %d, logics %d, index %d (ms)%n", b.getLong(0), b.getLong(8),
                    b.getLong(16));
            }
        } catch (IOException e) {
            throw new MigrationException("cannot read " + cp + ": " + e.getMessage());
        }
    }

    /**
     * Compares the slave's CommitLog with the master's: the slave must hold a prefix of the master's bytes.
     * Records where they first differ as a problem.
     */
    void comparePrefix(Path master, String masterCommitLog, ClassicStore.Scan m, Path slave, ClassicStore.Scan sl) {
        try (ClassicStore ms = ClassicStore.open(master, masterCommitLog); ClassicStore ss = ClassicStore.open(slave)) {
            if (ms.fileSize() != ss.fileSize()) {
                problems.add("master and slave CommitLog files differ in size: " + ms.fileSize() + " and "
                    + ss.fileSize());
                return;
            }
            long from = Math.max(m.minOffset(), sl.minOffset());
            long to = Math.min(m.endOffset(), sl.endOffset());
            long diff = firstDifference(ms, ss, from, to);
            if (diff >= 0) {
                problems.add("the slave differs from the master at CommitLog offset " + diff
                    + ": the stores are not consistent; migrate from the master and discard the slave's copy");
                return;
            }
            if (sl.endOffset() > m.endOffset()) {
                problems.add("the slave is ahead of the master (ends at " + sl.endOffset() + ", the master at "
                    + m.endOffset() + "): it holds messages the master lacks");
                return;
            }
            // Messages the slave lacks at its end; a slave attached late also lacks the master's oldest files.
            long[] behind = {0};
            ms.scan((offset, msg) -> behind[0] += offset >= sl.endOffset() ? 1 : 0, null);
            out.printf("slave is a prefix of the master: equal bytes in [%d, %d), the slave lags %d bytes (%d "
                + "messages)%n", from, to, m.endOffset() - sl.endOffset(), behind[0]);
            if (sl.minOffset() > m.minOffset()) {
                out.printf("  the slave starts at offset %d: it never held the master's first %d bytes (it was "
                    + "attached later or they expired)%n", sl.minOffset(), sl.minOffset() - m.minOffset());
            }
        }
    }

    private static long firstDifference(ClassicStore a, ClassicStore b, long from, long to) {
        int size = a.fileSize();
        for (long start = from - from % size; start < to; start += size) {
            ByteBuffer fa = ClassicStore.mapReadOnly(a.files().get(start));
            ByteBuffer fb = ClassicStore.mapReadOnly(b.files().get(start));
            int lo = (int) Math.max(0, from - start);
            int hi = (int) Math.min(size, to - start);
            int at = fa.slice(lo, hi - lo).mismatch(fb.slice(lo, hi - lo));
            if (at >= 0) {
                return start + lo + at;
            }
        }
        return -1;
    }
}
