// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import io.grpc.ServerCredentials;
import io.grpc.netty.GrpcHttp2ConnectionHandler;
import io.grpc.netty.InternalNettyServerCredentials;
import io.grpc.netty.InternalProtocolNegotiator;
import io.grpc.netty.InternalProtocolNegotiators;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.ApplicationProtocolNegotiator;
import io.netty.handler.ssl.SslContext;
import io.netty.util.AsciiString;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.List;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSessionContext;

/**
 * gRPC's server TLS, with each connection's TLS engine made knowing the caller's address, so that
 * the trust manager can name whom it refuses ({@code SSLEngine.getPeerHost()}/{@code
 * getPeerPort()}).
 *
 * <p>Why this detour: gRPC makes a server's engines with {@code SslContext.newEngine(alloc)}, which
 * leaves the peer unknown, and a refused handshake was logged as {@code from null:-1}. Here each
 * connection gets gRPC's own TLS handler, built (when the connection's pipeline is set up, so the
 * address is known) over a context whose engines are made with {@code newEngine(alloc, host,
 * port)}. Everything else (ALPN, ciphers, the handshake itself) is gRPC's and Netty's unchanged.
 * The {@code Internal*} classes are gRPC's supported hooks for custom negotiation.
 */
final class AddressedServerTls implements InternalProtocolNegotiator.ProtocolNegotiator {
  private static final AsciiString HTTPS = AsciiString.of("https");

  private final SslContext context;

  private AddressedServerTls(SslContext context) {
    this.context = context;
  }

  /** Server credentials for {@code NettyServerBuilder.forAddress(address, credentials)}. */
  static ServerCredentials credentials(SslContext context) {
    return InternalNettyServerCredentials.create(new AddressedServerTls(context));
  }

  @Override
  public AsciiString scheme() {
    return HTTPS;
  }

  @Override
  public ChannelHandler newHandler(GrpcHttp2ConnectionHandler grpcHandler) {
    return new ChannelInboundHandlerAdapter() {
      @Override
      public void handlerAdded(ChannelHandlerContext ctx) {
        SslContext addressed = new Addressed(context, ctx.channel().remoteAddress());
        ChannelHandler tls =
            InternalProtocolNegotiators.serverTls(addressed).newHandler(grpcHandler);
        ctx.pipeline().replace(this, null, tls);
      }
    };
  }

  @Override
  public void close() {}

  /** {@code context}, making engines that know the peer at {@code address}. */
  private static final class Addressed extends SslContext {
    private final SslContext context;
    private final String host;
    private final int port;

    Addressed(SslContext context, SocketAddress address) {
      this.context = context;
      if (address instanceof InetSocketAddress a) {
        this.host = a.getAddress() == null ? a.getHostString() : a.getAddress().getHostAddress();
        this.port = a.getPort();
      } else {
        this.host = String.valueOf(address);
        this.port = -1;
      }
    }

    @Override
    public SSLEngine newEngine(ByteBufAllocator alloc) {
      return context.newEngine(alloc, host, port);
    }

    @Override
    public SSLEngine newEngine(ByteBufAllocator alloc, String peerHost, int peerPort) {
      return context.newEngine(alloc, peerHost, peerPort);
    }

    @Override
    public boolean isClient() {
      return context.isClient();
    }

    @Override
    public List<String> cipherSuites() {
      return context.cipherSuites();
    }

    @Override
    @SuppressWarnings("deprecation")
    public ApplicationProtocolNegotiator applicationProtocolNegotiator() {
      return context.applicationProtocolNegotiator();
    }

    @Override
    public SSLSessionContext sessionContext() {
      return context.sessionContext();
    }
  }
}
