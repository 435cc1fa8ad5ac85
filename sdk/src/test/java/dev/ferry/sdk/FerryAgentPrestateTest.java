// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Connection;
import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.UnixSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The SDK keeps the state an agent hands ahead of a takeover (PRESTATE) and gives the server the
 * whole state put back together; the agent is played frame by frame by the test.
 */
class FerryAgentPrestateTest {
  private static final InetAddress LO = InetAddress.getLoopbackAddress();
  private static final int PORT = 8080;

  /** What the server's takeover() was given, one entry a call. */
  private final BlockingQueue<byte[]> takenOver = new LinkedBlockingQueue<>();

  private final MigrationHandler handler =
      new MigrationHandler() {
        @Override
        public Handover freeze(Connection connection) {
          return Handover.decline("not in this test");
        }

        @Override
        public Takeover takeover(Connection connection, byte[] state) {
          takenOver.add(state);
          return Takeover.accept(socket -> {});
        }
      };

  private static Connection conn(int remotePort) {
    return new Connection(new InetSocketAddress(LO, PORT), new InetSocketAddress(LO, remotePort));
  }

  @Test
  void aSnapshotAppendsAndATakeoverAppendReachTheServerAsOneWholeState(@TempDir Path dir)
      throws Exception {
    Random random = new Random(3);
    byte[] first = new byte[100];
    byte[] snapshot = new byte[2 * Frame.MAX_CHUNK + 7];
    byte[] append = new byte[Frame.MAX_CHUNK + 1];
    byte[] tail = new byte[Frame.MAX_CHUNK + 2];
    random.nextBytes(first);
    random.nextBytes(snapshot);
    random.nextBytes(append);
    random.nextBytes(tail);
    Connection c = conn(40000);
    try (Agent agent = Agent.start(dir, handler)) {
      agent.prestate(5, Frame.STATE_SNAPSHOT, c, first);
      agent.prestate(5, Frame.STATE_SNAPSHOT, c, snapshot); // replaces the first
      agent.prestate(5, Frame.STATE_APPEND, c, new byte[0]);
      agent.prestate(5, Frame.STATE_APPEND, c, append);
      agent.takeoverAppend(6, 5, c, tail);
      assertThat(agent.next().type()).isEqualTo(Frame.TAKEN);
      byte[] whole = takenOver.poll(20, TimeUnit.SECONDS);
      ByteBuffer expected =
          ByteBuffer.allocate(snapshot.length + append.length + tail.length)
              .put(snapshot)
              .put(append)
              .put(tail);
      assertThat(whole).isEqualTo(expected.array());

      // What was handed ahead is gone after the takeover: a second TAKEOVER_APPEND is declined.
      agent.takeoverAppend(7, 5, c, new byte[3]);
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(7);
      assertThat(takenOver).isEmpty();
    }
  }

  @Test
  void aTakeoverAppendWithoutItsPrestateIsDeclinedAndTheServerIsNeverAsked(@TempDir Path dir)
      throws Exception {
    Connection c = conn(40001);
    Connection other = conn(40002);
    try (Agent agent = Agent.start(dir, handler)) {
      // Nothing handed ahead at all.
      agent.takeoverAppend(10, 9, c, "tail".getBytes());
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(10);

      // Handed ahead, then dropped.
      agent.prestate(11, Frame.STATE_SNAPSHOT, c, "snap".getBytes());
      agent.drop(11, c);
      agent.takeoverAppend(12, 11, c, "tail".getBytes());
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(12);

      // Handed ahead under another id, or for another connection.
      agent.prestate(13, Frame.STATE_SNAPSHOT, c, "snap".getBytes());
      agent.takeoverAppend(14, 99, c, new byte[0]);
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(14);
      agent.prestate(15, Frame.STATE_SNAPSHOT, c, "snap".getBytes());
      agent.takeoverAppend(16, 15, other, new byte[0]);
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(16);

      // An append to nothing is declined (the agent will send the whole state).
      agent.prestate(17, Frame.STATE_APPEND, other, "x".getBytes());
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(17);

      // A plain TAKEOVER brings the whole state, and ends what was held.
      agent.prestate(18, Frame.STATE_SNAPSHOT, c, "snap".getBytes());
      agent.takeover(19, c, "whole".getBytes());
      assertThat(agent.expect(Frame.TAKEN)).isEqualTo(19);
      assertThat(takenOver.poll(20, TimeUnit.SECONDS)).isEqualTo("whole".getBytes());
      agent.takeoverAppend(20, 18, c, new byte[0]);
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(20);
      assertThat(takenOver).isEmpty();
    }
  }

