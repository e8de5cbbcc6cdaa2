package dev.dledger.raft.transport;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.util.Objects;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManagerFactory;

/**
 * Mutual TLS on a node's port: every connection, peer or client, is encrypted, each side shows a certificate from its
 * key store, and each side accepts only a certificate that its trust store vouches for (a CA certificate, or the
 * self-signed certificate itself). Host names are not checked: trust comes from the trust store alone, so keep it to
 * the group's certificates.
 *
 * <p>Stores are read with {@link KeyStore#getInstance(java.io.File, char[])}, so PKCS12 and JKS both work. One file
 * may serve as both stores when every node shares one self-signed certificate.
 *
 * @param keyStore           this side's private key and certificate chain; required on a server, optional on a
 *                           client (but a node's port asks every connection for a certificate)
 * @param keyStorePassword   the password of the key store and of its key
 * @param trustStore         the certificates to trust; null means the JDK's default trust store
 * @param trustStorePassword the password of the trust store, or null
 */
public record TlsSettings(Path keyStore, String keyStorePassword, Path trustStore, String trustStorePassword) {

    public TlsSettings {
        if (keyStore != null) {
            Objects.requireNonNull(keyStorePassword, "keyStorePassword");
        }
    }

    /**
     * The server side: shows this node's certificate and requires one from every connection.
     *
     * @throws IllegalArgumentException naming the store that cannot be read and why
     */
    public SslContext serverContext() {
        if (keyStore == null) {
            throw new IllegalArgumentException("TLS needs a key store (this node's certificate) to serve a port");
        }
        try {
            return SslContextBuilder.forServer(keyManagers()).trustManager(trustManagers())
                .clientAuth(ClientAuth.REQUIRE).build();
        } catch (SSLException e) {
            throw new IllegalArgumentException("cannot set up TLS from key store " + keyStore + ": " + e.getMessage(), e);
        }
    }

    /**
     * The client side: checks the server's certificate against the trust store and shows this side's certificate
     * when a key store is set.
     *
     * @throws IllegalArgumentException naming the store that cannot be read and why
     */
    public SslContext clientContext() {
        try {
            SslContextBuilder b = SslContextBuilder.forClient().trustManager(trustManagers());
            if (keyStore != null) {
                b.keyManager(keyManagers());
            }
            return b.build();
        } catch (SSLException e) {
            throw new IllegalArgumentException("cannot set up TLS: " + e.getMessage(), e);
        }
    }

    private KeyManagerFactory keyManagers() {
        char[] password = keyStorePassword.toCharArray();
        KeyStore ks = load("key store", keyStore, password);
        try {
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, password);
            return kmf;
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("cannot use the key in TLS key store " + keyStore + ": " + e.getMessage()
                + " (the key's password must be the store's)", e);
        }
    }

    private TrustManagerFactory trustManagers() {
        KeyStore ts = trustStore == null ? null : load("trust store", trustStore,
            trustStorePassword == null ? null : trustStorePassword.toCharArray());
        try {
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ts);
            return tmf;
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("cannot use TLS trust store " + trustStore + ": " + e.getMessage(), e);
        }
    }

    private static KeyStore load(String what, Path file, char[] password) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("TLS " + what + " " + file + " is not a file");
        }
        try {
            return KeyStore.getInstance(file.toFile(), password);
        } catch (IOException | GeneralSecurityException e) {
            throw new IllegalArgumentException("cannot read TLS " + what + " " + file + ": " + e.getMessage()
                + " (a PKCS12 or JKS file and its password)", e);
        }
    }

    /** Names the files, never the passwords. */
    @Override
    public String toString() {
        return "TLS(keyStore=" + keyStore + ", trustStore=" + (trustStore == null ? "JDK default" : trustStore) + ")";
    }
}
