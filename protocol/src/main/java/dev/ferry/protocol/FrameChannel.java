// SPDX-License-Identifier: Apache-2.0
package dev.ferry.protocol;

import dev.ferry.sys.Descriptors;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.UnixSocket;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Frames over a Unix stream socket: a 4-byte big-endian length, the type byte and the payload; a
 * descriptor travels with the first bytes of its frame.
 */
public final class FrameChannel implements AutoCloseable {
  private final UnixSocket socket;

  public FrameChannel(UnixSocket socket) {
    this.socket = socket;
  }

  public UnixSocket socket() {
    return socket;
  }

  /**
   * The next frame, or null at end of stream.
   *
   * @throws ProtocolException for a length of 0 or over {@link Frame#MAX_FRAME}, or a stream that
   *     ends inside a frame; the caller answers ERROR and closes the session
   */
  public Frame read() throws SyscallException, ProtocolException {
    int[] fd = {-1};
    byte[] header = readExactly(4, fd, true);
    if (header == null) {
      return null;
    }
    int length = ByteBuffer.wrap(header).getInt();
    if (length <= 0 || length > Frame.MAX_FRAME) {
      closeQuietly(fd[0]);
      throw new ProtocolException(
          length <= 0 ? Frame.ERR_MALFORMED : Frame.ERR_TOO_LARGE,
          "frame length " + Integer.toUnsignedString(length) + " is outside 1.." + Frame.MAX_FRAME);
    }
    byte[] body = readExactly(length, fd, false);
    if (body == null) {
      closeQuietly(fd[0]);
      throw new ProtocolException(Frame.ERR_MALFORMED, "stream ended inside a frame");
    }
    return new Frame(body[0] & 0xff, Arrays.copyOfRange(body, 1, body.length), fd[0]);
  }

  /** Reads n bytes; a descriptor that comes with them is kept in fd[0] (one at most). */
  private byte[] readExactly(int n, int[] fd, boolean endAllowed)
      throws SyscallException, ProtocolException {
    byte[] out = new byte[n];
    int got = 0;
    while (got < n) {
      UnixSocket.Received r = socket.receive(Math.min(n - got, Frame.MAX_FRAME), 1);
      for (int received : r.fds()) {
        if (fd[0] == -1) {
          fd[0] = received;
        } else {
          closeQuietly(received); // one descriptor per frame; any more are not ours to keep
        }
      }
      if (r.data().length == 0) {
        if (got == 0 && endAllowed) {
          return null;
        }
        throw new ProtocolException(Frame.ERR_MALFORMED, "stream ended inside a frame");
      }
      System.arraycopy(r.data(), 0, out, got, r.data().length);
      got += r.data().length;
    }
    return out;
  }

  public void write(int type, byte[] payload) throws SyscallException {
    write(type, payload, -1);
  }

  /** Writes one frame, with {@code fd} attached to its first byte when it is not -1. */
  public void write(int type, byte[] payload, int fd) throws SyscallException {
    byte[] frame =
        ByteBuffer.allocate(5 + payload.length)
            .putInt(1 + payload.length)
            .put((byte) type)
            .put(payload)
            .array();
    sendFrame(frame, fd);
  }

  private synchronized void sendFrame(byte[] frame, int fd) throws SyscallException {
    int off = 0;
    while (off < frame.length) {
      byte[] rest = off == 0 ? frame : Arrays.copyOfRange(frame, off, frame.length);
      off += (off == 0 && fd >= 0) ? socket.send(rest, fd) : socket.send(rest);
    }
  }

  /**
   * Writes {@code data[off..off+len)} as the BLOB frames of request {@code id}: none at all when
   * {@code len} is 0. Each frame is built once, straight from {@code data}.
   */
  public void writeBlobs(long id, byte[] data, int off, int len) throws SyscallException {
    for (int done = 0; done < len; ) {
      int n = Math.min(Frame.MAX_CHUNK, len - done);
      byte[] frame =
          ByteBuffer.allocate(13 + n)
              .putInt(9 + n)
              .put((byte) Frame.BLOB)
              .putLong(id)
              .put(data, off + done, n)
              .array();
      sendFrame(frame, -1);
      done += n;
    }
  }

  public void writeBlobs(long id, byte[] data) throws SyscallException {
    writeBlobs(id, data, 0, data.length);
  }

  public void error(int code, String message) {
    try {
      byte[] text = message.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      write(
          Frame.ERROR,
          ByteBuffer.allocate(2 + text.length).putShort((short) code).put(text).array());
    } catch (SyscallException ignored) {
      // The peer is gone or not reading: the session ends either way.
    }
  }

  public static void closeQuietly(int fd) {
    if (fd >= 0) {
      Descriptors.close(fd);
    }
  }

  @Override
  public void close() {
    socket.close();
  }
}