  @Test
  void aTakeoverTheAgentGivesUpBeforeResumingIsClosedAndNeverGoesLive(@TempDir Path dir)
      throws Exception {
    java.util.concurrent.atomic.AtomicBoolean live =
        new java.util.concurrent.atomic.AtomicBoolean();
    MigrationHandler server =
        new MigrationHandler() {
          @Override
          public Handover freeze(Connection connection) {
            return Handover.decline("not in this test");
          }

          @Override
          public Takeover takeover(Connection connection, byte[] state) {
            return Takeover.accept(socket -> live.set(true));
          }
        };
    try (Agent agent = Agent.start(dir, server);
        java.nio.channels.ServerSocketChannel peerListens =
            java.nio.channels.ServerSocketChannel.open()) {
      peerListens.bind(new InetSocketAddress(LO, 0));
      Connection c = conn(40020);
      // A connected socket stands in for the restored one: when the SDK closes the last
      // descriptor of it, its peer reads the end of the stream.
      java.nio.channels.SocketChannel peer;
      try (TcpSocket handed = TcpSocket.open(LO)) {
        handed.connect((InetSocketAddress) peerListens.getLocalAddress());
        peer = peerListens.accept();
        ByteBuffer b = ByteBuffer.allocate(16 + c.encodedSize()).putLong(30).putLong(5);
        c.writeTo(b);
        agent.channel.write(Frame.TAKEOVER, b.array(), handed.fd());
      }
      agent.channel.writeBlobs(30, "state".getBytes());
      assertThat(agent.expect(Frame.TAKEN)).isEqualTo(30);

      agent.channel.write(Frame.RELEASED, ByteBuffer.allocate(8).putLong(30).array());

      try (peer) {
        peer.socket().setSoTimeout(20_000);
        assertThat(peer.socket().getInputStream().read())
            .as("the socket is closed, not kept")
            .isEqualTo(-1);
      }
      assertThat(live).as("a void takeover never goes live").isFalse();
      // The session goes on: a later RESUMED of that id is one the SDK does not expect.
      agent.takeover(31, c, "whole".getBytes());
      assertThat(agent.expect(Frame.TAKEN)).isEqualTo(31);
    }
  }

  /**
   * A server that takes the state in as it arrives ({@link MigrationHandler#arriving}): every call
   * is logged in order; {@code failOn} names the call that throws.
   */
  private static final class Intake implements MigrationHandler {
    final BlockingQueue<String> log = new LinkedBlockingQueue<>();
    final BlockingQueue<byte[]> whole = new LinkedBlockingQueue<>();
    final List<byte[]> chunks =
        java.util.Collections.synchronizedList(new ArrayList<>()); // since the last snapshot
    volatile String failOn = "";
    volatile int asked;

    @Override
    public Handover freeze(Connection connection) {
      return Handover.decline("not in this test");
    }

    @Override
    public Takeover takeover(Connection connection, byte[] state) {
      log.add("whole " + state.length);
      whole.add(state);
      return Takeover.accept(socket -> {});
    }

    @Override
    public IncomingState arriving(Connection connection) {
      asked++;
      if (failOn.equals("arriving")) {
        throw new IllegalStateException("no room");
      }
      return new IncomingState() {
        @Override
        public void snapshot(long length) {
          log.add("snapshot " + length);
          chunks.clear();
          fail("snapshot");
        }

        @Override
        public void bytes(byte[] chunk) {
          log.add("bytes " + chunk.length);
          chunks.add(chunk);
          fail("bytes");
        }

        @Override
        public void append(long length) {
          log.add("append " + length);
          fail("append");
        }

        @Override
        public Takeover takeover(byte[] tail) {
          log.add("takeover " + tail.length);
          chunks.add(tail);
          return Takeover.accept(socket -> {});
        }

        @Override
        public void dropped(String why) {
          log.add("dropped");
        }
      };
    }

    private void fail(String call) {
      if (failOn.equals(call)) {
        throw new IllegalArgumentException("bad " + call);
      }
    }

    byte[] takenIn() {
      ByteBuffer b = ByteBuffer.allocate(chunks.stream().mapToInt(x -> x.length).sum());
      chunks.forEach(b::put);
      return b.array();
    }

    /** The calls logged so far, waiting for the last one expected. */
    List<String> calls(String last) throws InterruptedException {
      List<String> calls = new ArrayList<>();
      String call;
      do {
        call = log.poll(20, TimeUnit.SECONDS);
        assertThat(call).as("a call after " + calls).isNotNull();
        calls.add(call);
      } while (!call.equals(last));
      return calls;
    }
  }

