package dev.dledger.rocketmq;

import java.util.concurrent.ExecutorService;
import java.util.function.BiFunction;
import java.util.function.UnaryOperator;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.common.Pair;
import org.apache.rocketmq.remoting.RemotingServer;
import org.apache.rocketmq.remoting.netty.NettyRequestProcessor;

/**
 * Puts a guard of ours in front of a stock request handler of the broker: {@link UpdateBrokerConfigGuard},
 * {@link OffsetQueryGuard}, {@link SendForwardGuard}.
 */
final class RequestGuards {

    private RequestGuards() {
    }

    /**
     * Registers {@code guard} of the stock handler of request {@code code} (named {@code name} in the error) on the
     * broker's two remoting servers, with the stock handler's executor. Call after {@code recoverAndInitService}.
     *
     * @throws IllegalStateException when the broker has no handler for it (not RocketMQ 5.5.1)
     */
    static void putInFront(BrokerController broker, int code, String name,
                           UnaryOperator<NettyRequestProcessor> guard) {
        putInFront(broker, code, name, (stock, executor) -> guard.apply(stock));
    }

    /** As above; the guard is also given the executor the stock handler runs on. */
    static void putInFront(BrokerController broker, int code, String name,
                           BiFunction<NettyRequestProcessor, ExecutorService, NettyRequestProcessor> guard) {
        for (RemotingServer server : new RemotingServer[] {broker.getRemotingServer(), broker.getFastRemotingServer()}) {
            if (server == null) {
                continue;
            }
            Pair<NettyRequestProcessor, ExecutorService> pair = server.getProcessorPair(code);
            if (pair == null) {
                pair = server.getDefaultProcessorPair();
            }
            if (pair == null || pair.getObject1() == null) {
                throw new IllegalStateException("the broker has no handler of " + name + " (is this RocketMQ 5.5.1?)");
            }
            server.registerProcessor(code, guard.apply(pair.getObject1(), pair.getObject2()), pair.getObject2());
        }
    }
}
