// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.function.BiConsumer;
import java.util.logging.Logger;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * The agent's TLS: one cluster CA; agents share a certificate named {@value #AGENT_NAME}, which
 * they also present as clients to each other. Clients must present a certificate (checked by {@link
 * CallerCheck}); one the CA did not sign ends the handshake, and is logged and counted.
 */
public final class MutualTls {
  public static final String AGENT_NAME = "ferry-node-agent";
  private static final Logger LOG = Logger.getLogger(MutualTls.class.getName());

  private final Path cert;
  private final Path key;
  private final X509ExtendedTrustManager trust;
  private final BiConsumer<String, String> refused;

  /**
   * @param refused told (reason, caller) of every caller refused during the handshake
   */
  public MutualTls(Path cert, Path key, Path ca, BiConsumer<String, String> refused)
      throws IOException {
    for (var f : new Path[] {cert, key, ca}) {
      if (!Files.isReadable(f)) {
        throw new IOException(
            f
                + " is not readable: the agent needs its certificate, key and the cluster CA"
                + " (ferry.agent.tls.cert/key/ca; the chart mounts them from a Secret)");
      }
    }
    this.cert = cert;
    this.key = key;
    this.trust = trustManager(ca);
    this.refused = refused;
  }

  public SslContext serverContext() {
    try {
      return GrpcSslContexts.forServer(cert.toFile(), key.toFile())
          .trustManager(new CountingTrustManager())
          // OPTIONAL, not REQUIRE: a caller without a certificate then reaches CallerCheck, which
          // refuses it with a status it can read, a log line and a count.
          .clientAuth(ClientAuth.OPTIONAL)
          .build();
    } catch (IOException | IllegalArgumentException e) {
      throw new IllegalStateException(
          "cannot build the server TLS context from "
              + cert
              + " and "
              + key
              + ": "
              + e.getMessage(),
          e);
    }
  }

  public SslContext clientContext() {
    try {
      return GrpcSslContexts.forClient()
          .keyManager(cert.toFile(), key.toFile())
          .trustManager(trust)
          .build();
    } catch (IOException | IllegalArgumentException e) {
      throw new IllegalStateException(
          "cannot build the client TLS context from "
              + cert
              + " and "
              + key
              + ": "
              + e.getMessage(),
          e);
    }
  }

  private static X509ExtendedTrustManager trustManager(Path ca) throws IOException {
    try (InputStream in = Files.newInputStream(ca)) {
      KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
      store.load(null, null);
      int n = 0;
      for (var c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        store.setCertificateEntry("ca-" + n++, c);
      }
      if (n == 0) {
        throw new IOException(ca + " holds no certificate");
      }
      TrustManagerFactory f = TrustManagerFactory.getInstance("PKIX");
      f.init(store);
      for (TrustManager tm : f.getTrustManagers()) {
        if (tm instanceof X509ExtendedTrustManager x) {
          return x;
        }
      }
      throw new IOException("no X.509 trust manager for " + ca);
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot read the CA " + ca + ": " + e.getMessage(), e);
    }
  }

  /** The CA's trust manager, saying who it turned away. */
  private final class CountingTrustManager extends X509ExtendedTrustManager {
    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
        throws CertificateException {
      try {
        trust.checkClientTrusted(chain, authType, engine);
      } catch (CertificateException e) {
        String caller = engine.getPeerHost() + ":" + engine.getPeerPort();
        String subject = chain.length == 0 ? "none" : chain[0].getSubjectX500Principal().getName();
        LOG.warning(
            () ->
                "refused a caller from "
                    + caller
                    + ": its certificate ("
                    + subject
                    + ") is not signed by the cluster CA: "
                    + e.getMessage());
        refused.accept("untrusted-certificate", caller);
        throw e;
      }
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
        throws CertificateException {
      trust.checkClientTrusted(chain, authType, socket);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType)
        throws CertificateException {
      trust.checkClientTrusted(chain, authType);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
        throws CertificateException {
      trust.checkServerTrusted(chain, authType, engine);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
        throws CertificateException {
      trust.checkServerTrusted(chain, authType, socket);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType)
        throws CertificateException {
      trust.checkServerTrusted(chain, authType);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
      return trust.getAcceptedIssuers();
    }
  }
}
