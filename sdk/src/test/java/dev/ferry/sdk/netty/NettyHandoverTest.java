// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk.netty;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.sdk.FerryAgent;
import dev.ferry.sdk.Handover;
import dev.ferry.sys.Descriptors;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.UnixSocket;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.util.AttributeKey;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Netty epoll channels handed over and taken over on loopback, the agent's side played by the test
 * the way the agent does it: the descriptor passed over a Unix socket, detached, released.
 */
class NettyHandoverTest {
  private static final int TOTAL = 300;
  private static final InetAddress LO = InetAddress.getLoopbackAddress();

  private EventLoopGroup group;
  private final LiveChannels live = new LiveChannels();
  private final Tickers app = new Tickers();
  private final List<FrameChannel> sessions = new CopyOnWriteArrayList<>();
  private int port;

  @BeforeEach
  void serve() throws Exception {
    group = new EpollEventLoopGroup(1);
    Channel server =
        new ServerBootstrap()
            .group(group)
            .channel(EpollServerSocketChannel.class)
            .childHandler(
                new ChannelInitializer<Channel>() {
                  @Override
                  protected void initChannel(Channel ch) {
                    ch.pipeline().addLast(live, new Ticker(0));
                  }
                })
            .bind(new InetSocketAddress(LO, 0))
            .sync()
            .channel();
    port = ((InetSocketAddress) server.localAddress()).getPort();
  }

  @AfterEach
  void stop() {
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }

