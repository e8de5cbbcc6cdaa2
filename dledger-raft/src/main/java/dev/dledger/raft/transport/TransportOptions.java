package dev.dledger.raft.transport;

/**
 * The settings of a {@link NettyTransport}: threads, the limits that bound what one misbehaving connection can cost,
 * and the optional security of the port.
 *
 * <p>Without a group secret peers are not authenticated (any process that knows a peer id can send Raft messages),
 * as in DLedger; the transport logs a WARN at start. Without a client token anyone who reaches the port may send
 * client requests. Without TLS the traffic is plain text.
 *
 * @param ioThreads                        Netty worker threads shared by all connections; at least 1
 * @param maxFrameBytes                    the largest frame accepted or sent, length field excluded, in bytes;
 *                                         a larger one closes its connection. Default {@link #DEFAULT_MAX_FRAME_BYTES}
 * @param maxInflightRequestsPerConnection client requests one connection may have unanswered; more are answered
 *                                         OVERLOADED at once. Default {@link #DEFAULT_MAX_INFLIGHT_REQUESTS}
 * @param maxConnectionsPerAddress         inbound connections open at once from one remote IP address; more are
 *                                         refused and closed. Default {@link #DEFAULT_MAX_CONNECTIONS_PER_ADDRESS}
 * @param groupSecret                      the secret every peer of the process's groups shares, at least
 *                                         {@link #MIN_SECRET_CHARS} characters; null = peers not authenticated
 * @param clientToken                      the token a client must prove it knows, at least {@link #MIN_TOKEN_CHARS}
 *                                         characters; null = clients not authenticated
 * @param tls                              mutual TLS on the port and on outbound connections, or null for none
 * @param peerHostsOnly                    true: an inbound connection is accepted only from a host (IP address) of a
 *                                         peer of a registered group (any loopback address when a peer is on
 *                                         loopback), every other one is closed at once; default false
 * @param clientApi                        which client requests the port serves; default {@link ClientApi#OPEN}
 */
