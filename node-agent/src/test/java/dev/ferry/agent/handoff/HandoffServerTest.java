// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.sdk.wire.Connection;
import dev.ferry.sdk.wire.Frame;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.UnixSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The agent's side of the handoff protocol against applications speaking it frame by frame. */
class HandoffServerTest {
  private Path dir;
  private Path socketPath;
  private HandoffServer server;
  private TcpSocket listener;

  @BeforeEach
  void start() throws Exception {
    dir = Files.createTempDirectory("ferry-handoff");
    socketPath = dir.resolve("handoff.sock");
    server =
        HandoffServer.start(socketPath, Duration.ofMillis(500), Duration.ofSeconds(30), 128L << 20);
    listener = TcpSocket.open(InetAddress.getLoopbackAddress());
    listener.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    listener.listen(8);
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    listener.close();
    Files.deleteIfExists(socketPath);
    Files.deleteIfExists(dir);
  }

  /** A loopback connection: the application's end (accepted) and the client's. */
  private record Conn(TcpSocket app, TcpSocket client, Connection connection) {}

  private Conn connect() throws Exception {
    TcpSocket client = TcpSocket.open(InetAddress.getLoopbackAddress());
    client.connect(listener.localAddress());
    TcpSocket app = listener.accept();
    return new Conn(app, client, new Connection(app.localAddress(), app.remoteAddress()));
  }

  private int port() throws Exception {
    return listener.localAddress().getPort();
  }

