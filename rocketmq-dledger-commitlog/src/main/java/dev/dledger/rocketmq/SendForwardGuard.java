package dev.dledger.rocketmq;

import dev.dledger.raft.core.OneLine;
import dev.dledger.raft.core.Role;
import dev.dledger.raft.server.NodeStatus;
import dev.dledger.raft.server.RaftGroupNode;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.HashMap;
import java.util.Objects;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.broker.BrokerController;
import org.apache.rocketmq.remoting.InvokeCallback;
import org.apache.rocketmq.remoting.exception.RemotingTimeoutException;
import org.apache.rocketmq.remoting.netty.NettyRemotingClient;
import org.apache.rocketmq.remoting.netty.NettyRequestProcessor;
import org.apache.rocketmq.remoting.netty.ResponseFuture;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.apache.rocketmq.remoting.protocol.RequestCode;
import org.apache.rocketmq.remoting.protocol.ResponseCode;
import org.apache.rocketmq.store.config.BrokerRole;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The broker's handler of sends ({@code SEND_MESSAGE}, {@code SEND_MESSAGE_V2}, {@code SEND_BATCH_MESSAGE}) while the
 * Raft leadership moves (issue 18): a send that reaches a broker that is not its group's master, or a master handing
 * its leadership over, is held until the nameserver lists the group's new master and then forwarded to it, its answer
 * returned as this broker's. A client learns of a new master only at its next route poll (30 s by default); until
 * then it sends to the old one, which before refused every send (a slave answers {@code SYSTEM_BUSY} before the
 * request is read), so a leadership transfer cost a group its sends for up to a poll interval.
 *
 * <p>Nothing blocks the broker's send threads: a held send is looked at again every {@value #RECHECK_MS} ms on a
 * thread of its own and forwarded asynchronously, over a remoting client of its own without RPC hooks (the client's
 * signature, which covers the header fields and the body, stays valid; the broker's own client would add zone fields
 * or its own credentials). A send waits at most {@value #HOLD_MS} ms for a master to forward to, or for this broker to
 * finish becoming master when it is the new leader; then it is refused with {@code SYSTEM_BUSY}, as a slave refused
 * it before (the stock handler never runs on a slave: it could create a topic there outside the log). What a broker
 * holds is bounded ({@link #MAX_HELD_BYTES}); a send beyond it is refused at once. A forwarded
 * request carries a remark that marks it (the remark is not signed) and is never forwarded again, so no send travels
 * in a loop. A forward whose answer does not come within the budget is left unanswered (the message may be stored:
 * the client's own timeout decides, as for any lost answer). A forwarded message records this broker as its born host.
 *
 * <p>A send this broker let through as master and whose put it then refused before the message went into the Raft log
 * (the leadership moved or was lost in between) is held again and goes to the next master, as a send that arrived after
 * the move would ({@link StockAnswer}): the refusal would reach the client for a message nowhere stored.
 */
final class SendForwardGuard implements NettyRequestProcessor {

    private static final Logger LOG = LoggerFactory.getLogger(SendForwardGuard.class);
    /** The longest a send waits for a master; the client waits 3 s for its answer by default. */
    private static final long HOLD_MS = 2000;
    /** The longest a forwarded send may take, from its arrival here. */
    private static final long FORWARD_BUDGET_MS = 2800;
    private static final long RECHECK_MS = 5;
    /** What {@link #letThrough} gives for a send this broker does not serve now. */
    private static final long NOT_SERVED = -1;
    /** The remark of a forwarded request. */
    private static final String FORWARDED = "forwarded by the raft broker ";
    /**
     * In the refusal of a forwarded send by a broker that is no longer master (its leadership moved on while the send
     * travelled): the broker that forwarded it looks for the master again instead of passing the refusal on.
     */
    private static final String NO_LONGER_MASTER = "the send was forwarded here already";
    /** How long a send refused so waits before its master is looked up again: the lookup's refresh interval. */
    private static final long RELOOK_MS = 20;
    /**
     * The most a broker holds of sends waiting for a master (bodies and headers, about): beyond it a send is refused
     * at once, so that a move under a heavy load cannot fill the broker's heap. 20,000 sends/s of 1 KiB held the whole
     * {@value #HOLD_MS} ms come to about 40 MiB.
     */
    static final long MAX_HELD_BYTES = 64L << 20;
    /** What a held send is counted for besides its body: its header fields, the request and its context. */
    private static final long HELD_OVERHEAD_BYTES = 512;

    /** The bytes of held sends, up to a bound; thread-safe. */
    static final class HeldBytes {
        private final long max;
        private final AtomicLong held = new AtomicLong();

        HeldBytes(long max) {
            this.max = max;
        }

        /** Counts {@code bytes} more as held, unless that would pass the bound; then counts nothing. */
        boolean tryHold(long bytes) {
            long now;
            do {
                now = held.get();
                if (now + bytes > max) {
                    return false;
                }
            } while (!held.compareAndSet(now, now + bytes));
            return true;
        }

        void release(long bytes) {
            held.addAndGet(-bytes);
        }

        long held() {
            return held.get();
        }
    }

    /**
     * What the guards of one broker share: the forwarding client, the thread of held sends and what they may hold; the
     * master lookup is the broker's one ({@link RaftCommitLog#masters()}). The client starts when first needed (a
     * broker that never forwards starts none).
     */
    static final class Forwarding implements AutoCloseable {
        final MasterLookup masters;
        final ScheduledExecutorService held;
        final HeldBytes heldBytes = new HeldBytes(MAX_HELD_BYTES);
        private final BrokerController broker;
        private NettyRemotingClient client;
        private boolean closed;

        Forwarding(BrokerController broker, MasterLookup masters) {
            this.broker = broker;
            this.masters = Objects.requireNonNull(masters, "the broker's master lookup (RaftInstaller sets it)");
            this.held = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "SendForward-" + broker.getBrokerConfig().getBrokerName());
                t.setDaemon(true);
                return t;
            });
        }

        /** The client that forwards, started on first use: no RPC hooks, the broker's client settings (TLS). */
        synchronized NettyRemotingClient client() {
            if (closed) {
                throw new RejectedExecutionException("the broker is stopping");
            }
            if (client == null) {
                client = new NettyRemotingClient(broker.getNettyClientConfig());
                client.start();
            }
            return client;
        }

        @Override
        public synchronized void close() {
            closed = true;
            held.shutdownNow();
            if (client != null) {
                client.shutdown();
            }
        }
    }

    private final BrokerController broker;
    private final RaftCommitLog log;
    private final Forwarding forwarding;
    private final NettyRequestProcessor stock;
    private final ExecutorService stockExecutor;

    private SendForwardGuard(BrokerController broker, RaftCommitLog log, Forwarding forwarding,
                             NettyRequestProcessor stock, ExecutorService stockExecutor) {
        this.broker = broker;
        this.log = log;
        this.forwarding = forwarding;
        this.stock = stock;
        this.stockExecutor = stockExecutor;
    }

    /**
     * Puts the guard in front of the stock send handlers on the broker's two remoting servers. Call after
     * {@code recoverAndInitService}, which registers the stock processors. What the guards share is closed with the
     * commit log.
     *
     * @throws IllegalStateException when the broker has no handler for a send (not RocketMQ 5.5.1)
     */
    static void install(BrokerController broker, RaftCommitLog log) {
        Forwarding forwarding = new Forwarding(broker, log.masters());
        log.closeOnShutdown(forwarding);
        for (int code : new int[] {RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2,
            RequestCode.SEND_BATCH_MESSAGE}) {
            RequestGuards.putInFront(broker, code, "send request " + code,
                (stock, executor) -> new SendForwardGuard(broker, log, forwarding, stock, executor));
        }
    }

    @Override
    public RemotingCommand processRequest(ChannelHandlerContext ctx, RemotingCommand request) throws Exception {
        long arrived = System.nanoTime();
        long term = letThrough();
        if (term != NOT_SERVED) {
            return serveCounted(ctx, request, arrived, term);
        }
        attempt(ctx, request, arrived, MasterLookup.answersFor(arrived), 0);
        // Answered by attempt, now or later.
        return null;
    }

    /**
     * Whether this broker serves a send now, counted if so ({@link RaftCommitLog#sendLetThrough}): checked, counted,
     * then checked again, so that a hand-over announced after the second check waits until the send's put was proposed;
     * a send that fails the second check is not counted. The term it serves in, or {@link #NOT_SERVED}.
     */
    private long letThrough() {
        if (servedTerm() == NOT_SERVED) {
            return NOT_SERVED;
        }
        log.sendLetThrough();
        long term = servedTerm();
        if (term == NOT_SERVED) {
            log.sendNotServed();
        }
        return term;
    }

    /**
     * The term in which this broker is the master now (it leads, hands nothing over, and its puts are open in its
     * term), 0 for a store without a Raft node, {@link #NOT_SERVED} when it is not the master.
     */
    private long servedTerm() {
        RaftGroupNode node = log.node();
        if (node == null) {
            return 0;
        }
        NodeStatus s = node.status();
        return s.role() == Role.LEADER && s.transferee() == null && isMaster() && log.putTerm() == s.term()
            ? s.term() : NOT_SERVED;
    }

    /**
     * Has the stock handler serve a send counted as let through in {@code term}; its answer, or null when the send
     * was held again ({@link StockAnswer}).
     */
    private RemotingCommand serveCounted(ChannelHandlerContext ctx, RemotingCommand request, long arrived, long term)
        throws Exception {
        StockAnswer answer = new StockAnswer(ctx, request, arrived, term, log.servingCountedSend());
        try {
            RemotingCommand response = stock.processRequest(answer.context(), request);
            return answer.heldAgain(response) ? null : response;
        } finally {
            RaftCommitLog.endCountedSend();
        }
    }

    /**
     * What the stock handler answers to a send it serves: it reaches the client, unless it is a refusal of a send whose
     * message was not stored because this broker stopped being master after it let the send through (its put came
     * after the leadership moved, or after an election: a hand-over waits for such sends only an election timeout).
     * Such a send is held again as if it had arrived now (within {@value #HOLD_MS} ms of its arrival), and goes to
     * the group's next master; a oneway send is not (it gets no answer). The stock handler answers on a thread of its
     * own once the put completed, through the channel of the context it was given (that context is this broker's with
     * a channel that gives its writes here first), or, with RocketMQ's {@code asyncSendEnable} off, by its return
     * value.
     */
    private final class StockAnswer {
        private final ChannelHandlerContext ctx;
        private final RemotingCommand request;
        private final long arrived;
        private final long term;
        private final RaftCommitLog.ServedSend served;

        StockAnswer(ChannelHandlerContext ctx, RemotingCommand request, long arrived, long term,
                    RaftCommitLog.ServedSend served) {
            this.ctx = ctx;
            this.request = request;
            this.arrived = arrived;
            this.term = term;
            this.served = served;
        }

        ChannelHandlerContext context() {
            Channel channel = ctx.channel();
            Channel answering = proxy(Channel.class, (self, method, args) ->
                "writeAndFlush".equals(method.getName()) && args != null && args.length == 1 && heldAgain(args[0])
                    ? channel.newSucceededFuture() : delegate(channel, method, args));
            return proxy(ChannelHandlerContext.class, (self, method, args) ->
                "channel".equals(method.getName()) && args == null ? answering : delegate(ctx, method, args));
        }

        /** Holds the send again when {@code written} is a refusal of it that stored nothing; whether it did. */
        boolean heldAgain(Object written) {
            if (!(written instanceof RemotingCommand response) || response.getCode() != ResponseCode.SERVICE_NOT_AVAILABLE
                || request.isOnewayRPC() || served.proposed() || log.node() == null || elapsedMs(arrived) >= HOLD_MS) {
                // Stored maybe: answered.
                return false;
            }
            long refused = System.nanoTime();
            try {
                if (servedTerm() == term) {
                    // Refused by a master still serving in the same term (a full disk): answered.
                    return false;
                }
                forwarding.held.schedule(() -> attempt(ctx, request, arrived, refused, 0), RECHECK_MS,
                    TimeUnit.MILLISECONDS);
            } catch (RuntimeException e) {
                // Stopping, or anything else: the refusal is answered rather than lost (RocketMQ's write swallows it).
                return false;
            }
            LOG.debug("a send let through as master in term {} was refused unstored; held again", term);
            return true;
        }
    }

    private static <T> T proxy(Class<T> type, InvocationHandler handler) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, handler));
    }

    private static Object delegate(Object target, Method method, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /**
     * Serves, forwards, refuses or holds the send once more; {@code held} is what it is counted for while it waits (0
     * on its first attempt): kept while it is held again, given back once it is served, forwarded or refused. A master
     * to forward to is taken from a nameserver answer asked at or after {@code answersFrom}.
     */
    private void attempt(ChannelHandlerContext ctx, RemotingCommand request, long arrived, long answersFrom, long held) {
        long counted = held;
        boolean holdsOn = false;
        try {
            long term = letThrough();
            if (term != NOT_SERVED) {
                // The stock executor's thread takes the count over.
                boolean handedOn = false;
                try {
                    stockExecutor.execute(() -> serve(ctx, request, arrived, term));
                    handedOn = true;
                    return;
                } finally {
                    if (!handedOn) {
                        log.sendNotServed();
                    }
                }
            }
            NodeStatus s = log.node().status();
            boolean forwarded = request.getRemark() != null && request.getRemark().startsWith(FORWARDED);
            boolean leads = s.role() == Role.LEADER && s.transferee() == null;
            if (!leads && !forwarded) {
                String master = forwarding.masters.otherMasterListedSince(answersFrom);
                if (master != null) {
                    forward(ctx, request, master, arrived);
                    return;
                }
            }
            // A leader becoming master is waited for; a forwarded send only that long, as it came here for a master.
            if ((forwarded && !leads) || elapsedMs(arrived) >= HOLD_MS) {
                refuse(ctx, request, "is not its group's master (raft " + s.role() + ", leader " + s.leaderId()
                    + ") and " + (forwarded ? NO_LONGER_MASTER : "no other master was listed within " + HOLD_MS + " ms"));
                return;
            }
            if (counted == 0) {
                long size = (request.getBody() == null ? 0 : request.getBody().length) + HELD_OVERHEAD_BYTES;
                if (!forwarding.heldBytes.tryHold(size)) {
                    refuse(ctx, request, "holds " + forwarding.heldBytes.held() + " bytes of sends waiting for a "
                        + "master already (at most " + MAX_HELD_BYTES + ")");
                    return;
                }
                counted = size;
            }
            long size = counted;
            forwarding.held.schedule(() -> attempt(ctx, request, arrived, answersFrom, size), RECHECK_MS,
                TimeUnit.MILLISECONDS);
            holdsOn = true;
        } catch (RejectedExecutionException e) {
            refuse(ctx, request, "is stopping");
        } finally {
            if (!holdsOn) {
                forwarding.heldBytes.release(counted);
            }
        }
    }

    /** Answers {@code request} with {@code SYSTEM_BUSY}, which the client retries elsewhere: this broker {@code why}. */
    private void refuse(ChannelHandlerContext ctx, RemotingCommand request, String why) {
        respond(ctx, request, RemotingCommand.createResponseCommand(ResponseCode.SYSTEM_BUSY, "[REJECTREQUEST] broker "
            + broker.getBrokerConfig().getBrokerName() + " at " + broker.getBrokerAddr() + " " + why));
    }

    private void serve(ChannelHandlerContext ctx, RemotingCommand request, long arrived, long term) {
        try {
            respond(ctx, request, serveCounted(ctx, request, arrived, term));
        } catch (Exception e) {
            respond(ctx, request, RemotingCommand.createResponseCommand(ResponseCode.SYSTEM_ERROR,
                OneLine.of(e.toString())));
        }
    }

    /** Sends a copy of {@code request} to {@code master}; its answer is this broker's. */
    private void forward(ChannelHandlerContext ctx, RemotingCommand request, String master, long arrived) {
        RemotingCommand copy = RemotingCommand.createRequestCommand(request.getCode(), null);
        copy.setVersion(request.getVersion());
        copy.setLanguage(request.getLanguage());
        copy.setSerializeTypeCurrentRPC(request.getSerializeTypeCurrentRPC());
        copy.setExtFields(request.getExtFields() == null ? null : new HashMap<>(request.getExtFields()));
        copy.setBody(request.getBody());
        copy.setRemark(FORWARDED + broker.getBrokerAddr());
        long budget = Math.max(1, FORWARD_BUDGET_MS - elapsedMs(arrived));
        try {
            forwarding.client().invokeAsync(master, copy, budget, new InvokeCallback() {
                @Override
                public void operationComplete(ResponseFuture f) {
                    // operationSucceed or operationFail ran before.
                }

                @Override
                public void operationSucceed(RemotingCommand response) {
                    if (response.getCode() == ResponseCode.SYSTEM_BUSY && response.getRemark() != null
                        && response.getRemark().contains(NO_LONGER_MASTER) && elapsedMs(arrived) < HOLD_MS) {
                        // The master it was sent to lost its leadership meanwhile: held again, the master looked up
                        // anew (it may be this broker by now), from answers asked after this refusal.
                        long refused = System.nanoTime();
                        try {
                            forwarding.held.schedule(() -> attempt(ctx, request, arrived, refused, 0), RELOOK_MS,
                                TimeUnit.MILLISECONDS);
                            return;
                        } catch (RejectedExecutionException e) {
                            // Stopping: the refusal goes back to the client.
                        }
                    }
                    respond(ctx, request, response);
                }

                @Override
                public void operationFail(Throwable t) {
                    forwardFailed(ctx, request, master, t);
                }
            });
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            forwardFailed(ctx, request, master, e);
        } catch (Exception e) {
            forwardFailed(ctx, request, master, e);
        }
    }

    private void forwardFailed(ChannelHandlerContext ctx, RemotingCommand request, String master, Throwable t) {
        if (t instanceof RemotingTimeoutException) {
            // The master may have stored it: no answer, as the master gave none; the client's timeout decides.
            LOG.debug("a send forwarded to {} got no answer in time", master);
            return;
        }
        respond(ctx, request, RemotingCommand.createResponseCommand(ResponseCode.SERVICE_NOT_AVAILABLE, "broker "
            + broker.getBrokerConfig().getBrokerName() + " at " + broker.getBrokerAddr() + " is not its group's "
            + "master and could not forward the send to the master " + master + ": " + OneLine.of(t.toString())));
    }

    /** Writes {@code response} as the answer to {@code request} (none for a oneway send, or when it is null). */
    private static void respond(ChannelHandlerContext ctx, RemotingCommand request, RemotingCommand response) {
        if (response == null || request.isOnewayRPC()) {
            return;
        }
        response.setOpaque(request.getOpaque());
        response.markResponseType();
        ctx.channel().writeAndFlush(response);
    }

    private boolean isMaster() {
        return broker.getMessageStoreConfig().getBrokerRole() != BrokerRole.SLAVE;
    }

    private static long elapsedMs(long since) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - since);
    }

    @Override
    public boolean rejectRequest() {
        // The stock handler rejects every send on a slave before it is read (SYSTEM_BUSY); this one holds it.
        return log.node() != null && !isMaster() ? false : stock.rejectRequest();
    }
}
