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
  /**
   * The most one receive asks the kernel for. Memory for a frame is taken as its bytes arrive, in
   * pieces no larger than this, never at the size its length announces: a peer that announces 1 MiB
   * and sends nothing costs nothing.
   */
  private static final int RECEIVE_PIECE = 64 << 10;

  private final UnixSocket socket;
  private final long frameTimeoutMillis;

  /** A channel that waits for the rest of a started frame as long as it takes. */
  public FrameChannel(UnixSocket socket) {
    this(socket, 0);
  }

  /**
   * @param frameTimeoutMillis how long the rest of a frame may take once its first byte has come; 0
   *     for no limit. Bounds a peer that starts a frame and stalls: it would hold the reader
   *     forever. Silence between frames is not limited here.
   */
  public FrameChannel(UnixSocket socket, long frameTimeoutMillis) {
    if (frameTimeoutMillis < 0) {
      throw new IllegalArgumentException("frameTimeoutMillis must be 0 or more");
    }
    this.socket = socket;
    this.frameTimeoutMillis = frameTimeoutMillis;
  }

  public UnixSocket socket() {
    return socket;
  }

  /**
   * The next frame, or null at end of stream.
   *
   * @throws ProtocolException the framing is broken and the caller answers ERROR and closes the
   *     session: a length of 0 ({@link Frame#ERR_MALFORMED}), a length over {@link Frame#MAX_FRAME}
   *     read as unsigned, 0xFFFFFFFF included ({@link Frame#ERR_TOO_LARGE}), a stream that ends
   *     inside a frame ({@link Frame#ERR_MALFORMED}), or a frame not whole within the frame timeout
   *     ({@link Frame#ERR_TIMED_OUT})
   */
  public Frame read() throws SyscallException, ProtocolException {
    Reading r = new Reading();
    try {
      byte[] header = r.exactly(4, "length", true);
      if (header == null) {
        return null;
      }
      long length = Integer.toUnsignedLong(ByteBuffer.wrap(header).getInt());
      if (length == 0) {
        throw new ProtocolException(
            Frame.ERR_MALFORMED, "frame length 0: a frame holds at least its type byte");
      }
      if (length > Frame.MAX_FRAME) {
        throw new ProtocolException(
            Frame.ERR_TOO_LARGE,
            "frame length " + length + " is over the largest frame, " + Frame.MAX_FRAME);
      }
      byte[] body = r.exactly((int) length, "body", false);
      int fd = r.fd;
      r.fd = -1;
      return new Frame(body[0] & 0xff, Arrays.copyOfRange(body, 1, body.length), fd);
    } finally {
      closeQuietly(r.fd); // a descriptor of a frame that was refused is not kept
    }
  }

  /** One frame being read: the descriptor that came with it, and when its first byte came. */
  private final class Reading {
    int fd = -1;
    long deadline; // System.nanoTime(); set once the frame's first byte is in

    /** Reads n bytes, growing the buffer as they arrive; null at a clean end of stream. */
    byte[] exactly(int n, String what, boolean endAllowed)
        throws SyscallException, ProtocolException {
      byte[] out = new byte[Math.min(n, RECEIVE_PIECE)];
      int got = 0;
      while (got < n) {
        if (deadline != 0) {
          awaitRest(n, got, what);
        }
        UnixSocket.Received r = socket.receive(Math.min(n - got, RECEIVE_PIECE), 1);
        for (int received : r.fds()) {
          if (fd == -1) {
            fd = received;
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
        if (deadline == 0 && frameTimeoutMillis > 0) {
          deadline = System.nanoTime() + frameTimeoutMillis * 1_000_000;
        }
        if (got + r.data().length > out.length) {
          out =
              Arrays.copyOf(
                  out, (int) Math.min(n, Math.max(2L * out.length, got + r.data().length)));
        }
        System.arraycopy(r.data(), 0, out, got, r.data().length);
        got += r.data().length;
      }
      return out;
    }

    private void awaitRest(int n, int got, String what) throws SyscallException, ProtocolException {
      long left = deadline - System.nanoTime();
      if (left <= 0 || !socket.awaitReadable((int) Math.max(1, left / 1_000_000))) {
        throw new ProtocolException(
            Frame.ERR_TIMED_OUT,
            "a frame was not whole "
                + frameTimeoutMillis
                + " ms after it began ("
                + got
                + " of "
                + n
                + " bytes of its "
                + what
                + " came)");
      }
    }
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
