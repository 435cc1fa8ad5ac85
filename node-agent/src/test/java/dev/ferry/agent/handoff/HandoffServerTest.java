// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.sys.Descriptors;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
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
    try (var files = Files.list(dir)) {
      for (Path f : files.toList()) {
        Files.deleteIfExists(f);
      }
    }
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

  /** Waits (as long as the test's own timeout allows) until no session holds the port. */
  private void awaitUnregistered(int port) throws InterruptedException {
    while (server.registrations(ourNetns()).containsKey(port)) {
      Thread.sleep(5);
    }
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
      assertThat(server.registrations(ourNetns())).containsKey(port());
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
      HandoffOutcome outcome = server.freeze(conn.connection(), ourNetns());
      assertThat(outcome).isInstanceOf(HandoffOutcome.NotAnswered.class);
      assertThat(((HandoffOutcome.NotAnswered) outcome).why())
          .contains("sent nothing for", "did not answer");

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
      assertThat(server.freeze(conn.connection(), ourNetns()))
          .isEqualTo(new HandoffOutcome.NoApplication(port()));
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void awaitingARegistrationReturnsWhenTheApplicationRegistersAndNamesThePortsThatNeverCame()
      throws Exception {
    // An agent that restarted waits for its applications to open their sessions again.
    long far = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    int port = port();
    CompletableFuture<java.util.Set<Integer>> waiting =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return server.awaitRegistered(ourNetns(), List.of(port), far);
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              }
            });
    Thread.sleep(200);
    assertThat(waiting).as("nobody registered the port yet").isNotDone();
    try (TestApp app = new TestApp(socketPath).hello("late").register(port())) {
      assertThat(waiting.get(30, TimeUnit.SECONDS)).as("ports still missing").isEmpty();

      int never = port() == 65535 ? 1 : port() + 1;
      long soon = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(100);
      assertThat(server.awaitRegistered(ourNetns(), List.of(port(), never), soon))
          .as("a port nobody registers, at the deadline")
          .containsExactly(never);
      assertThat(server.awaitRegistered(ourNetns() + 1, List.of(port()), soon))
          .as("registered, but from another network namespace than the pod's")
          .containsExactly(port());
    }
  }

  @Test
  void aVersion1ApplicationIsWelcomedWithVersion1AndAVersion2OneWithVersion2() throws Exception {
    try (TestApp v1 = new TestApp(socketPath).hello("old", 1);
        TestApp v2 = new TestApp(socketPath).hello("new", 2)) {
      v1.register(port());
      assertThat(server.registrations(ourNetns()).get(port()).version()).isEqualTo(1);
    }
  }

  @Test
  void aHelloWithAnUnknownVersionGetsUnsupportedVersionAndTheSessionIsClosed() throws Exception {
    for (int version : new int[] {0, Frame.VERSION + 1, 65535}) {
      try (TestApp app = new TestApp(socketPath)) {
        app.sendHello("from-the-future", version);
        assertThat(app.nextError())
            .as("version " + version)
            .isEqualTo(Frame.ERR_UNSUPPORTED_VERSION);
        assertThat(app.next()).as("the session is closed after version " + version).isNull();
      }
    }
    assertThat(Frame.ERR_UNSUPPORTED_VERSION)
        .as("the code the protocol document names")
        .isEqualTo(9);
  }

  @Test
  void aRegisterThatFailsForOnePortRegistersNone() throws Exception {
    TcpSocket other = TcpSocket.open(InetAddress.getLoopbackAddress());
    other.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    int free = other.localAddress().getPort();
    try (TestApp first = new TestApp(socketPath).hello("first").register(port());
        TestApp second = new TestApp(socketPath).hello("second", 2)) {
      second.send(
          Frame.REGISTER,
          ByteBuffer.allocate(6)
              .putShort((short) 2)
              .putShort((short) free)
              .putShort((short) port())
              .array());
      assertThat(second.nextError()).isEqualTo(Frame.ERR_PORT_TAKEN);
      assertThat(server.registrations(ourNetns())).as("all or none").doesNotContainKey(free);
      assertThat(server.registrations(ourNetns()).get(port()).toString()).contains("first");

      second.register(free); // the session goes on, and the free port alone is fine
      assertThat(server.registrations(ourNetns())).containsKey(free);
    } finally {
      other.close();
    }
  }

  @Test
  void freezeAllSendsEveryFreezeAtOnceAndKeepsWaitingWhileAnswersKeepComing() throws Exception {
    int n = 200;
    List<Conn> conns = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      conns.add(connect());
    }
    try (TestApp app = new TestApp(socketPath).hello("many", 2).register(port())) {
      CompletableFuture<List<HandoffOutcome>> outcomes =
          CompletableFuture.supplyAsync(
              () -> freezeAll(conns.stream().map(Conn::connection).toList()));
      // Every FREEZE arrives before the application has answered any: one batch, not n round
      // trips. Then they are answered last first, which the order of the outcomes must not show.
      List<Long> ids = new ArrayList<>();
      List<Connection> asked = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        Frame f = app.next();
        assertThat(f.type()).isEqualTo(Frame.FREEZE);
        ByteBuffer p = ByteBuffer.wrap(f.payload());
        ids.add(p.getLong());
        asked.add(Connection.readFrom(p));
      }
      assertThat(outcomes).as("nothing answered yet").isNotDone();
      // One answer every 5 ms: the last comes at least 1 s after its FREEZE, twice the 500 ms
      // answer limit. The session is never silent for that long, so none is given up on.
      for (int i = n - 1; i >= 0; i--) {
        int k = conns.stream().map(Conn::connection).toList().indexOf(asked.get(i));
        app.frozen(ids.get(i), conns.get(k).app().fd(), ("state " + k).getBytes(UTF8));
        Thread.sleep(5);
      }
      List<HandoffOutcome> got = outcomes.get(60, TimeUnit.SECONDS);
      assertThat(got).hasSize(n);
      for (int i = 0; i < n; i++) {
        HandoffOutcome.Frozen f = (HandoffOutcome.Frozen) got.get(i);
        assertThat(new String(f.state(), UTF8)).isEqualTo("state " + i);
        assertThat(f.socket().remoteAddress()).isEqualTo(conns.get(i).connection().remote());
        assertThat(f.appendsToPrecopy()).isFalse();
        f.socket().close();
      }
    } finally {
      for (Conn c : conns) {
        c.app().close();
        c.client().close();
      }
    }
  }

  @Test
  void aLargeStateThatKeepsComingIsNotCutOffWhileASilentApplicationIs() throws Exception {
    // Silence limits of 1 s; the 64 MiB state takes at least 3.2 s to come, a chunk every 50 ms.
    Path path = dir.resolve("slow.sock");
    Conn busy = connect();
    Conn quiet = connect();
    List<LogRecord> logged = captureLogs();
    try (HandoffServer slow =
            HandoffServer.start(path, Duration.ofSeconds(1), Duration.ofSeconds(1), 128L << 20);
        TestApp streaming = new TestApp(path).hello("streaming", 2).register(port());
        TestApp silent = new TestApp(path).hello("silent", 2)) {
      TcpSocket otherListener = TcpSocket.open(InetAddress.getLoopbackAddress());
      otherListener.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
      otherListener.listen(1);
      TcpSocket quietClient = TcpSocket.open(InetAddress.getLoopbackAddress());
      quietClient.connect(otherListener.localAddress());
      TcpSocket quietApp = otherListener.accept();
      Connection silentConn = new Connection(quietApp.localAddress(), quietApp.remoteAddress());
      silent.register(silentConn.local().getPort());

      CompletableFuture<List<HandoffOutcome>> outcomes =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return slow.freezeAll(List.of(busy.connection(), silentConn), ourNetns());
                } catch (InterruptedException e) {
                  throw new IllegalStateException(e);
                }
              });
      long id = streaming.expect(Frame.FREEZE);
      long silentId = silent.expect(Frame.FREEZE);
      byte[] state = new byte[64 << 20];
      new Random(7).nextBytes(state);
      streaming.channel.write(
          Frame.FROZEN,
          ByteBuffer.allocate(16).putLong(id).putLong(state.length).array(),
          busy.app().fd());
      for (int off = 0; off < state.length; off += 1 << 20) {
        Thread.sleep(50);
        streaming.channel.writeBlobs(id, state, off, 1 << 20);
      }
      List<HandoffOutcome> got = outcomes.get(60, TimeUnit.SECONDS);
      HandoffOutcome.Frozen frozen = (HandoffOutcome.Frozen) got.get(0);
      assertThat(crc(frozen.state())).isEqualTo(crc(state));
      frozen.socket().close();
      assertThat(got.get(1)).isInstanceOf(HandoffOutcome.NotAnswered.class);
      assertThat(((HandoffOutcome.NotAnswered) got.get(1)).why())
          .contains("silent", "sent nothing for", "freeze " + silentId);

      // The silent one wakes up and answers, 64 chunks' worth: RETURNED, no ERROR, one log line.
      int before = logged.size();
      silent.frozen(silentId, quietApp.fd(), state);
      assertThat(silent.expect(Frame.RETURNED)).isEqualTo(silentId);
      silent.sync(silentConn.local().getPort());
      assertThat(logged.size() - before).as("log lines for one late answer").isEqualTo(1);
      quietApp.close();
      quietClient.close();
      otherListener.close();
    } finally {
      releaseLogs();
      busy.app().close();
      busy.client().close();
      quiet.app().close();
      quiet.client().close();
    }
  }

  @Test
  void aStateThatStopsHalfWayIsGivenUpOnOnceAndItsLateChunksAreDroppedQuietly() throws Exception {
    Path path = dir.resolve("stall.sock");
    Conn conn = connect();
    List<LogRecord> logged = captureLogs();
    try (HandoffServer short_ =
            HandoffServer.start(path, Duration.ofMillis(300), Duration.ofMillis(300), 128L << 20);
        TestApp app = new TestApp(path).hello("stalls", 2).register(port())) {
      CompletableFuture<List<HandoffOutcome>> outcome =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return short_.freezeAll(List.of(conn.connection()), ourNetns());
                } catch (InterruptedException e) {
                  throw new IllegalStateException(e);
                }
              });
      long id = app.expect(Frame.FREEZE);
      byte[] state = new byte[40 * Frame.MAX_CHUNK];
      app.channel.write(
          Frame.FROZEN,
          ByteBuffer.allocate(16).putLong(id).putLong(state.length).array(),
          conn.app().fd());
      app.channel.writeBlobs(id, state, 0, Frame.MAX_CHUNK); // then nothing, until given up on
      assertThat(outcome.get(60, TimeUnit.SECONDS).get(0))
          .isInstanceOf(HandoffOutcome.NotAnswered.class);
      assertThat(app.expect(Frame.RETURNED)).as("the connection is given back").isEqualTo(id);
      int before = logged.size();
      app.channel.writeBlobs(id, state, Frame.MAX_CHUNK, state.length - Frame.MAX_CHUNK);
      app.sync(port());
      assertThat(logged.size() - before).as("log lines for 39 late chunks").isZero();
      assertThat(logged).as("one line in all, when it was given up on").hasSize(1);
      // The connection is still the application's and still works.
      conn.app().writeFully("still mine".getBytes(UTF8));
      byte[] got = new byte[10];
      for (int off = 0; off < 10; ) {
        off += conn.client().read(got, off, 10 - off);
      }
      assertThat(new String(got, UTF8)).isEqualTo("still mine");
    } finally {
      releaseLogs();
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void aPrecopiedStateIsPutBackTogetherWholeForTheTarget() throws Exception {
    Conn conn = connect();
    Random random = new Random(11);
    byte[] first = new byte[2 << 20];
    byte[] snapshot = new byte[3 * Frame.MAX_CHUNK + 5];
    byte[] append1 = "token 1;".getBytes(UTF8);
    byte[] append2 = new byte[0];
    byte[] append3 = new byte[Frame.MAX_CHUNK + 1];
    byte[] delta = "tail".getBytes(UTF8);
    random.nextBytes(first);
    random.nextBytes(snapshot);
    random.nextBytes(append3);
    PrecopiedState assembled = new PrecopiedState();
    List<String> heard = new CopyOnWriteArrayList<>();
    PrecopyListener recorder =
        new PrecopyListener() {
          @Override
          public void snapshot(long length) {
            heard.add("snapshot " + length);
            assembled.snapshot(length);
          }

          @Override
          public void append(long length) {
            heard.add("append " + length);
            assembled.append(length);
          }

          @Override
          public void chunk(byte[] data) {
            assembled.chunk(data);
          }

          @Override
          public void ended(String why) {
            heard.add("ended " + why);
          }
        };
    try (TestApp source = new TestApp(socketPath).hello("source", 2).register(port())) {
      server.precopy(conn.connection(), ourNetns(), recorder);
      Frame precopy = source.next();
      assertThat(precopy.type()).isEqualTo(Frame.PRECOPY);
      ByteBuffer p = ByteBuffer.wrap(precopy.payload());
      long pid = p.getLong();
      assertThat(Connection.readFrom(p)).isEqualTo(conn.connection());
      source.state(pid, Frame.STATE_SNAPSHOT, first);
      source.state(pid, Frame.STATE_APPEND, append1);
      source.state(pid, Frame.STATE_SNAPSHOT, snapshot); // replaces both
      source.state(pid, Frame.STATE_APPEND, append1);
      source.state(pid, Frame.STATE_APPEND, append2);
      source.state(pid, Frame.STATE_APPEND, append3);

      CompletableFuture<HandoffOutcome> outcome =
          CompletableFuture.supplyAsync(() -> freeze(conn.connection()));
      long id = source.expect(Frame.FREEZE);
      source.frozen(id, conn.app().fd(), delta);
      HandoffOutcome.Frozen frozen = (HandoffOutcome.Frozen) outcome.get(30, TimeUnit.SECONDS);
      assertThat(frozen.appendsToPrecopy()).isTrue();
      assertThat(frozen.state()).isEqualTo(delta);
      assertThat(heard)
          .containsExactly(
              "snapshot " + first.length,
              "append " + append1.length,
              "snapshot " + snapshot.length,
              "append " + append1.length,
              "append 0",
              "append " + append3.length);
      byte[] whole = assembled.whole(frozen);
      ByteBuffer expected =
          ByteBuffer.allocate(snapshot.length + append1.length + append3.length + delta.length);
      expected.put(snapshot).put(append1).put(append3).put(delta);
      assertThat(crc(whole)).isEqualTo(crc(expected.array()));
      assertThat(whole.length).isEqualTo(expected.capacity());
      frozen.socket().close();
      source.close();
      // Both applications talk to one agent here; the agent frees the port when it reads the
      // source's end of stream, which may come after the target's REGISTER.
      awaitUnregistered(port());

      // A version 1 application on the target gets the whole state, as it always has.
      try (TestApp target = new TestApp(socketPath).hello("target", 1).register(port())) {
        CompletableFuture<HandoffOutcome> taken =
            CompletableFuture.supplyAsync(() -> takeover(conn.connection(), conn.app(), whole));
        Frame takeover = target.next();
        assertThat(takeover.type()).isEqualTo(Frame.TAKEOVER);
        Descriptors.close(takeover.fd());
        ByteBuffer t = ByteBuffer.wrap(takeover.payload());
        long tid = t.getLong();
        ByteBuffer blob = ByteBuffer.allocate((int) t.getLong());
        while (blob.hasRemaining()) {
          Frame chunk = target.next();
          assertThat(chunk.type()).isEqualTo(Frame.BLOB);
          blob.put(chunk.payload(), 8, chunk.payload().length - 8);
        }
        assertThat(crc(blob.array())).isEqualTo(crc(expected.array()));
        target.send(Frame.TAKEN, ByteBuffer.allocate(8).putLong(tid).array());
        assertThat(taken.get(30, TimeUnit.SECONDS)).isInstanceOf(HandoffOutcome.Taken.class);
      }
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void aStoppedPrecopyMakesTheFreezeHandOverTheWholeStateAgain() throws Exception {
    Conn conn = connect();
    try (TestApp app = new TestApp(socketPath).hello("stopped", 2).register(port())) {
      PrecopiedState assembled = new PrecopiedState();
      PrecopyHandle handle = server.precopy(conn.connection(), ourNetns(), assembled);
      long pid = app.expect(Frame.PRECOPY);
      app.state(pid, Frame.STATE_SNAPSHOT, new byte[100]);
      handle.stop();
      assertThat(app.expect(Frame.PRECOPY_STOP)).isEqualTo(pid);
      app.state(pid, Frame.STATE_APPEND, new byte[10]); // crossed the stop: dropped quietly
      CompletableFuture<HandoffOutcome> outcome =
          CompletableFuture.supplyAsync(() -> freeze(conn.connection()));
      long id = app.expect(Frame.FREEZE);
      app.frozen(id, conn.app().fd(), "whole".getBytes(UTF8));
      HandoffOutcome.Frozen frozen = (HandoffOutcome.Frozen) outcome.get(30, TimeUnit.SECONDS);
      assertThat(frozen.appendsToPrecopy()).isFalse();
      assertThat(assembled.whole(frozen)).isEqualTo("whole".getBytes(UTF8));
      frozen.socket().close();
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void aVersion1ApplicationIsNeverAskedForAPrecopy() throws Exception {
    Conn conn = connect();
    try (TestApp app = new TestApp(socketPath).hello("old", 1).register(port())) {
      PrecopiedState assembled = new PrecopiedState();
      server.precopy(conn.connection(), ourNetns(), assembled);
      assertThat(assembled.endedBecause()).contains("version 1");
      assertThat(app.channel.socket().awaitReadable(100)).as("no PRECOPY sent").isFalse();
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  /** What a version 2 application keeps of the state handed ahead, read frame by frame. */
  private static final class HeldAhead {
    long id = -1;
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
  }

  /**
   * Reads frames as a version 2 application would until one that is not PRESTATE, BLOB of a
   * prestate, or PRESTATE_DROP comes; returns that one. {@code held} is kept up to date.
   */
  private static Frame readAhead(TestApp app, Connection c, HeldAhead held) throws Exception {
    while (true) {
      Frame f = app.next();
      ByteBuffer p = ByteBuffer.wrap(f.payload());
      if (f.type() == Frame.PRESTATE) {
        long id = p.getLong();
        int kind = p.get();
        long length = p.getLong();
        assertThat(Connection.readFrom(p)).isEqualTo(c);
        if (kind == Frame.STATE_SNAPSHOT) {
          held.id = id;
          held.bytes.reset();
        } else {
          assertThat(kind).isEqualTo(Frame.STATE_APPEND);
          assertThat(id).as("an append follows its snapshot's prestate").isEqualTo(held.id);
        }
        for (long got = 0; got < length; ) {
          Frame blob = app.next();
          assertThat(blob.type()).isEqualTo(Frame.BLOB);
          ByteBuffer b = ByteBuffer.wrap(blob.payload());
          assertThat(b.getLong()).isEqualTo(id);
          held.bytes.write(blob.payload(), 8, b.remaining());
          got += b.remaining();
        }
      } else if (f.type() == Frame.PRESTATE_DROP) {
        long id = p.getLong();
        assertThat(Connection.readFrom(p)).isEqualTo(c);
        if (id == held.id) {
          held.id = -1;
          held.bytes.reset();
        }
      } else {
        return f;
      }
    }
  }

  /** Reads the {@code length} bytes of request {@code id}'s BLOB frames. */
  private static byte[] readBlobs(TestApp app, long id, long length) throws Exception {
    ByteBuffer blob = ByteBuffer.allocate((int) length);
    while (blob.hasRemaining()) {
      Frame chunk = app.next();
      assertThat(chunk.type()).isEqualTo(Frame.BLOB);
      ByteBuffer b = ByteBuffer.wrap(chunk.payload());
      assertThat(b.getLong()).isEqualTo(id);
      blob.put(b);
    }
    return blob.array();
  }

  private List<HandoffOutcome> takeoverAll(List<HandoffServer.Incoming> in) {
    try {
      return server.takeoverAll(in, ourNetns());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  void stateHandedAheadAndATakeoverAppendArePutBackTogetherIntactByTheApplication()
      throws Exception {
    Conn conn = connect();
    Random random = new Random(19);
    byte[] first = new byte[Frame.MAX_CHUNK + 3];
    byte[] snapshot = new byte[3 * Frame.MAX_CHUNK + 5];
    byte[] append1 = "token 1;".getBytes(UTF8);
    byte[] append2 = new byte[2 * Frame.MAX_CHUNK + 1];
    byte[] tail = "tail".getBytes(UTF8);
    random.nextBytes(first);
    random.nextBytes(snapshot);
    random.nextBytes(append2);
    ByteBuffer expected =
        ByteBuffer.allocate(snapshot.length + append1.length + append2.length + tail.length);
    expected.put(snapshot).put(append1).put(append2).put(tail);
    try (TestApp app = new TestApp(socketPath).hello("target", 2).register(port())) {
      Prestate ps = server.prestate(conn.connection(), ourNetns());
      assertThat(ps).isNotNull();
      assertThat(ps.held()).as("nothing handed yet").isFalse();
      // The engine's thread writes; the application reads at the same time (flow control).
      CompletableFuture<Boolean> engine =
          CompletableFuture.supplyAsync(
              () -> {
                boolean ok = ps.snapshot(first.length) && ps.chunk(first);
                ok &= ps.snapshot(snapshot.length); // replaces the first
                // In pieces that do not match the frames.
                ok &= ps.chunk(java.util.Arrays.copyOfRange(snapshot, 0, 1000));
                ok &= ps.chunk(java.util.Arrays.copyOfRange(snapshot, 1000, snapshot.length));
                ok &= ps.append(append1.length) && ps.chunk(append1);
                ok &= ps.append(0);
                ok &= ps.append(append2.length) && ps.chunk(append2);
                return ok;
              });
      HeldAhead held = new HeldAhead();
      // The application reads what is handed ahead while the engine writes it.
      CompletableFuture<Frame> next =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return readAhead(app, conn.connection(), held);
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              });
      assertThat(engine.get(30, TimeUnit.SECONDS)).as("every part was sent").isTrue();
      assertThat(ps.held()).isTrue();

      CompletableFuture<List<HandoffOutcome>> taken =
          CompletableFuture.supplyAsync(
              () ->
                  takeoverAll(
                      List.of(
                          HandoffServer.Incoming.appending(
                              conn.connection(),
                              conn.app(),
                              tail,
                              () -> {
                                throw new AssertionError("the whole state is not needed");
                              }))));
      Frame takeover = next.get(30, TimeUnit.SECONDS);
      assertThat(takeover.type()).isEqualTo(Frame.TAKEOVER_APPEND);
      assertThat(takeover.fd()).isNotNegative();
      Descriptors.close(takeover.fd());
      ByteBuffer t = ByteBuffer.wrap(takeover.payload());
      long id = t.getLong();
      assertThat(t.getLong())
          .as("the prestate it appends to")
          .isEqualTo(ps.id())
          .isEqualTo(held.id);
      long length = t.getLong();
      assertThat(length).as("only the tail").isEqualTo(tail.length);
      assertThat(Connection.readFrom(t)).isEqualTo(conn.connection());
      held.bytes.write(readBlobs(app, id, length));
      assertThat(held.bytes.size()).isEqualTo(expected.capacity());
      assertThat(crc(held.bytes.toByteArray())).isEqualTo(crc(expected.array()));
      app.send(Frame.TAKEN, ByteBuffer.allocate(8).putLong(id).array());
      assertThat(taken.get(30, TimeUnit.SECONDS).get(0)).isInstanceOf(HandoffOutcome.Taken.class);
      assertThat(ps.held()).as("a takeover ends the prestate").isFalse();
      assertThat(ps.chunk(new byte[0])).isFalse();
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void aDroppedPrestateIsForgottenAndTheTakeoverCarriesTheWholeStateAgain() throws Exception {
    Conn conn = connect();
    byte[] whole = "snapshot+tail".getBytes(UTF8);
    try (TestApp app = new TestApp(socketPath).hello("target", 2).register(port())) {
      Prestate ps = server.prestate(conn.connection(), ourNetns());
      assertThat(ps.snapshot(8)).isTrue();
      assertThat(ps.chunk("snapshot".getBytes(UTF8))).isTrue();
      ps.drop();
      assertThat(ps.held()).isFalse();
      assertThat(ps.append(5)).as("nothing is sent once dropped").isFalse();
      ps.drop(); // a second drop sends nothing
      HeldAhead held = new HeldAhead();
      CompletableFuture<List<HandoffOutcome>> taken =
          CompletableFuture.supplyAsync(
              () ->
                  takeoverAll(
                      List.of(
                          HandoffServer.Incoming.appending(
                              conn.connection(),
                              conn.app(),
                              "+tail".getBytes(UTF8),
                              () -> whole))));
      Frame takeover = readAhead(app, conn.connection(), held);
      assertThat(held.id).as("PRESTATE_DROP made the application forget it").isEqualTo(-1);
      assertThat(takeover.type()).as("a plain TAKEOVER").isEqualTo(Frame.TAKEOVER);
      Descriptors.close(takeover.fd());
      ByteBuffer t = ByteBuffer.wrap(takeover.payload());
      long id = t.getLong();
      assertThat(readBlobs(app, id, t.getLong())).isEqualTo(whole);
      app.send(Frame.TAKEN, ByteBuffer.allocate(8).putLong(id).array());
      assertThat(taken.get(30, TimeUnit.SECONDS).get(0)).isInstanceOf(HandoffOutcome.Taken.class);
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void aDeclinedPrestateSendsNothingMoreAndTheTakeoverCarriesTheWholeState() throws Exception {
    Conn conn = connect();
    byte[] whole = new byte[Frame.MAX_CHUNK + 10];
    new Random(5).nextBytes(whole);
    try (TestApp app = new TestApp(socketPath).hello("frugal", 2).register(port())) {
      Prestate ps = server.prestate(conn.connection(), ourNetns());
      assertThat(ps.snapshot(4)).isTrue();
      Frame f = app.next();
      assertThat(f.type()).isEqualTo(Frame.PRESTATE);
      app.send(Frame.DECLINED, ByteBuffer.allocate(8).putLong(ps.id()).array());
      app.sync(port()); // the DECLINED has been read: no ERROR came before REGISTERED
      assertThat(ps.held()).isFalse();
      assertThat(ps.endedBecause()).contains("declined");
      // The engine had announced 4 bytes; whatever it does next goes nowhere, and is no error.
      assertThat(ps.chunk(new byte[100])).isFalse();
      assertThat(ps.append(7)).isFalse();
      CompletableFuture<List<HandoffOutcome>> taken =
          CompletableFuture.supplyAsync(
              () ->
                  takeoverAll(
                      List.of(
                          HandoffServer.Incoming.appending(
                              conn.connection(), conn.app(), new byte[1], () -> whole))));
      Frame takeover = app.next();
      assertThat(takeover.type()).isEqualTo(Frame.TAKEOVER);
      Descriptors.close(takeover.fd());
      ByteBuffer t = ByteBuffer.wrap(takeover.payload());
      long id = t.getLong();
      assertThat(crc(readBlobs(app, id, t.getLong()))).isEqualTo(crc(whole));
      app.send(Frame.DECLINED, ByteBuffer.allocate(8).putLong(id).array());
      assertThat(taken.get(30, TimeUnit.SECONDS).get(0))
          .isInstanceOf(HandoffOutcome.Declined.class);
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void aVersion1ApplicationOrOneOutsideThePodIsHandedNothingAheadAndGetsTheWholeState()
      throws Exception {
    Conn conn = connect();
    byte[] whole = "whole".getBytes(UTF8);
    try (TestApp app = new TestApp(socketPath).hello("old", 1).register(port())) {
      assertThat(server.prestate(conn.connection(), ourNetns())).as("version 1").isNull();
      CompletableFuture<HandoffOutcome> taken =
          CompletableFuture.supplyAsync(() -> takeover(conn.connection(), conn.app(), whole));
      Frame takeover = app.next();
      assertThat(takeover.type()).isEqualTo(Frame.TAKEOVER);
      Descriptors.close(takeover.fd());
      ByteBuffer t = ByteBuffer.wrap(takeover.payload());
      long id = t.getLong();
      assertThat(readBlobs(app, id, t.getLong())).isEqualTo(whole);
      app.send(Frame.TAKEN, ByteBuffer.allocate(8).putLong(id).array());
      assertThat(taken.get(30, TimeUnit.SECONDS)).isInstanceOf(HandoffOutcome.Taken.class);
    }
    // The agent frees the port when it reads the first application's end of stream, which may
    // come after the second's REGISTER.
    awaitUnregistered(port());
    try (TestApp app = new TestApp(socketPath).hello("elsewhere", 2).register(port())) {
      assertThat(server.prestate(conn.connection(), ourNetns() + 1)).as("not the pod's").isNull();
      assertThat(server.prestate(conn.connection(), ourNetns())).isNotNull();
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void anApplicationThatHoldsNoPrestateDeclinesATakeoverAppendAndTheAgentSaysSo() throws Exception {
    // The application lost what was handed ahead (its DECLINED crossed the TAKEOVER_APPEND on
    // the wire, say): it declines, and the outcome is Declined, never a takeover with half a state.
    Conn conn = connect();
    try (TestApp app = new TestApp(socketPath).hello("forgetful", 2).register(port())) {
      Prestate ps = server.prestate(conn.connection(), ourNetns());
      assertThat(ps.snapshot(3) && ps.chunk(new byte[3])).isTrue();
      CompletableFuture<List<HandoffOutcome>> taken =
          CompletableFuture.supplyAsync(
              () ->
                  takeoverAll(
                      List.of(
                          HandoffServer.Incoming.appending(
                              conn.connection(), conn.app(), new byte[2], null))));
      assertThat(app.expect(Frame.PRESTATE)).isEqualTo(ps.id());
      assertThat(app.expect(Frame.BLOB)).isEqualTo(ps.id());
      Frame takeover = app.next();
      assertThat(takeover.type()).isEqualTo(Frame.TAKEOVER_APPEND);
      Descriptors.close(takeover.fd());
      long id = ByteBuffer.wrap(takeover.payload()).getLong();
      assertThat(readBlobs(app, id, 2)).hasSize(2);
      app.send(Frame.DECLINED, ByteBuffer.allocate(8).putLong(ps.id()).array());
      app.send(Frame.DECLINED, ByteBuffer.allocate(8).putLong(id).array());
      assertThat(taken.get(30, TimeUnit.SECONDS).get(0))
          .isInstanceOf(HandoffOutcome.Declined.class);
      app.sync(port()); // no ERROR for the late DECLINED of the prestate
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  @Test
  void anAppendingTakeoverWithNoPrestateAndNoWholeStateIsDeclinedWithoutAsking() throws Exception {
    Conn conn = connect();
    try (TestApp app = new TestApp(socketPath).hello("target", 2).register(port())) {
      HandoffOutcome outcome =
          takeoverAll(
                  List.of(
                      HandoffServer.Incoming.appending(
                          conn.connection(), conn.app(), new byte[2], null)))
              .get(0);
      assertThat(outcome).isInstanceOf(HandoffOutcome.Declined.class);
      assertThat(app.channel.socket().awaitReadable(100)).as("nothing sent").isFalse();
    } finally {
      conn.app().close();
      conn.client().close();
    }
  }

  private static final java.nio.charset.Charset UTF8 = StandardCharsets.UTF_8;
  private final List<Handler> handlers = new ArrayList<>();

  /** Every record the handoff package logs from now on, at any level. */
  private List<LogRecord> captureLogs() {
    List<LogRecord> records = new CopyOnWriteArrayList<>();
    Handler h =
        new Handler() {
          @Override
          public void publish(LogRecord r) {
            records.add(r);
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    for (Class<?> c : List.of(Session.class, HandoffServer.class)) {
      Logger.getLogger(c.getName()).addHandler(h);
    }
    handlers.add(h);
    return records;
  }

  private void releaseLogs() {
    for (Handler h : handlers) {
      for (Class<?> c : List.of(Session.class, HandoffServer.class)) {
        Logger.getLogger(c.getName()).removeHandler(h);
      }
    }
    handlers.clear();
  }

  private List<HandoffOutcome> freezeAll(List<Connection> cs) {
    try {
      return server.freezeAll(cs, ourNetns());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private HandoffOutcome freeze(Connection c) {
    try {
      return server.freeze(c, ourNetns());
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
