// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk.netty;

import dev.ferry.sdk.FerryAgent;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.Epoll;
import java.io.IOException;

/**
 * Makes a Netty server's connections movable in one call:
 *
 * <pre>{@code
 * LiveChannels live = FerryNetty.register(agent, 8080, workers, server);
 * bootstrap.childHandler(new ChannelInitializer<Channel>() {
 *   protected void initChannel(Channel ch) {
 *     ch.pipeline().addLast(live, new MyHandler());
 *   }
 * });
 * }</pre>
 */
public final class FerryNetty {
  private FerryNetty() {}

  /**
   * Registers {@code port} with the agent for a server on Netty's epoll transport, and runs the
   * adoption of a moved socket once on a loopback connection of the SDK's own, in the background,
   * so that the server's first takeover finds Netty's code loaded.
   *
   * @param group where channels that arrive are registered: the server's child group
   * @return the tracker to add to every child pipeline; channels without it cannot move
   * @throws IOException when the agent refuses the port
   */
  public static LiveChannels register(
      FerryAgent agent, int port, EventLoopGroup group, MovableChannels app) throws IOException {
    LiveChannels live = new LiveChannels();
    NettyMigrationHandler handler = new NettyMigrationHandler(live, group, app);
    agent.register(port, handler);
    if (Epoll.isAvailable()) {
      // In the background: the server starts serving meanwhile. A takeover that comes first is
      // served as before, only colder.
      handler.rehearseAdoption();
    }
    return live;
  }
}
