// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.client;

import dev.ferry.api.tls.ReloadingTls;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.SslContext;
import javax.net.ssl.SSLException;

/** Channels to node-agents, over mutual TLS. */
public final class AgentChannels {
  /**
   * The name in every agent's certificate. Agents are reached by node IP, which the certificate
   * cannot list on a cluster whose nodes come and go, so callers check this name instead.
   */
  public static final String AGENT_NAME = "ferry-node-agent";

  /** Agents send at most a status per call; transfers stream in 1 MiB chunks. */
  private static final int MAX_INBOUND = 4 << 20;

  private AgentChannels() {}

  /**
   * A channel to the agent at {@code target} ({@code HOST:PORT}), presenting {@code tls}'s
   * certificate. Connects lazily, on the first call.
   */
  public static ManagedChannel open(String target, TlsFiles tls) {
    checkTarget(target);
    return open(target, context(tls));
  }

  /** As {@link #open(String, TlsFiles)}, with a context shared by many channels. */
  public static ManagedChannel open(String target, SslContext context) {
    checkTarget(target);
    return NettyChannelBuilder.forTarget(target)
        .overrideAuthority(AGENT_NAME)
        .sslContext(context)
        .maxInboundMessageSize(MAX_INBOUND)
        .build();
  }

  /**
   * The client side of mutual TLS, trusting only the Ferry CA. The files are read again when they
   * change (a renewed certificate, {@link ReloadingTls}): each new connection presents and trusts
   * what they hold then.
   */
  public static SslContext context(TlsFiles tls) {
    ReloadingTls files = new ReloadingTls(tls);
    try {
      return GrpcSslContexts.forClient()
          .keyManager(files.keyManager())
          .trustManager(files.trustManager())
          .build();
    } catch (SSLException e) {
      throw new IllegalStateException(
          "cannot build the client TLS context from " + tls + ": " + e.getMessage(), e);
    }
  }

  /** Fails on anything but HOST:PORT, naming what it got. */
  public static String checkTarget(String target) {
    if (target == null || !target.matches("[A-Za-z0-9.:\\[\\]-]+:[0-9]{1,5}")) {
      throw new IllegalArgumentException(
          "an agent address must be HOST:PORT (e.g. 10.0.1.17:9443), got '" + target + "'");
    }
    return target;
  }
}
