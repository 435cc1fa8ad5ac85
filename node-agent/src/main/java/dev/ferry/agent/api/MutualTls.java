// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.tls.ReloadingTls;
import dev.ferry.protocol.AgentProof;
import io.grpc.ServerCredentials;
import io.grpc.netty.GrpcSslContexts;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.logging.Logger;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * The agent's TLS: one cluster CA; agents share a certificate named {@value #AGENT_NAME}, which
 * they also present as clients to each other. Clients must present a certificate (checked by {@link
 * CallerCheck}); one the CA did not accept ends the handshake with the TLS alert that says why
 * ({@code unknown_ca}, {@code bad_certificate}, {@code certificate_expired}), and is logged with
 * the caller's address and counted. The files are read again when they change ({@link
 * ReloadingTls}): a renewed certificate or CA is used by the server and the peer client from the
 * next connection on, with no restart.
 */
public final class MutualTls {
  public static final String AGENT_NAME = "ferry-node-agent";
  private static final Logger LOG = Logger.getLogger(MutualTls.class.getName());

  private final Path cert;
  private final Path key;
  private final ReloadingTls files;
  private final X509ExtendedTrustManager trust;
  private final BiConsumer<String, String> refused;
  private volatile SslContext client;

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
    try {
      this.files = new ReloadingTls(new TlsFiles(ca, cert, key));
    } catch (IllegalArgumentException e) {
      throw new IOException(e.getMessage(), e);
    }
    this.trust = files.trustManager();
    this.refused = refused;
  }

  /** The CA this agent trusts now: for the plans a move carries, as for its TLS callers. */
  public X509ExtendedTrustManager trust() {
    return trust;
  }

  /**
   * The key the agent proves itself with to the applications on its node (handoff protocol version
   * 3): its TLS certificate's, as presented now.
   */
  public AgentProof.Key proofKey() {
    java.security.KeyStore.PrivateKeyEntry own = files.ownKey();
    List<X509Certificate> chain = new ArrayList<>();
    for (var c : own.getCertificateChain()) {
      chain.add((X509Certificate) c);
    }
    return new AgentProof.Key(own.getPrivateKey(), chain);
  }

  /**
   * The API server's TLS, for {@code NettyServerBuilder.forAddress(address, credentials)}: as
   * {@link #serverContext()}, and a refused caller is logged with its address ({@link
   * AddressedServerTls}).
   */
  public ServerCredentials serverCredentials() {
    return AddressedServerTls.credentials(serverContext());
  }

  public SslContext serverContext() {
    try {
      return GrpcSslContexts.configure(SslContextBuilder.forServer(files.keyManager()))
          .trustManager(new CountingTrustManager())
          // OPTIONAL, not REQUIRE: a caller without a certificate then reaches CallerCheck, which
          // refuses it with a status it can read, a log line and a count.
          .clientAuth(ClientAuth.OPTIONAL)
          .build();
    } catch (SSLException e) {
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

  /** The context of the agent's calls on other agents: one for all of them. */
  public SslContext clientContext() {
    SslContext c = client;
    if (c == null) {
      synchronized (this) {
        if (client == null) {
          try {
            client =
                GrpcSslContexts.forClient()
                    .keyManager(files.keyManager())
                    .trustManager(trust)
                    .build();
          } catch (SSLException e) {
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
        c = client;
      }
    }
    return c;
  }

  /** The CA's trust manager, saying who it turned away. */
  private final class CountingTrustManager extends X509ExtendedTrustManager {
    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
        throws CertificateException {
      try {
        trust.checkClientTrusted(chain, authType, engine);
      } catch (CertificateException e) {
        CertificateRefusal why = CertificateRefusal.of(e);
        String caller = engine.getPeerHost() + ":" + engine.getPeerPort();
        String subject = chain.length == 0 ? "none" : chain[0].getSubjectX500Principal().getName();
        LOG.warning(
            () ->
                "refused a caller from "
                    + caller
                    + " ("
                    + why.alert()
                    + "): its certificate ("
                    + subject
                    + ") was not accepted by the cluster CA: "
                    + e.getMessage());
        refused.accept(why.reason(), caller);
        throw why.toThrow(e);
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
