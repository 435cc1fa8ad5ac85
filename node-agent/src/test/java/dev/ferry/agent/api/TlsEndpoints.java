// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.api;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import java.net.InetSocketAddress;
import java.security.cert.X509Certificate;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A TLS server and client on real sockets, through Netty's SslHandler as gRPC uses it, each telling
 * which certificate the other side presented in its handshake.
 */
final class TlsEndpoints implements AutoCloseable {
  private static final long WAIT_SECONDS = 30;

  private final EventLoopGroup group = new NioEventLoopGroup(2);
  private final BlockingQueue<Object> clientsSeen = new LinkedBlockingQueue<>();

  /** Serves TLS with {@code context} on a loopback port; returns the port. */
  int serve(SslContext context) throws InterruptedException {
    Channel server =
        new ServerBootstrap()
            .group(group)
            .channel(NioServerSocketChannel.class)
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    SslHandler tls = context.newHandler(ch.alloc());
                    ch.pipeline().addLast(tls, new Recorder(tls));
                  }
                })
            .bind("127.0.0.1", 0)
            .sync()
            .channel();
    return ((InetSocketAddress) server.localAddress()).getPort();
  }

  /**
   * Connects with {@code context} and completes a handshake; returns the server's certificate.
   * Fails with the handshake's error.
   */
  X509Certificate connect(SslContext context, int port) throws Exception {
    SslHandler[] tls = new SslHandler[1];
    Channel ch =
        new Bootstrap()
            .group(group)
            .channel(NioSocketChannel.class)
            .handler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel c) {
                    tls[0] = context.newHandler(c.alloc(), "127.0.0.1", port);
                    c.pipeline().addLast(tls[0]);
                  }
                })
            .connect("127.0.0.1", port)
            .sync()
            .channel();
    try {
      tls[0].handshakeFuture().get(WAIT_SECONDS, TimeUnit.SECONDS);
      return (X509Certificate) tls[0].engine().getSession().getPeerCertificates()[0];
    } finally {
      ch.close().sync();
    }
  }

  /**
   * The certificate the server saw from its next client, or the error that ended that client's
   * handshake (as an exception object).
   */
  Object nextClient() throws InterruptedException {
    Object seen = clientsSeen.poll(WAIT_SECONDS, TimeUnit.SECONDS);
    if (seen == null) {
      throw new AssertionError("no client finished a handshake in " + WAIT_SECONDS + "s");
    }
    return seen;
  }

  @Override
  public void close() {
    group.shutdownGracefully(0, 5, TimeUnit.SECONDS).syncUninterruptibly();
  }

  private final class Recorder extends ChannelInboundHandlerAdapter {
    private final SslHandler tls;

    Recorder(SslHandler tls) {
      this.tls = tls;
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
      if (evt instanceof SslHandshakeCompletionEvent done) {
        if (!done.isSuccess()) {
          clientsSeen.add(done.cause());
        } else {
          var peer = tls.engine().getSession().getPeerCertificates();
          clientsSeen.add(peer[0]);
        }
      }
      super.userEventTriggered(ctx, evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }
}
