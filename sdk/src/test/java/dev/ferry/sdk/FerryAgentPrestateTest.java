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
