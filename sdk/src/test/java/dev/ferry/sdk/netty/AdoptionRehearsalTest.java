// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk.netty;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.protocol.Connection;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollEventLoopGroup;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class AdoptionRehearsalTest {
  private final EventLoopGroup group = new EpollEventLoopGroup(1);
  private final LiveChannels live = new LiveChannels();
  private final NettyMigrationHandler adapter =
      new NettyMigrationHandler(live, group, new NoServer());

  @AfterEach
  void stop() {
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }

  @Test
  void theRehearsalRunsTheAdoptionEndToEndAndLeavesNothingOpen() throws Exception {
    adapter.rehearseAdoption().get(30, TimeUnit.SECONDS); // first-use descriptors come first
    long before = openDescriptors();

    for (int i = 0; i < 20; i++) {
      // Done only once the SDK's end read both answers and the channel's end of stream.
      adapter.rehearseAdoption().get(30, TimeUnit.SECONDS);
    }

    // Three descriptors a run (listener, both ends): 20 to 60 more if any stayed open. A little
    // slack for what another thread of the test JVM may open meanwhile.
    assertThat(openDescriptors()).isLessThan(before + 10);
    // The adopted channel went through the tracker, as a moved socket's does, and left it.
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (live.size() > 0 && System.nanoTime() < until) {
      Thread.sleep(10);
    }
    assertThat(live.size()).isZero();
  }

  @Test
  void aRehearsalThatCannotAdoptSaysSoAndLeavesNothingOpen() throws Exception {
    adapter.rehearseAdoption().get(30, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    long before = openDescriptors();

    // The group is gone: the channel cannot be registered, Netty closes it, and the SDK's end
    // reads an end of stream instead of the answers.
    assertThatThrownBy(() -> adapter.rehearseAdoption().get(30, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .hasMessageContaining("other bytes than it was sent");

    assertThat(openDescriptors()).isLessThan(before + 2);
  }

  private static long openDescriptors() throws IOException {
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      return fds.count();
    }
  }

  /** The rehearsal never calls the server: its channel has the rehearsal's own handler. */
  private static final class NoServer implements MovableChannels {
    @Override
    public byte[] freeze(Channel channel) {
      throw new AssertionError("the rehearsal froze a channel");
    }

    @Override
    public ChannelHandler takeover(Connection connection, byte[] state) {
      throw new AssertionError("the rehearsal asked the server to take over");
    }

    @Override
    public void kept(Channel channel, String why) {
      throw new AssertionError("the rehearsal kept a channel");
    }
  }
}