  @Test
  void aServerTakingTheStateInGetsEachPartInOrderAndOnlyTheTailAtTheTakeover(@TempDir Path dir)
      throws Exception {
    Random random = new Random(5);
    byte[] first = new byte[100];
    byte[] snapshot = new byte[2 * Frame.MAX_CHUNK + 7];
    byte[] append = new byte[Frame.MAX_CHUNK + 1];
    byte[] tail = new byte[300];
    random.nextBytes(first);
    random.nextBytes(snapshot);
    random.nextBytes(append);
    random.nextBytes(tail);
    Connection c = conn(40010);
    Intake server = new Intake();
    try (Agent agent = Agent.start(dir, server)) {
      agent.prestate(5, Frame.STATE_SNAPSHOT, c, first);
      agent.prestate(6, Frame.STATE_SNAPSHOT, c, snapshot); // replaces the first, same intake
      agent.prestate(6, Frame.STATE_APPEND, c, new byte[0]);
      agent.prestate(6, Frame.STATE_APPEND, c, append);
      agent.takeoverAppend(7, 6, c, tail);
      assertThat(agent.expect(Frame.TAKEN)).isEqualTo(7);
      List<String> calls = server.calls("takeover " + tail.length);
      assertThat(calls)
          .containsExactly(
              "snapshot 100",
              "bytes 100",
              "snapshot " + snapshot.length,
              "bytes " + Frame.MAX_CHUNK,
              "bytes " + Frame.MAX_CHUNK,
              "bytes 7",
              "append 0",
              "append " + append.length,
              "bytes " + Frame.MAX_CHUNK,
              "bytes 1",
              "takeover " + tail.length);
      assertThat(server.asked).isEqualTo(1);
      ByteBuffer expected =
          ByteBuffer.allocate(snapshot.length + append.length + tail.length)
              .put(snapshot)
              .put(append)
              .put(tail);
      assertThat(server.takenIn()).isEqualTo(expected.array());

      // Nothing is held after the takeover: a second TAKEOVER_APPEND is declined, and the whole
      // state was never put together for takeover(connection, state).
      agent.takeoverAppend(8, 6, c, new byte[3]);
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(8);
      assertThat(server.whole).isEmpty();
      assertThat(server.log).isEmpty();
    }
  }

  @Test
  void aPlainTakeoverADropOrAnotherPrestateEndsTheIntakeWithDropped(@TempDir Path dir)
      throws Exception {
    Connection c = conn(40011);
    Intake server = new Intake();
    try (Agent agent = Agent.start(dir, server)) {
      // A plain TAKEOVER brings the whole state to takeover(connection, state).
      agent.prestate(20, Frame.STATE_SNAPSHOT, c, "snap".getBytes());
      agent.takeover(21, c, "whole".getBytes());
      assertThat(agent.expect(Frame.TAKEN)).isEqualTo(21);
      assertThat(server.calls("whole 5"))
          .containsExactly("snapshot 4", "bytes 4", "dropped", "whole 5");
      assertThat(server.whole.poll()).isEqualTo("whole".getBytes());

      // PRESTATE_DROP, then a TAKEOVER_APPEND of what was dropped: declined, never taken over.
      agent.prestate(22, Frame.STATE_SNAPSHOT, c, "snap".getBytes());
      agent.drop(22, c);
      agent.takeoverAppend(23, 22, c, "tail".getBytes());
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(23);
      assertThat(server.calls("dropped")).containsExactly("snapshot 4", "bytes 4", "dropped");

      // A TAKEOVER_APPEND naming another prestate: declined, and what was taken in is void.
      agent.prestate(24, Frame.STATE_SNAPSHOT, c, "snap".getBytes());
      agent.takeoverAppend(25, 99, c, new byte[0]);
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(25);
      assertThat(server.calls("dropped")).containsExactly("snapshot 4", "bytes 4", "dropped");

      // An append under another id: declined, and dropped.
      agent.prestate(26, Frame.STATE_SNAPSHOT, c, "snap".getBytes());
      agent.prestate(27, Frame.STATE_APPEND, c, "x".getBytes());
      assertThat(agent.expect(Frame.DECLINED)).isEqualTo(27);
      assertThat(server.calls("dropped")).containsExactly("snapshot 4", "bytes 4", "dropped");
      assertThat(server.whole).isEmpty();
    }
  }

