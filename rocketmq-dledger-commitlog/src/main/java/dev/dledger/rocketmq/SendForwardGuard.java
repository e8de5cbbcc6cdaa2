package dev.dledger.rocketmq;

import dev.dledger.raft.core.OneLine;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.NodeStatus;
import dev.dledger.raft.server.RaftGroupNode;
import io.netty.channel.ChannelHandlerContext;
import java.util.HashMap;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.remoting.netty.NettyRequestProcessor;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.apache.rocketmq.remoting.protocol.RequestCode;
import org.apache.rocketmq.remoting.protocol.ResponseCode;
import org.apache.rocketmq.store.config.BrokerRole;

/**
 * The broker's handler of sends ({@code SEND_MESSAGE}, {@code SEND_MESSAGE_V2}, {@code SEND_BATCH_MESSAGE}) while the
 * Raft leadership moves (issue 18): a send that reaches a broker that is not its group's master, or a master handing
 * its leadership over, is held until the nameserver lists the group's new master and then forwarded to it, its answer
 * returned as this broker's. A client learns of a new master only at its next route poll (30 s by default); until
 * then it sends to the old one, which before refused every send (a slave answers {@code SYSTEM_BUSY} before the
 * request is read), so a leadership transfer cost a group its sends for up to a poll interval.
 *
 * <p>A send waits at most {@value #HOLD_MS} ms for a master to forward to, or for this broker to finish becoming
 * master when it is the new leader; then the stock handler answers as before (a refusal on a slave). A forwarded send
 * is handled by the same guard on the other broker, so a send that reaches a broker that lost the leadership in turn
 * goes on to the master listed then; nothing is forwarded to this broker's own address.
 */
final class SendForwardGuard implements NettyRequestProcessor {

    /** The longest a send waits for a master; the client waits 3 s for its answer by default. */
    private static final long HOLD_MS = 2000;
    /** The longest a forwarded send may take, from its arrival here. */
    private static final long FORWARD_BUDGET_MS = 2800;

    private final BrokerController broker;
    private final RaftCommitLog log;
    private final MasterLookup masters;
    private final NettyRequestProcessor stock;

    private SendForwardGuard(BrokerController broker, RaftCommitLog log, MasterLookup masters,
                             NettyRequestProcessor stock) {
        this.broker = broker;
        this.log = log;
        this.masters = masters;
        this.stock = stock;
    }

    /**
     * Puts the guard in front of the stock send handlers on the broker's two remoting servers. Call after
     * {@code recoverAndInitService}, which registers the stock processors.
     *
     * @throws IllegalStateException when the broker has no handler for a send (not RocketMQ 5.5.1)
     */
    static void install(BrokerController broker, RaftCommitLog log) {
        MasterLookup masters = new MasterLookup(broker);
        for (int code : new int[] {RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2,
            RequestCode.SEND_BATCH_MESSAGE}) {
            RequestGuards.putInFront(broker, code, "send request " + code,
                stock -> new SendForwardGuard(broker, log, masters, stock));
        }
    }

    @Override
    public RemotingCommand processRequest(ChannelHandlerContext ctx, RemotingCommand request) throws Exception {
        long arrived = System.nanoTime();
        while (true) {
            RaftGroupNode node = log.node();
            if (node == null) {
                return stock.processRequest(ctx, request);
            }
            NodeStatus s = node.status();
            if (s.role() == Role.LEADER && s.transferee() == null) {
                if (isMaster() && log.putTerm() == s.term()) {
                    return stock.processRequest(ctx, request);
                }
                // The new leader is becoming master (applying, rebuilding its queue table): hold the send.
            } else {
                String master = masters.otherMaster();
                if (master != null) {
                    return forward(master, request, arrived);
                }
            }
            if (elapsedMs(arrived) >= HOLD_MS) {
                return stock.processRequest(ctx, request);
            }
            TimeUnit.MILLISECONDS.sleep(2);
        }
    }

    /** Sends a copy of {@code request} to {@code master} and gives its answer, or a refusal saying why there is none. */
    private RemotingCommand forward(String master, RemotingCommand request, long arrived) throws InterruptedException {
        RemotingCommand copy = RemotingCommand.createRequestCommand(request.getCode(), null);
        copy.setVersion(request.getVersion());
        copy.setLanguage(request.getLanguage());
        copy.setSerializeTypeCurrentRPC(request.getSerializeTypeCurrentRPC());
        copy.setExtFields(request.getExtFields() == null ? null : new HashMap<>(request.getExtFields()));
        copy.setBody(request.getBody());
        long budget = Math.max(1, FORWARD_BUDGET_MS - elapsedMs(arrived));
        try {
            return broker.getBrokerOuterAPI().getRemotingClient().invokeSync(master, copy, budget);
        } catch (InterruptedException e) {
            throw e;
        } catch (Exception e) {
            return RemotingCommand.createResponseCommand(ResponseCode.SERVICE_NOT_AVAILABLE, "broker "
                + broker.getBrokerConfig().getBrokerName() + " at " + broker.getBrokerAddr() + " is not its group's "
                + "master and could not forward the send to the master " + master + ": " + OneLine.of(e.toString()));
        }
    }

    private boolean isMaster() {
        return broker.getMessageStoreConfig().getBrokerRole() != BrokerRole.SLAVE;
    }

    private static long elapsedMs(long since) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - since);
    }

    @Override
    public boolean rejectRequest() {
        // The stock handler rejects every send on a slave before it is read (SYSTEM_BUSY); this one forwards it.
        return log.node() != null && !isMaster() ? false : stock.rejectRequest();
    }
}