  @Test
  void aFrozenChannelStopsBetweenTwoEventsAndTheAgentsSocketCarriesTheStreamOn() throws Exception {
    NettyMigrationHandler adapter = new NettyMigrationHandler(live, group, app);
    try (Socket client = new Socket(LO, port)) {
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      readEvents(client, got, 20);
      Connection c = serverSide(client);
      Channel ch = live.find(c);
      assertThat(ch).as("the tracked channel of " + c).isInstanceOf(EpollSocketChannel.class);

      Handover.Give give = given(adapter.freeze(c));
      int next = ByteBuffer.wrap(give.state()).getInt();
      readUntilQuiet(client, got);
      assertThat(got.toString(StandardCharsets.US_ASCII))
          .as("everything written before the freeze, and nothing after it")
          .isEqualTo(events(0, next));

      int agents = passToSelf(give.fd());
      Descriptors.detach(give.fd());
      give.then().released();
      assertThat(ch.closeFuture().await(5, TimeUnit.SECONDS)).as("the channel closed").isTrue();
      // The close wakes await() before the close listeners run; the tracker's is one of them.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (live.find(c) != null && System.nanoTime() < deadline) {
        Thread.sleep(1);
      }
      assertThat(live.find(c)).as("no longer tracked").isNull();
      assertThat(app.released).containsExactly(ch);

      try (TcpSocket socket = TcpSocket.adopt(agents)) {
        socket.writeFully(events(next, TOTAL).getBytes(StandardCharsets.US_ASCII));
        socket.shutdownOutput();
      }
      readToEnd(client, got);
      assertThat(got.toString(StandardCharsets.US_ASCII)).isEqualTo(events(0, TOTAL));
    }
  }

  @Test
  void aChannelTheAgentDidNotTakeReadsAndWritesOnWithNothingLostOrRepeated() throws Exception {
    NettyMigrationHandler adapter = new NettyMigrationHandler(live, group, app);
    try (Socket client = new Socket(LO, port)) {
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      readEvents(client, got, 20);
      Channel ch = live.find(serverSide(client));

      Handover.Give give = given(adapter.freeze(serverSide(client)));
      assertThat(ch.isRegistered()).as("off its loop while the agent holds it").isFalse();
      give.then().kept("the move failed");

      readToEnd(client, got);
      assertThat(got.toString(StandardCharsets.US_ASCII)).isEqualTo(events(0, TOTAL));
      assertThat(app.kept).containsExactly("the move failed");
      assertThat(ch.config().isAutoRead()).isTrue();
    }
  }

  @Test
  void aFreezeThatOutlastsTheLimitIsDeclinedAndTheStreamGoesOn() throws Exception {
    NettyMigrationHandler adapter =
        new NettyMigrationHandler(live, group, app, Duration.ofMillis(100));
    app.freezeDelayMillis = 400;
    try (Socket client = new Socket(LO, port)) {
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      readEvents(client, got, 20);

      Handover answer = adapter.freeze(serverSide(client));

      assertThat(answer).isInstanceOf(Handover.Decline.class);
      assertThat(((Handover.Decline) answer).reason()).contains("within 100 ms");
      readToEnd(client, got);
      assertThat(got.toString(StandardCharsets.US_ASCII)).isEqualTo(events(0, TOTAL));
      assertThat(app.kept).singleElement().asString().contains("longer than 100 ms");
    }
  }

  @Test
  void aConnectionWithoutAChannelIsDeclinedWithTheReason() {
    NettyMigrationHandler adapter = new NettyMigrationHandler(live, group, app);
    Connection nobody =
        new Connection(new InetSocketAddress(LO, port), new InetSocketAddress(LO, 9));

    Handover answer = adapter.freeze(nobody);

    assertThat(((Handover.Decline) answer).reason()).contains("no live Netty channel for");
  }

  @Test
  void aPlainSocketTakenOverBecomesANettyChannelThatWritesOn(@TempDir Path dir) throws Exception {
    Path path = dir.resolve("handoff.sock");
    try (TcpSocket listener = TcpSocket.open(LO);
        UnixSocket agentSide = listen(listener, path)) {
      int takenPort = listener.localAddress().getPort();
      Thread session = new Thread(() -> welcome(agentSide));
      session.start();
      try (FerryAgent agent = FerryAgent.connect(path, "netty-test")) {
        LiveChannels adopted = FerryNetty.register(agent, takenPort, group, app);
        session.join(5000);
        FrameChannel agentChannel = sessions.get(0);

        try (Socket client = new Socket(LO, takenPort)) {
          TcpSocket plain = listener.accept();
          plain.writeFully(events(0, 10).getBytes(StandardCharsets.US_ASCII));
          Connection c = new Connection(plain.localAddress(), plain.remoteAddress());
          byte[] state = ByteBuffer.allocate(4).putInt(10).array();
          ByteBuffer takeover = ByteBuffer.allocate(16 + c.encodedSize()).putLong(7).putLong(4);
          c.writeTo(takeover);
          agentChannel.write(Frame.TAKEOVER, takeover.array(), plain.fd());
          // The SDK has its own copy now; ours would hold back the FIN when Netty closes its
          // channel.
          plain.close();
          agentChannel.write(Frame.BLOB, ByteBuffer.allocate(12).putLong(7).put(state).array());
          assertThat(agentChannel.read().type()).as("the server's answer").isEqualTo(Frame.TAKEN);
          agentChannel.write(Frame.RESUMED, ByteBuffer.allocate(8).putLong(7).array());

          ByteArrayOutputStream got = new ByteArrayOutputStream();
          readEvents(client, got, 11);
          assertThat(adopted.find(c))
              .as("the adopted channel, tracked")
              .isInstanceOf(EpollSocketChannel.class);
          readToEnd(client, got);
          assertThat(got.toString(StandardCharsets.US_ASCII)).isEqualTo(events(0, TOTAL));
        }
      } finally {
        // After the SDK's session: an agent that goes first would have it reconnect.
        sessions.forEach(FrameChannel::close);
      }
    }
  }

  /**
   * One session answers many freezes at once, each with its channel's socket, and lends no thread
   * per freeze: the answers are made on the event loop. (Before, each FREEZE held a thread of the
   * SDK while its loop worked, and 1,000 connections started 1,000 threads.)
   */
  @Test
  void manyFreezesAtOnceAreEachAnsweredWithTheirSocketWithoutAThreadEach(@TempDir Path dir)
      throws Exception {
    int many = 100;
    Path path = dir.resolve("handoff.sock");
    List<Socket> clients = new java.util.ArrayList<>();
    try (UnixSocket agentSide = UnixSocket.listen(path, 1)) {
      Thread session = new Thread(() -> welcome(agentSide));
      session.start();
      try (FerryAgent agent = FerryAgent.connect(path, "netty-many")) {
        agent.register(port, new NettyMigrationHandler(live, group, app));
        session.join(5000);
        FrameChannel agentChannel = sessions.get(0);
        for (int i = 0; i < many; i++) {
          clients.add(new Socket(LO, port));
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        for (Socket client : clients) {
          while (live.find(serverSide(client)) == null && System.nanoTime() < deadline) {
            Thread.sleep(1);
          }
        }
        for (int i = 0; i < many; i++) {
          Connection c = serverSide(clients.get(i));
          ByteBuffer freeze = ByteBuffer.allocate(8 + c.encodedSize()).putLong(i);
          c.writeTo(freeze);
          agentChannel.write(Frame.FREEZE, freeze.array());
        }
        java.util.Set<Long> frozen = new java.util.HashSet<>();
        while (frozen.size() < many) {
          Frame f = agentChannel.read();
          if (f.type() == Frame.FROZEN) {
            assertThat(f.fd()).as("the channel's socket comes with its answer").isNotNegative();
            Descriptors.close(f.fd());
            frozen.add(ByteBuffer.wrap(f.payload()).getLong());
          } else {
            assertThat(f.type()).as("FROZEN and its BLOB, nothing else").isEqualTo(Frame.BLOB);
          }
        }
        assertThat(frozen).hasSize(many);
        long handoffThreads =
            Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals("ferry-handoff-netty-many"))
                .count();
        // Not one per freeze. A few are the session's own: its warm-ups (OwnSockets,
        // HandoverRehearsal) run on the same pool when it opens, and on a busy machine may still
        // hold a thread each when the freezes come (3 seen beside a benchmark).
        assertThat(handoffThreads).as("the SDK's threads for this session").isLessThanOrEqualTo(5);
      } finally {
        sessions.forEach(FrameChannel::close);
        for (Socket client : clients) {
          client.close();
        }
      }
    }
  }

  private static UnixSocket listen(TcpSocket tcp, Path unix) throws Exception {
    tcp.setReuseAddress();
    tcp.bind(new InetSocketAddress(LO, 0));
    tcp.listen(1);
    return UnixSocket.listen(unix, 1);
  }

  /** The agent's end of HELLO and REGISTER, for one session. */
  private void welcome(UnixSocket listening) {
    try {
      FrameChannel agent = new FrameChannel(listening.accept());
      assertThat(agent.read().type()).isEqualTo(Frame.HELLO);
      agent.write(
          Frame.WELCOME, ByteBuffer.allocate(6).putShort((short) 1).putInt(1 << 20).array());
      Frame register = agent.read();
      assertThat(register.type()).isEqualTo(Frame.REGISTER);
      agent.write(Frame.REGISTERED, register.payload());
      sessions.add(agent);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static Handover.Give given(Handover answer) {
    if (answer instanceof Handover.Decline no) {
      throw new AssertionError("the freeze was declined: " + no.reason());
    }
    return (Handover.Give) answer;
  }

  private static String events(int from, int to) {
    StringBuilder s = new StringBuilder();
    for (int i = from; i < to; i++) {
      s.append("event ").append(i).append('\n');
    }
    return s.toString();
  }

  /** The server's end of the client's connection, as the agent names it. */
  private static Connection serverSide(Socket client) {
    return new Connection(
        (InetSocketAddress) client.getRemoteSocketAddress(),
        (InetSocketAddress) client.getLocalSocketAddress());
  }

  private static void readEvents(Socket client, ByteArrayOutputStream got, int events)
      throws IOException {
    client.setSoTimeout(10_000);
    InputStream in = client.getInputStream();
    while (got.toString(StandardCharsets.US_ASCII).split("\n", -1).length <= events) {
      int b = in.read();
      assertThat(b).as("the stream ended early").isNotNegative();
      got.write(b);
    }
  }

  private static void readUntilQuiet(Socket client, ByteArrayOutputStream got) throws IOException {
    client.setSoTimeout(300);
    byte[] buf = new byte[4096];
    try {
      for (int n; (n = client.getInputStream().read(buf)) > 0; ) {
        got.write(buf, 0, n);
      }
      throw new AssertionError("the stream ended instead of pausing");
    } catch (SocketTimeoutException quiet) {
      // nothing more came: the writes stopped
    }
  }

  private static void readToEnd(Socket client, ByteArrayOutputStream got) throws IOException {
    client.setSoTimeout(10_000);
    got.write(client.getInputStream().readAllBytes());
  }

  private static int passToSelf(int fd) throws Exception {
    UnixSocket[] pair = UnixSocket.pair();
    try {
      pair[0].send(new byte[] {1}, fd);
      int[] fds = pair[1].receive(1, 1).fds();
      assertThat(fds).hasSize(1);
      return fds[0];
    } finally {
      pair[0].close();
      pair[1].close();
    }
  }

  private static final AttributeKey<Ticker> TICKER = AttributeKey.valueOf("ticker");

  /** A server that writes "event N\n" every millisecond up to {@link #TOTAL}, then closes. */
  private static final class Tickers implements MovableChannels {
    final List<Channel> released = new CopyOnWriteArrayList<>();
    final List<String> kept = new CopyOnWriteArrayList<>();
    volatile long freezeDelayMillis;

    @Override
    public byte[] freeze(Channel ch) throws Exception {
      Thread.sleep(freezeDelayMillis); // a server slow to stop, holding up its loop
      return ch.attr(TICKER).get().pause();
    }

    @Override
    public ChannelHandler takeover(Connection c, byte[] state) {
      return new Ticker(ByteBuffer.wrap(state).getInt());
    }

    @Override
    public void released(Channel ch) {
      released.add(ch);
    }

    @Override
    public void kept(Channel ch, String why) {
      kept.add(why);
      ch.attr(TICKER).get().resume();
    }
  }

  /** One channel's writer; everything on its event loop. */
  private static final class Ticker extends ChannelInboundHandlerAdapter {
    private int next;
    private Channel ch;
    private ScheduledFuture<?> tick;

    Ticker(int next) {
      this.next = next;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      ch = ctx.channel();
      ch.attr(TICKER).set(this);
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      tick();
      ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ReferenceCountUtil.release(msg);
    }

    private void tick() {
      if (next == TOTAL) {
        ch.close();
        return;
      }
      ch.writeAndFlush(Unpooled.copiedBuffer(events(next, next + 1), StandardCharsets.US_ASCII));
      next++;
      tick = ch.eventLoop().schedule(this::tick, 1, TimeUnit.MILLISECONDS);
    }

    byte[] pause() {
      tick.cancel(false);
      return ByteBuffer.allocate(4).putInt(next).array();
    }

    void resume() {
      tick = ch.eventLoop().schedule(this::tick, 1, TimeUnit.MILLISECONDS);
    }
  }
}
