package dev.dledger.rocketmq;

import dev.dledger.raft.core.OneLine;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.NodeStatus;
import dev.dledger.raft.server.RaftGroupNode;
import io.netty.channel.ChannelHandlerContext;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.remoting.netty.NettyRequestProcessor;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.apache.rocketmq.remoting.protocol.RequestCode;
import org.apache.rocketmq.remoting.protocol.ResponseCode;

/**
 * The broker's handler of {@code QUERY_CONSUMER_OFFSET} on the Raft log: a consumer's offset is answered only by the
 * Raft leader, after a read barrier ({@link RaftGroupNode#readIndex}: its leadership confirmed, everything committed
 * before the query applied), so the answer holds every offset commit the group acknowledged before it.
 *
 * <p>Why: a consumer asks for the offset of a queue it was just assigned at the first broker its route lists, a slave
 * when the route has no master (a failover, a leader that has not registered yet). A follower's table is the
 * committed one as far as it has applied, which is far behind when it was down or is catching up (in a group of two
 * data brokers and a witness, the only other data broker often is), so it answered offsets older than the group
 * acknowledged and the consumer got thousands of messages again. A follower now refuses ({@code SYSTEM_ERROR}, the
 * reason as the remark); RocketMQ's consumer then leaves that queue for its next rebalance instead of starting from an
 * old offset. A deposed leader that does not know it yet cannot confirm its leadership and refuses too.
 */
final class OffsetQueryGuard implements NettyRequestProcessor {

    /** The longest a query waits for the read barrier; the client waits 5 s for its answer. */
    private static final long BARRIER_WAIT_MS = 3000;

    private final RaftCommitLog log;
    private final NettyRequestProcessor stock;

    private OffsetQueryGuard(RaftCommitLog log, NettyRequestProcessor stock) {
        this.log = log;
        this.stock = stock;
    }

    /**
     * Puts the guard in front of the stock handler of {@code QUERY_CONSUMER_OFFSET} on the broker's two remoting
     * servers. Call after {@code recoverAndInitService}, which registers the stock processors.
     *
     * @throws IllegalStateException when the broker has no handler for it (not RocketMQ 5.5.1)
     */
    static void install(BrokerController broker, RaftCommitLog log) {
        RequestGuards.putInFront(broker, RequestCode.QUERY_CONSUMER_OFFSET, "QUERY_CONSUMER_OFFSET",
            stock -> new OffsetQueryGuard(log, stock));
    }

    @Override
    public RemotingCommand processRequest(ChannelHandlerContext ctx, RemotingCommand request) throws Exception {
        String refusal = barrier();
        if (refusal != null) {
            return RemotingCommand.createResponseCommand(ResponseCode.SYSTEM_ERROR, refusal);
        }
        return stock.processRequest(ctx, request);
    }

    @Override
    public boolean rejectRequest() {
        return stock.rejectRequest();
    }

    /** Null once this node may answer (it leads and passed a read barrier), else the one-line reason it may not. */
    private String barrier() {
        String group = log.settings().group();
        RaftGroupNode node = log.node();
        if (node == null) {
            return "consumer offsets of broker group " + group + " are not answered yet: its raft node has not started";
        }
        NodeStatus s = node.status();
        if (s.role() != Role.LEADER) {
            return "consumer offsets of broker group " + group + " are answered by its master, the raft leader ("
                + (s.leaderId() == null ? "none known now" : s.leaderId()) + "): this broker (" + s.id()
                + ") follows, and what it has applied may be older than what the group acknowledged";
        }
        try {
            node.readIndex(true).get(BARRIER_WAIT_MS, TimeUnit.MILLISECONDS);
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "consumer offset query of broker group " + group + " interrupted";
        } catch (ExecutionException e) {
            return "consumer offsets of broker group " + group + " not answered: " + s.id()
                + " could not confirm it still leads (" + OneLine.of(String.valueOf(e.getCause())) + ")";
        } catch (TimeoutException e) {
            return "consumer offsets of broker group " + group + " not answered: " + s.id()
                + " could not confirm it still leads within " + BARRIER_WAIT_MS + " ms";
        }
    }
}