  @Test
  void anIntakeThatThrowsDeclinesThePrestateAndTheWholeStateStillArrives(@TempDir Path dir)
      throws Exception {
    Connection c = conn(40012);
    Intake server = new Intake();
    byte[] big = new byte[Frame.MAX_CHUNK + 10];
    try (Agent agent = Agent.start(dir, server)) {
      for (String failing : List.of("arriving", "snapshot", "bytes", "append")) {
        server.failOn = failing;
        long id = 30 + 10L * List.of("arriving", "snapshot", "bytes", "append").indexOf(failing);
        agent.prestate(id, Frame.STATE_SNAPSHOT, c, big);
        agent.prestate(id, Frame.STATE_APPEND, c, big);
        // Declined once for the part that failed, once for the append to nothing (but for
        // "append", which fails at the append itself).
        assertThat(agent.expect(Frame.DECLINED)).as(failing).isEqualTo(id);
        if (!failing.equals("append")) {
          assertThat(agent.expect(Frame.DECLINED)).as(failing).isEqualTo(id);
        }
        // The rest of what was handed ahead is dropped without a word; the whole state follows.
        agent.takeover(id + 1, c, "whole".getBytes());
        assertThat(agent.expect(Frame.TAKEN)).as(failing).isEqualTo(id + 1);
        List<String> calls = server.calls("whole 5");
        if (!failing.equals("arriving")) {
          assertThat(calls).as(failing).containsOnlyOnce("dropped");
          assertThat(calls.indexOf("dropped")).isEqualTo(calls.size() - 2);
        } else {
          assertThat(calls).containsExactly("whole 5");
        }
        assertThat(server.whole.poll()).isEqualTo("whole".getBytes());
      }
    }
  }

  /** The agent's end, played by the test. */
  private static final class Agent implements AutoCloseable {
    final UnixSocket listening;
    final FrameChannel channel;
    final FerryAgent ferry;

    private Agent(UnixSocket listening, FrameChannel channel, FerryAgent ferry) {
      this.listening = listening;
      this.channel = channel;
      this.ferry = ferry;
    }

    static Agent start(Path dir, MigrationHandler handler) throws Exception {
      Path path = dir.resolve("handoff.sock");
      UnixSocket listening = UnixSocket.listen(path, 1);
      CompletableFuture<FerryAgent> connecting =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  FerryAgent ferry = FerryAgent.connect(path, "prestate-test");
                  ferry.register(PORT, handler);
                  return ferry;
                } catch (Exception e) {
                  throw new IllegalStateException(e);
                }
              });
      FrameChannel channel = new FrameChannel(listening.accept());
      assertThat(channel.read().type()).isEqualTo(Frame.HELLO);
      channel.write(
          Frame.WELCOME, ByteBuffer.allocate(6).putShort((short) 2).putInt(1 << 20).array());
      Frame register = channel.read();
      assertThat(register.type()).isEqualTo(Frame.REGISTER);
      channel.write(Frame.REGISTERED, register.payload());
      return new Agent(listening, channel, connecting.get(20, TimeUnit.SECONDS));
    }

    void prestate(long id, int kind, Connection c, byte[] part) throws Exception {
      ByteBuffer b =
          ByteBuffer.allocate(17 + c.encodedSize())
              .putLong(id)
              .put((byte) kind)
              .putLong(part.length);
      c.writeTo(b);
      channel.write(Frame.PRESTATE, b.array());
      channel.writeBlobs(id, part);
    }

    void drop(long id, Connection c) throws Exception {
      ByteBuffer b = ByteBuffer.allocate(8 + c.encodedSize()).putLong(id);
      c.writeTo(b);
      channel.write(Frame.PRESTATE_DROP, b.array());
    }

    void takeoverAppend(long id, long prestateId, Connection c, byte[] tail) throws Exception {
      ByteBuffer b =
          ByteBuffer.allocate(24 + c.encodedSize())
              .putLong(id)
              .putLong(prestateId)
              .putLong(tail.length);
      c.writeTo(b);
      sendWithSocket(Frame.TAKEOVER_APPEND, b.array(), id, tail);
    }

    void takeover(long id, Connection c, byte[] state) throws Exception {
      ByteBuffer b = ByteBuffer.allocate(16 + c.encodedSize()).putLong(id).putLong(state.length);
      c.writeTo(b);
      sendWithSocket(Frame.TAKEOVER, b.array(), id, state);
    }

    private void sendWithSocket(int type, byte[] payload, long id, byte[] blob) throws Exception {
      // Any TCP socket will do: the SDK only keeps it until RESUMED, which never comes here.
      try (TcpSocket socket = TcpSocket.open(LO)) {
        channel.write(type, payload, socket.fd());
      }
      channel.writeBlobs(id, blob);
    }

    Frame next() throws Exception {
      return channel.read();
    }

    /** Reads the next frame, checks its type, and returns its request id. */
    long expect(int type) throws Exception {
      Frame f = channel.read();
      assertThat(f.type()).as("frame type").isEqualTo(type);
      return ByteBuffer.wrap(f.payload()).getLong();
    }

    @Override
    public void close() {
      ferry.close();
      channel.close();
      listening.close();
    }
  }
}
