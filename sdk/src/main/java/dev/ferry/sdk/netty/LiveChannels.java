// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk.netty;

import dev.ferry.protocol.Connection;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The server's live channels by connection, so that a freeze from the agent finds its channel. Add
 * the one instance to every child pipeline; a channel leaves when it closes.
 */
@ChannelHandler.Sharable
public final class LiveChannels extends ChannelInboundHandlerAdapter {
  private final Map<Connection, Channel> channels = new ConcurrentHashMap<>();

  /** The live channel of {@code c}, or null. */
  public Channel find(Connection c) {
    return channels.get(c);
  }

  public int size() {
    return channels.size();
  }

  /**
   * The connection of a TCP channel as the agent names it: an IPv4 client of a dual-stack socket
   * with IPv4 addresses, not IPv4-mapped IPv6 ones.
   *
   * @throws IllegalArgumentException for a channel that is not connected over TCP/IP
   */
  public static Connection connection(Channel ch) {
    return new Connection(inet(ch.localAddress()), inet(ch.remoteAddress()));
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    // Added to a channel that is already connected, channelActive will not come again.
    if (ctx.channel().isActive()) {
      track(ctx.channel());
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    track(ctx.channel());
    ctx.fireChannelActive();
  }

  private void track(Channel ch) {
    if (ch.localAddress() instanceof InetSocketAddress
        && ch.remoteAddress() instanceof InetSocketAddress) {
      Connection c = connection(ch);
      if (channels.put(c, ch) != ch) {
        ch.closeFuture().addListener(closed -> channels.remove(c, ch));
      }
    }
  }

  private static InetSocketAddress inet(SocketAddress a) {
    if (!(a instanceof InetSocketAddress inet) || inet.getAddress() == null) {
      throw new IllegalArgumentException("not a TCP/IP address: " + a);
    }
    if (inet.getAddress() instanceof Inet6Address v6) {
      try {
        // getByAddress turns ::ffff:a.b.c.d into an Inet4Address and keeps any other address.
        InetAddress plain = InetAddress.getByAddress(v6.getAddress());
        if (!(plain instanceof Inet6Address)) {
          return new InetSocketAddress(plain, inet.getPort());
        }
      } catch (UnknownHostException impossible) {
        throw new AssertionError(impossible);
      }
    }
    return inet;
  }
}