public record TransportOptions(int ioThreads, int maxFrameBytes, int maxInflightRequestsPerConnection,
                               int maxConnectionsPerAddress, String groupSecret, String clientToken, TlsSettings tls,
                               boolean peerHostsOnly, ClientApi clientApi) {

    /** Which client requests ({@link ClientProtocol}) a port serves. */
    public enum ClientApi {
        /** Every request (append, get, reads, admin), subject to the client token when one is set. */
        OPEN,
        /**
         * Only the admin requests ({@link ClientProtocol#isAdmin}: status, leadership transfer, member add/remove), and
         * only to a connection that proved the client token (which must then be set); append, get and reads are
         * refused.
         */
        ADMIN,
        /** None: every request is refused with an ERROR frame (a broker's port without an admin token). */
        OFF
    }

    /** Default largest frame: 32 MiB. */
    public static final int DEFAULT_MAX_FRAME_BYTES = 32 << 20;
    /** Default unanswered client requests per connection: 4096. */
    public static final int DEFAULT_MAX_INFLIGHT_REQUESTS = 4096;
    /** Default inbound connections per remote address: 64. */
    public static final int DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64;
    /** The shortest group secret accepted. */
    public static final int MIN_SECRET_CHARS = 16;
    /** The shortest client token accepted. */
    public static final int MIN_TOKEN_CHARS = 8;

    /**
     * Checks the values.
     *
     * @throws IllegalArgumentException naming the setting that is out of range
     */
    public TransportOptions {
        positive("ioThreads", ioThreads);
        positive("maxFrameBytes", maxFrameBytes);
        positive("maxInflightRequestsPerConnection", maxInflightRequestsPerConnection);
        positive("maxConnectionsPerAddress", maxConnectionsPerAddress);
        if (groupSecret != null && groupSecret.length() < MIN_SECRET_CHARS) {
            throw new IllegalArgumentException("the group secret has " + groupSecret.length() + " characters; use at "
                + "least " + MIN_SECRET_CHARS + " (a random string, the same on every peer)");
        }
        java.util.Objects.requireNonNull(clientApi, "clientApi");
        if (clientApi == ClientApi.ADMIN && clientToken == null) {
            throw new IllegalArgumentException("an admin-only client API needs a client token (the admin token)");
        }
        if (clientToken != null && clientToken.length() < MIN_TOKEN_CHARS) {
            throw new IllegalArgumentException("the client token has " + clientToken.length() + " characters; use at "
                + "least " + MIN_TOKEN_CHARS);
        }
    }

    private static void positive(String name, int value) {
        if (value < 1) {
            throw new IllegalArgumentException(name + " is " + value + "; it must be at least 1");
        }
    }

    /** One I/O thread, the default limits, no security (DLedger's behaviour). */
    public static TransportOptions defaults() {
        return new TransportOptions(1, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_INFLIGHT_REQUESTS,
            DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, null, null, null, false, ClientApi.OPEN);
    }

    /** A copy with {@code n} I/O threads. */
    public TransportOptions withIoThreads(int n) {
        return new TransportOptions(n, maxFrameBytes, maxInflightRequestsPerConnection, maxConnectionsPerAddress,
            groupSecret, clientToken, tls, peerHostsOnly, clientApi);
    }

    /** A copy with these limits (bytes, requests, connections). */
    public TransportOptions withLimits(int frameBytes, int inflightRequests, int connectionsPerAddress) {
        return new TransportOptions(ioThreads, frameBytes, inflightRequests, connectionsPerAddress, groupSecret,
            clientToken, tls, peerHostsOnly, clientApi);
    }

    /** A copy with this group secret (null for none). */
    public TransportOptions withGroupSecret(String secret) {
        return new TransportOptions(ioThreads, maxFrameBytes, maxInflightRequestsPerConnection,
            maxConnectionsPerAddress, secret, clientToken, tls, peerHostsOnly, clientApi);
    }

    /** A copy with this client token (null for none). */
    public TransportOptions withClientToken(String token) {
        return new TransportOptions(ioThreads, maxFrameBytes, maxInflightRequestsPerConnection,
            maxConnectionsPerAddress, groupSecret, token, tls, peerHostsOnly, clientApi);
    }

    /** A copy with this TLS set-up (null for none). */
    public TransportOptions withTls(TlsSettings settings) {
        return new TransportOptions(ioThreads, maxFrameBytes, maxInflightRequestsPerConnection,
            maxConnectionsPerAddress, groupSecret, clientToken, settings, peerHostsOnly, clientApi);
    }

    /** A copy that accepts connections from the peers' hosts only ({@code true}) or from anywhere. */
    public TransportOptions withPeerHostsOnly(boolean only) {
        return new TransportOptions(ioThreads, maxFrameBytes, maxInflightRequestsPerConnection,
            maxConnectionsPerAddress, groupSecret, clientToken, tls, only, clientApi);
    }

    /** A copy that serves these client requests; {@link ClientApi#ADMIN} needs the client token set first. */
    public TransportOptions withClientApi(ClientApi api) {
        return new TransportOptions(ioThreads, maxFrameBytes, maxInflightRequestsPerConnection,
            maxConnectionsPerAddress, groupSecret, clientToken, tls, peerHostsOnly, api);
    }

    /** Says whether a secret and token are set, never what they are. */
    @Override
    public String toString() {
        return "TransportOptions(ioThreads=" + ioThreads + ", maxFrameBytes=" + maxFrameBytes
            + ", maxInflightRequestsPerConnection=" + maxInflightRequestsPerConnection + ", maxConnectionsPerAddress="
            + maxConnectionsPerAddress + ", groupSecret=" + (groupSecret == null ? "none" : "set") + ", clientToken="
            + (clientToken == null ? "none" : "set") + ", tls=" + tls + ", peerHostsOnly=" + peerHostsOnly
            + ", clientApi=" + clientApi + ")";
    }
}
