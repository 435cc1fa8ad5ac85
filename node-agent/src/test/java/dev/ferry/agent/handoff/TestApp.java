// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.sdk.wire.Frame;
import dev.ferry.sdk.wire.FrameChannel;
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
    byte[] n = name.getBytes(StandardCharsets.UTF_8);
    channel.write(
        Frame.HELLO, ByteBuffer.allocate(2 + n.length).putShort((short) 1).put(n).array());
    assertThat(next().type()).isEqualTo(Frame.WELCOME);
    return this;
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