  @Test
  void freezeHandsOverTheSocketAndA64MiBStateIntact() throws Exception {
    Conn conn = connect();
    byte[] state = new byte[64 << 20];
    new Random(64).nextBytes(state);
    try (TestApp app = new TestApp(socketPath).hello("streamer").register(port())) {
      CompletableFuture<HandoffOutcome> outcome =
          CompletableFuture.supplyAsync(() -> freeze(conn.connection()));
      Frame freeze = app.next();
      assertThat(freeze.type()).isEqualTo(Frame.FREEZE);
      ByteBuffer p = ByteBuffer.wrap(freeze.payload());
      long id = p.getLong();
      assertThat(Connection.readFrom(p)).isEqualTo(conn.connection());
      app.frozen(id, conn.app().fd(), state);

      HandoffOutcome.Frozen frozen = (HandoffOutcome.Frozen) outcome.get(30, TimeUnit.SECONDS);
      assertThat(frozen.socket().localAddress()).isEqualTo(conn.connection().local());
      assertThat(frozen.socket().remoteAddress()).isEqualTo(conn.connection().remote());
      assertThat(crc(frozen.state())).isEqualTo(crc(state));
      assertThat(server.registrations()).containsKey(port());
      frozen.socket().close();
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void anApplicationThatIgnoresTheFreezeKeepsItsConnectionAndALateAnswerIsReturned()
      throws Exception {
    Conn conn = connect();
    try (TestApp app = new TestApp(socketPath).hello("sleepy").register(port())) {
      HandoffOutcome outcome = server.freeze(conn.connection());
      assertThat(outcome).isInstanceOf(HandoffOutcome.NotAnswered.class);
      assertThat(((HandoffOutcome.NotAnswered) outcome).why())
          .contains("did not answer", "within 500 ms");

      long id = ByteBuffer.wrap(app.next().payload()).getLong();
      app.frozen(id, conn.app().fd(), new byte[0]);
      Frame returned = app.next();
      assertThat(returned.type()).isEqualTo(Frame.RETURNED);
      assertThat(ByteBuffer.wrap(returned.payload()).getLong()).isEqualTo(id);

      // The connection is still the application's and still works.
      conn.app().writeFully("still mine".getBytes(StandardCharsets.US_ASCII));
      byte[] got = new byte[10];
      for (int off = 0; off < 10; ) {
        off += conn.client().read(got, off, 10 - off);
      }
      assertThat(new String(got, StandardCharsets.US_ASCII)).isEqualTo("still mine");
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void garbageGetsAnErrorAndLeavesTheAgentAndOtherApplicationsWorking() throws Exception {
    Conn conn = connect();
    try (TestApp rogue = new TestApp(socketPath);
        TestApp good = new TestApp(socketPath).hello("good").register(port())) {
      rogue.send(Frame.REGISTER, new byte[] {0, 1, 0, 80});
      assertThat(rogue.nextError()).as("anything before HELLO").isEqualTo(Frame.ERR_OUT_OF_ORDER);
      rogue.hello("rogue");
      // An ERROR from the application is logged, never answered: the next frame back is the
      // answer to the unknown type that follows it.
      rogue.send(Frame.ERROR, new byte[] {0, 2, 'n', 'o'});
      rogue.send(99, new byte[] {1, 2, 3});
      assertThat(rogue.nextError()).as("unknown type").isEqualTo(Frame.ERR_UNKNOWN_TYPE);
      rogue.send(
          Frame.REGISTER,
          ByteBuffer.allocate(4).putShort((short) 1).putShort((short) port()).array());
      assertThat(rogue.nextError()).as("somebody else's port").isEqualTo(Frame.ERR_PORT_TAKEN);
      rogue.send(Frame.BLOB, new byte[] {1, 2});
      assertThat(rogue.nextError()).as("a message cut short").isEqualTo(Frame.ERR_MALFORMED);
      UnixSocket[] pipe = UnixSocket.pair();
      rogue.send(Frame.DECLINED, ByteBuffer.allocate(8).putLong(424242).array());
      assertThat(rogue.nextError()).as("an answer to nothing").isEqualTo(Frame.ERR_UNKNOWN_REQUEST);

      // An application that hands over something other than a TCP socket.
      CompletableFuture<HandoffOutcome> outcome =
          CompletableFuture.supplyAsync(() -> freeze(conn.connection()));
      long id = ByteBuffer.wrap(good.next().payload()).getLong();
      good.frozen(id, pipe[0].fd(), new byte[0]);
      assertThat(good.nextError()).as("not a TCP socket").isEqualTo(Frame.ERR_NOT_TCP);
      assertThat(outcome.get(10, TimeUnit.SECONDS)).isInstanceOf(HandoffOutcome.NotAnswered.class);
      pipe[0].close();
      pipe[1].close();

      // A length no frame may have: the session is closed after the error.
      rogue.channel.socket().send(new byte[] {0x7f, -1, -1, -1, 6});
      assertThat(rogue.nextError()).isEqualTo(Frame.ERR_TOO_LARGE);
      assertThat(rogue.next()).as("the rogue session is closed").isNull();

      // The well-behaved application still hands its connection over.
      outcome = CompletableFuture.supplyAsync(() -> freeze(conn.connection()));
      id = ByteBuffer.wrap(good.next().payload()).getLong();
      good.frozen(id, conn.app().fd(), "state".getBytes(StandardCharsets.US_ASCII));
      HandoffOutcome.Frozen frozen = (HandoffOutcome.Frozen) outcome.get(10, TimeUnit.SECONDS);
      assertThat(new String(frozen.state(), StandardCharsets.US_ASCII)).isEqualTo("state");
      frozen.socket().close();
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void anApplicationOutsideThePodCannotTakeItsConnectionsOverHavingRegisteredThePortFirst()
      throws Exception {
    Conn conn = connect();
    try (TestApp app = new TestApp(socketPath).hello("impostor").register(port())) {
      HandoffOutcome outcome =
          takeover(conn.connection(), conn.app(), new byte[16], ourNetns() + 1);
      assertThat(outcome).isInstanceOf(HandoffOutcome.Declined.class);
      assertThat(((HandoffOutcome.Declined) outcome).reason())
          .contains("not in the pod's network namespace");
      assertThat(app.channel.socket().awaitReadable(200))
          .as("the impostor was never offered the socket or the state")
          .isFalse();
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void takeoverHandsTheSocketAndStateAndWaitsForTheApplicationToConfirm() throws Exception {
    Conn conn = connect();
    byte[] state = new byte[3 << 20];
    new Random(3).nextBytes(state);
    try (TestApp app = new TestApp(socketPath).hello("target").register(port())) {
      CompletableFuture<HandoffOutcome> outcome =
          CompletableFuture.supplyAsync(() -> takeover(conn.connection(), conn.app(), state));
      Frame takeover = app.next();
      assertThat(takeover.type()).isEqualTo(Frame.TAKEOVER);
      assertThat(takeover.fd()).isNotNegative();
      ByteBuffer p = ByteBuffer.wrap(takeover.payload());
      long id = p.getLong();
      int length = (int) p.getLong();
      assertThat(Connection.readFrom(p)).isEqualTo(conn.connection());
      ByteBuffer blob = ByteBuffer.allocate(length);
      while (blob.hasRemaining()) {
        Frame chunk = app.next();
        assertThat(chunk.type()).isEqualTo(Frame.BLOB);
        blob.put(chunk.payload(), 8, chunk.payload().length - 8);
      }
      assertThat(crc(blob.array())).isEqualTo(crc(state));
      try (TcpSocket received = TcpSocket.adopt(takeover.fd())) {
        assertThat(received.remoteAddress()).isEqualTo(conn.connection().remote());
      }
      app.send(Frame.TAKEN, ByteBuffer.allocate(8).putLong(id).array());

      HandoffOutcome.Taken taken = (HandoffOutcome.Taken) outcome.get(10, TimeUnit.SECONDS);
      taken.session().resumed(taken.requestId());
      Frame resumed = app.next();
      assertThat(resumed.type()).isEqualTo(Frame.RESUMED);
      assertThat(ByteBuffer.wrap(resumed.payload()).getLong()).isEqualTo(id);
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void aPortNobodyRegisteredHasNoApplication() throws Exception {
    Conn conn = connect();
    try {
      assertThat(server.freeze(conn.connection()))
          .isEqualTo(new HandoffOutcome.NoApplication(port()));
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  private HandoffOutcome freeze(Connection c) {
    try {
      return server.freeze(c);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private HandoffOutcome takeover(Connection c, TcpSocket socket, byte[] state) {
    return takeover(c, socket, state, ourNetns());
  }

  private HandoffOutcome takeover(Connection c, TcpSocket socket, byte[] state, long podNetns) {
    try {
      return server.takeover(c, socket, state, podNetns);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** The test applications run in this process, so in its network namespace. */
  private static long ourNetns() {
    try (NetNamespace ns = NetNamespace.current()) {
      return ns.inode();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private static long crc(byte[] data) {
    CRC32C crc = new CRC32C();
    crc.update(data);
    return crc.getValue();
  }
}
