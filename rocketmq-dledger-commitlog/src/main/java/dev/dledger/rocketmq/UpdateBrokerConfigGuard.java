package dev.dledger.rocketmq;

import dev.dledger.raft.core.OneLine;
import io.netty.channel.ChannelHandlerContext;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.remoting.netty.NettyRequestProcessor;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.apache.rocketmq.remoting.protocol.RequestCode;
import org.apache.rocketmq.remoting.protocol.ResponseCode;

/**
 * The broker's handler of {@code UPDATE_BROKER_CONFIG} on the Raft log: checks the keys first
 * ({@link RaftBrokerConfiguration#refusal}) and answers a refusal as the admin tool shows it (response code
 * {@code INVALID_PARAMETER}, the one-line reason as the remark, so {@code mqadmin updateBrokerConfig} fails printing
 * it); hands everything else to the stock admin processor, whose update goes through
 * {@link RaftBrokerConfiguration#update}.
 *
 * <p>Why both this and the Configuration: the stock processor answers a failure of its update with the exception's
 * class and a stack frame, not a line a person can act on; the Configuration keeps its own check so that any other
 * caller of {@code update} (e.g. a timer engine switch) cannot break the file either.
 */
final class UpdateBrokerConfigGuard implements NettyRequestProcessor {

    private final RaftBrokerConfiguration configuration;
    private final NettyRequestProcessor stock;

    private UpdateBrokerConfigGuard(RaftBrokerConfiguration configuration, NettyRequestProcessor stock) {
        this.configuration = configuration;
        this.stock = stock;
    }

    /**
     * Puts the guard in front of the stock handler of {@code UPDATE_BROKER_CONFIG} on the broker's two remoting
     * servers (the client port and the VIP channel). Call after {@code recoverAndInitService}, which registers the
     * stock processors.
     *
     * @throws IllegalStateException when the broker has no stock handler for it (not RocketMQ 5.5.1)
     */
    static void install(BrokerController broker, RaftBrokerConfiguration configuration) {
        RequestGuards.putInFront(broker, RequestCode.UPDATE_BROKER_CONFIG, "UPDATE_BROKER_CONFIG",
            stock -> new UpdateBrokerConfigGuard(configuration, stock));
    }

    @Override
    public RemotingCommand processRequest(ChannelHandlerContext ctx, RemotingCommand request) throws Exception {
        byte[] body = request.getBody();
        Properties properties = body == null ? null
            : MixAll.string2Properties(new String(body, StandardCharsets.UTF_8));
        if (properties != null) {
            String refusal = configuration.refusal(properties);
            if (refusal != null) {
                return refuse(ResponseCode.INVALID_PARAMETER, refusal);
            }
        }
        try {
            return stock.processRequest(ctx, request);
        } catch (IllegalArgumentException | IllegalStateException e) {
            return refuse(ResponseCode.SYSTEM_ERROR, OneLine.of(e.getMessage()));
        }
    }

    private static RemotingCommand refuse(int code, String remark) {
        RemotingCommand response = RemotingCommand.createResponseCommand(null);
        response.setCode(code);
        response.setRemark(remark);
        return response;
    }

    @Override
    public boolean rejectRequest() {
        return stock.rejectRequest();
    }
}
