package dev.dledger.raft.transport;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Objects;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The challenge-response that opens a connection when the port is secured: both sides prove they know a shared key
 * (the group secret between peers, the client token for a client) without sending it.
 *
 * <pre>
 *   connecting side  HELLO      role, clientNonce, from, to          (frame group = the group)
 *   listening side   CHALLENGE  serverNonce, HMAC(key, "server" transcript)   or ERROR and close
 *   connecting side  AUTH       HMAC(key, "client" transcript)                or close
 *   listening side   (nothing when it matches; ERROR and close when not)
 * </pre>
 *
 * <p>The transcript is role, both 32-byte nonces, group, from and to, each length-prefixed, so a proof is good for one
 * connection, one direction and one pair of ids only: it cannot be replayed, reflected or moved to another node. The
 * MAC is HMAC-SHA256; proofs are compared in constant time. Frames after AUTH may follow at once: the listening side
 * reads a connection's frames in order, so it checks AUTH before it looks at them. The connecting side sends AUTH even
 * when the CHALLENGE's proof is wrong, so that the listening side refuses and logs it too, and then uses the connection
 * for nothing.
 */
public final class Handshake {

    /** Bytes of each side's random nonce. */
    public static final int NONCE_BYTES = 32;
    /** Every refusal of a handshake or of an unauthenticated frame starts with this, so callers can tell it apart. */
    public static final String REFUSAL_PREFIX = "authentication failed: ";

    /**
     * Every refusal of a client request the port does not serve to this client (its client API is off, or admin only)
     * starts with this; like {@link #REFUSAL_PREFIX} it is final, a client does not retry it elsewhere.
     */
    public static final String NOT_SERVED_PREFIX = "not served: ";

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final int MAX_ID_BYTES = 255;

    /** Who opens the connection. */
    public enum Role {
        /** Another node of the group; the key is the group secret. */
        PEER(1),
        /** A client; the key is the client token. */
        CLIENT(2);

        private final int code;

        Role(int code) {
            this.code = code;
        }

        static Role of(byte code) {
            for (Role r : values()) {
                if (r.code == code) {
                    return r;
                }
            }
            throw new CodecException("unknown handshake role " + code);
        }
    }

    /**
     * The opening frame's body.
     *
     * @param role        who connects
     * @param clientNonce {@link #NONCE_BYTES} random bytes of the connecting side
     * @param from        the connecting node's id (a client: any label)
     * @param to          the id of the node it means to reach
     */
    public record Hello(Role role, byte[] clientNonce, String from, String to) {

        public Hello {
            Objects.requireNonNull(role, "role");
            Objects.requireNonNull(from, "from");
            Objects.requireNonNull(to, "to");
            if (clientNonce.length != NONCE_BYTES) {
                throw new CodecException("handshake nonce of " + clientNonce.length + " bytes, not " + NONCE_BYTES);
            }
        }

        /** The body bytes. */
        public byte[] encode() {
            return new WireWriter(64 + from.length() + to.length()).writeByte(role.code).writeBytes(clientNonce)
                .writeString(from).writeString(to).toByteArray();
        }

        /**
         * Reads a body.
         *
         * @throws CodecException if it is malformed
         */
        public static Hello decode(byte[] body) {
            WireReader r = new WireReader(ByteBuffer.wrap(body));
            Role role = Role.of(r.readByte("role"));
            byte[] nonce = r.readBytes("clientNonce");
            String from = r.readString("from", MAX_ID_BYTES);
            String to = r.readString("to", MAX_ID_BYTES);
            return new Hello(role, nonce, from == null ? "" : from, to == null ? "" : to);
        }
    }

    /**
     * The listening side's answer.
     *
     * @param serverNonce {@link #NONCE_BYTES} random bytes of the listening side
     * @param serverProof its proof over the transcript
     */
    public record Challenge(byte[] serverNonce, byte[] serverProof) {

        /** The body bytes. */
        public byte[] encode() {
            return new WireWriter(80).writeBytes(serverNonce).writeBytes(serverProof).toByteArray();
        }

        /**
         * Reads a body.
         *
         * @throws CodecException if it is malformed
         */
        public static Challenge decode(byte[] body) {
            WireReader r = new WireReader(ByteBuffer.wrap(body));
            byte[] nonce = r.readBytes("serverNonce");
            if (nonce.length != NONCE_BYTES) {
                throw new CodecException("handshake nonce of " + nonce.length + " bytes, not " + NONCE_BYTES);
            }
            return new Challenge(nonce, r.readBytes("serverProof"));
        }
    }

    private Handshake() {
    }

    /** {@link #NONCE_BYTES} fresh random bytes. */
    public static byte[] nonce() {
        byte[] n = new byte[NONCE_BYTES];
        RANDOM.nextBytes(n);
        return n;
    }

    /**
     * The proof one side sends.
     *
     * @param key         the shared key (group secret or client token)
     * @param server      true for the listening side's proof, false for the connecting side's
     * @param group       the group of the HELLO frame
     * @param hello       the connecting side's opening
     * @param serverNonce the listening side's nonce
     */
    public static byte[] proof(String key, boolean server, String group, Hello hello, byte[] serverNonce) {
        byte[] transcript = new WireWriter(160).writeString(server ? "dledger-raft server" : "dledger-raft client")
            .writeByte(hello.role().code).writeBytes(hello.clientNonce()).writeBytes(serverNonce).writeString(group)
            .writeString(hello.from()).writeString(hello.to()).toByteArray();
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            return mac.doFinal(transcript);
        } catch (GeneralSecurityException e) {
            // Every Java 17 runtime must provide HmacSHA256 (Java SE security standard algorithms).
            throw new IllegalStateException("HmacSHA256 is not available: " + e.getMessage(), e);
        }
    }

    /** Compares a received proof with the expected one in constant time. */
    public static boolean matches(byte[] expected, byte[] received) {
        return MessageDigest.isEqual(expected, received);
    }
}
