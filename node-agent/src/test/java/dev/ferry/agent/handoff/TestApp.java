// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.sys.UnixSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/** An application speaking the handoff protocol frame by frame, as a test drives it. */
final class TestApp implements AutoCloseable {
  final FrameChannel channel;

  TestApp(Path socket) throws Exception {
    channel = new FrameChannel(UnixSocket.connect(socket));
  }

  TestApp hello(String name) throws Exception {
    return hello(name, 1);
  }

  /** Says HELLO with {@code version} and checks that the agent agrees to it. */
  TestApp hello(String name, int version) throws Exception {
    sendHello(name, version);
    Frame welcome = next();
    assertThat(welcome.type()).isEqualTo(Frame.WELCOME);
    assertThat(ByteBuffer.wrap(welcome.payload()).getShort())
        .as("agreed version")
        .isEqualTo((short) version);
    return this;
  }

  void sendHello(String name, int version) throws Exception {
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    channel.write(
        Frame.HELLO, ByteBuffer.allocate(2 + n.length).putShort((short) version).put(n).array());
  }

  /** Reads the next frame, checks its type, and returns its request id. */
  long expect(int type) throws Exception {
    Frame f = next();
    assertThat(f).as("a frame of type " + type).isNotNull();
    assertThat(f.type()).as("frame type").isEqualTo(type);
    return ByteBuffer.wrap(f.payload()).getLong();
  }

  /** Offers a part of the state ahead of the freeze: STATE, then its BLOB frames. */
  void state(long precopyId, int kind, byte[] part) throws Exception {
    channel.write(
        Frame.STATE,
        ByteBuffer.allocate(17).putLong(precopyId).put((byte) kind).putLong(part.length).array());
    sendBlob(precopyId, part);
  }

  /** Sends a frame the agent answers, so that everything sent before it has been handled. */
  void sync(int port) throws Exception {
    register(port);
  }

  TestApp register(int... ports) throws Exception {
    ByteBuffer b = ByteBuffer.allocate(2 + 2 * ports.length).putShort((short) ports.length);
    for (int p : ports) {
      b.putShort((short) p);
    }
    channel.write(Frame.REGISTER, b.array());
    assertThat(next().type()).isEqualTo(Frame.REGISTERED);
    return this;
  }

  Frame next() throws Exception {
    return channel.read();
  }

  /** Reads an ERROR frame and returns its code. */
  int nextError() throws Exception {
    Frame f = next();
    assertThat(f).as("an ERROR frame").isNotNull();
    assertThat(f.type()).as("frame type").isEqualTo(Frame.ERROR);
    return ByteBuffer.wrap(f.payload()).getShort();
  }

  void frozen(long id, int fd, byte[] state) throws Exception {
    channel.write(
        Frame.FROZEN, ByteBuffer.allocate(16).putLong(id).putLong(state.length).array(), fd);
    sendBlob(id, state);
  }

  void sendBlob(long id, byte[] state) throws Exception {
    for (int off = 0; off < state.length; off += Frame.MAX_CHUNK) {
      int n = Math.min(Frame.MAX_CHUNK, state.length - off);
      channel.write(Frame.BLOB, ByteBuffer.allocate(8 + n).putLong(id).put(state, off, n).array());
    }
  }

  void send(int type, byte[] payload) throws Exception {
    channel.write(type, payload);
  }

  @Override
  public void close() {
    channel.close();
  }
}
