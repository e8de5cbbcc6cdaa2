package dev.dledger.rocketmq;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.store.CommitLog;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.ha.HAClient;
import org.apache.rocketmq.store.ha.HAConnection;
import org.apache.rocketmq.store.ha.HAConnectionState;
import org.apache.rocketmq.store.ha.HAConnectionStateNotificationRequest;
import org.apache.rocketmq.store.ha.HAService;
import org.apache.rocketmq.store.ha.WaitNotifyObject;
import org.apache.rocketmq.remoting.protocol.body.HARuntimeInfo;

/**
 * The master/slave HA service of a broker on the Raft log: it opens no port and runs no client, because the Raft
 * group replicates. Installed on that broker's store only, so a broker without the Raft log keeps stock HA.
 */
final class NoopHAService implements HAService {

    private final AtomicInteger connections = new AtomicInteger();
    private final AtomicLong pushed = new AtomicLong();
    private final WaitNotifyObject waitNotify = new WaitNotifyObject();
    private final HAClient client = new NoopClient();

    @Override
    public void init(DefaultMessageStore defaultMessageStore) {
    }

    @Override
    public void start() {
    }

    @Override
    public void shutdown() {
    }

    @Override
    public void updateMasterAddress(String newAddr) {
    }

    @Override
    public void updateHaMasterAddress(String newAddr) {
    }

    @Override
    public int inSyncReplicasNums(long masterPutWhere) {
        return 1;
    }

    @Override
    public AtomicInteger getConnectionCount() {
        return connections;
    }

    @Override
    public void putRequest(CommitLog.GroupCommitRequest request) {
        request.wakeupCustomer(org.apache.rocketmq.store.PutMessageStatus.PUT_OK);
    }

    @Override
    public void putGroupConnectionStateRequest(HAConnectionStateNotificationRequest request) {
        request.getRequestFuture().complete(true);
    }

    @Override
    public List<HAConnection> getConnectionList() {
        return List.of();
    }

    @Override
    public HAClient getHAClient() {
        return client;
    }

    @Override
    public AtomicLong getPush2SlaveMaxOffset() {
        return pushed;
    }

    @Override
    public HARuntimeInfo getRuntimeInfo(long masterPutWhere) {
        return new HARuntimeInfo();
    }

    @Override
    public WaitNotifyObject getWaitNotifyObject() {
        return waitNotify;
    }

    @Override
    public boolean isSlaveOK(long masterPutWhere) {
        return true;
    }

    private static final class NoopClient implements HAClient {
        @Override
        public void start() {
        }

        @Override
        public void shutdown() {
        }

        @Override
        public void wakeup() {
        }

        @Override
        public void updateMasterAddress(String newAddress) {
        }

        @Override
        public void updateHaMasterAddress(String newAddress) {
        }

        @Override
        public String getMasterAddress() {
            return null;
        }

        @Override
        public String getHaMasterAddress() {
            return null;
        }

        @Override
        public long getLastReadTimestamp() {
            return 0;
        }

        @Override
        public long getLastWriteTimestamp() {
            return 0;
        }

        @Override
        public HAConnectionState getCurrentState() {
            return HAConnectionState.READY;
        }

        @Override
        public void changeCurrentState(HAConnectionState haConnectionState) {
        }

        @Override
        public void closeMaster() {
        }

        @Override
        public long getTransferredByteInSecond() {
            return 0;
        }
    }
}
