// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk.netty;

import dev.ferry.protocol.Connection;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;

/**
 * What a Netty server on the epoll transport does when one of its channels moves; the Netty
 * counterpart of {@link dev.ferry.sdk.MigrationHandler}, driven by {@link NettyMigrationHandler}.
 */
public interface MovableChannels {

  /**
   * The agent wants this channel: stop its stream between two events and return the state to hand
   * over, or null to keep the channel (its stream has just ended, say); an exception keeps it too,
   * with the exception's message as the reason.
   *
   * <p>Runs on the channel's event loop, with autoRead already off. What the server has written
   * until it returns is flushed into the kernel before the socket is handed over; after it returns
   * with a state the server writes nothing more to the channel unless {@link #kept} says so.
   */
  byte[] freeze(Channel channel) throws Exception;

  /**
   * A connection arrives with the state its old server handed over: check the state and return the
   * handler to install on the channel that will carry it (a {@link
   * io.netty.channel.ChannelInitializer}, say), or throw to decline with the exception's message.
   *
   * <p>Runs on an SDK thread; the channel does not exist yet. Once the socket is live the adapter
   * wraps it in an {@link io.netty.channel.epoll.EpollSocketChannel}, adds its {@link LiveChannels}
   * and this handler, and registers the channel: from {@code channelActive} on, the handler may
   * write.
   */
  ChannelHandler takeover(Connection connection, byte[] state) throws Exception;

  /**
   * The channel's connection lives elsewhere now; the adapter closes the channel once this returns.
   * Runs on the channel's event loop. The channel was taken off its loop at the freeze, so its
   * close completes {@link Channel#closeFuture()} but fires no {@code channelInactive}: whatever
   * the server cleans up at the end of a stream, it cleans up here too.
   */
  default void released(Channel channel) {}

  /**
   * The channel stays here after a freeze that returned a state: the agent did not take it, or the
   * adapter gave up waiting for the flush. autoRead is on again: carry on writing. Runs on the
   * channel's event loop.
   */
  void kept(Channel channel, String why);
}
