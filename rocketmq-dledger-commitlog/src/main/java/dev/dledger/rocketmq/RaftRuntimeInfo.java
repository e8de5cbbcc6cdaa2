package dev.dledger.rocketmq;

import dev.dledger.raft.server.NodeStatus;
import dev.dledger.raft.server.RaftGroupNode;
import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import org.apache.rocketmq.broker.plugin.BrokerAttachedPlugin;

/**
 * Adds the Raft commit log's state to the broker's runtime info, which {@code mqadmin brokerStatus} prints (the broker
 * asks each attached plugin while it answers GET_BROKER_RUNTIME_INFO):
 *
 * <ul>
 *   <li>{@code raftLogDir}: the folder of the Raft log ({@code storePathRootDir/dledger-<selfId>});</li>
 *   <li>{@code raftLogDiskBytes}: bytes its files take (data files in every data folder, index, checkpoints; the
 *       files' sizes, as {@code du --apparent-size} counts them);</li>
 *   <li>{@code raftLogDiskRatio}: the used share (0 to 1) of the file system that holds its first data folder, as the
 *       stock {@code commitLogDiskRatio} is for the CommitLog folder (used = total - free, as stock counts it);</li>
 *   <li>{@code raftGroup}, {@code raftSelfId}, {@code raftRole}, {@code raftTerm}, {@code raftLeader},
 *       {@code raftCommitIndex}, {@code raftAppliedIndex}, {@code raftLastIndex}; {@code raftMetricsPort} (-1 when the
 *       metrics are not served).</li>
 * </ul>
 *
 * <p>Everything else of the plugin life cycle does nothing. Called on the broker's admin threads; reads volatile state
 * and walks the log's folders.
 */
final class RaftRuntimeInfo implements BrokerAttachedPlugin {

    private final RaftCommitLog log;

    RaftRuntimeInfo(RaftCommitLog log) {
        this.log = log;
    }

    @Override
    public String pluginName() {
        return "raft-commit-log";
    }

    @Override
    public boolean load() {
        return true;
    }

    @Override
    public void start() {
    }

    @Override
    public void shutdown() {
    }

    @Override
    public void syncMetadata() {
    }

    @Override
    public void syncMetadataReverse(String brokerAddr) {
    }

    @Override
    public void statusChanged(boolean shouldStart) {
    }

    @Override
    public void buildRuntimeInfo(Map<String, String> info) {
        RaftStoreSettings s = log.settings();
        info.put("raftGroup", s.group());
        info.put("raftSelfId", s.selfId());
        info.put("raftLogDir", s.dir().toAbsolutePath().toString());
        info.put("raftLogDiskBytes", Long.toString(log.raftLogDiskBytes()));
        info.put("raftLogDiskRatio", diskRatio(s.dataFolders().get(0)));
        info.put("raftMetricsPort", Integer.toString(log.metricsPort()));
        RaftGroupNode node = log.node();
        if (node != null) {
            NodeStatus st = node.status();
            info.put("raftRole", st.role().name());
            info.put("raftTerm", Long.toString(st.term()));
            info.put("raftLeader", String.valueOf(st.leaderId()));
            info.put("raftCommitIndex", Long.toString(st.commitIndex()));
            info.put("raftAppliedIndex", Long.toString(st.appliedIndex()));
            info.put("raftLastIndex", Long.toString(st.lastIndex()));
        }
    }

    /** Used share of the file system holding {@code folder} (its nearest existing parent), or "-1" if unknown. */
    private static String diskRatio(Path folder) {
        Path p = folder.toAbsolutePath();
        while (p != null && !Files.exists(p)) {
            p = p.getParent();
        }
        if (p == null) {
            return "-1";
        }
        try {
            FileStore fs = Files.getFileStore(p);
            long total = fs.getTotalSpace();
            return total <= 0 ? "-1"
                : String.format(Locale.ROOT, "%.4f", (double) (total - fs.getUnallocatedSpace()) / total);
        } catch (IOException e) {
            return "-1";
        }
    }
}
