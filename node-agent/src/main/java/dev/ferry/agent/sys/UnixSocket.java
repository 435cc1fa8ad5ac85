// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.sys;

import static dev.ferry.agent.sys.Calls.check;

import java.lang.ref.Reference;
import java.util.Arrays;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

/**
 * A Unix stream socket that carries descriptors with its bytes ({@code SCM_RIGHTS}), the way
 * applications hand connections to the agent.
 */
public final class UnixSocket implements AutoCloseable {
  /** The kernel's limit on descriptors in one message (SCM_MAX_FD). */
  public static final int MAX_FDS = 253;

  // 64-bit layouts: struct msghdr (56 bytes), struct iovec (16), struct cmsghdr (16 + data).
  private static final int MSGHDR_SIZE = 56;
  private static final int MSG_IOV = 16;
  private static final int MSG_IOVLEN = 24;
  private static final int MSG_CONTROL = 32;
  private static final int MSG_CONTROLLEN = 40;
  private static final int MSG_FLAGS = 48;
  private static final int IOVEC_SIZE = 16;
  private static final int CMSG_HEADER = 16;
  private static final int MSG_CTRUNC = 0x8;

  static {
    if (Native.RUNTIME.addressSize() != 8) {
      throw new ExceptionInInitializerError("UnixSocket supports 64-bit Linux only");
    }
  }

  private final int fd;

  private UnixSocket(int fd) {
    this.fd = fd;
  }

  public static UnixSocket adopt(int fd) {
    return new UnixSocket(fd);
  }

  /** Two connected sockets (socketpair(AF_UNIX, SOCK_STREAM)). */
  public static UnixSocket[] pair() throws SyscallException {
    int[] sv = new int[2];
    check(
        () ->
            Native.LIBC.socketpair(Native.AF_UNIX, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0, sv),
        () -> "socketpair(AF_UNIX)");
    return new UnixSocket[] {new UnixSocket(sv[0]), new UnixSocket(sv[1])};
  }

  public int fd() {
    return fd;
  }

  /** Sends {@code data} (at least one byte) with {@code fds} attached; returns bytes sent. */
  public int send(byte[] data, int... fds) throws SyscallException {
    if (data.length == 0) {
      throw new IllegalArgumentException("descriptors travel with at least one data byte");
    }
    if (fds.length > MAX_FDS) {
      throw new IllegalArgumentException("at most " + MAX_FDS + " descriptors per message");
    }
    Pointer buffer = Memory.allocateDirect(Native.RUNTIME, data.length);
    buffer.put(0, data, 0, data.length);
    int controlLen = fds.length == 0 ? 0 : cmsgSpace(fds.length * 4);
    Pointer control =
        controlLen == 0 ? null : Memory.allocateDirect(Native.RUNTIME, controlLen, true);
    if (control != null) {
      control.putLong(0, CMSG_HEADER + fds.length * 4L);
      control.putInt(8, Native.SOL_SOCKET);
      control.putInt(12, Native.SCM_RIGHTS);
      for (int i = 0; i < fds.length; i++) {
        control.putInt(CMSG_HEADER + i * 4L, fds[i]);
      }
    }
    Message msg = new Message(buffer, data.length, control, controlLen);
    try {
      return (int)
          check(
              () -> Native.LIBC.sendmsg(fd, msg.header, Native.MSG_NOSIGNAL),
              () -> "sendmsg(fd=" + fd + ", " + fds.length + " fds)");
    } finally {
      Reference.reachabilityFence(msg);
    }
  }

  /** What one {@link #receive} call got. An empty {@code data} means end of stream. */
  public record Received(byte[] data, int[] fds) {}

  /**
   * Receives up to {@code maxBytes} and up to {@code maxFds} descriptors (close-on-exec).
   *
   * @throws SyscallException with EMFILE semantics if descriptors were cut off: those that did
   *     arrive are closed first, so nothing leaks
   */
  public Received receive(int maxBytes, int maxFds) throws SyscallException {
    Pointer buffer = Memory.allocateDirect(Native.RUNTIME, maxBytes);
    int controlLen = cmsgSpace(Math.max(1, maxFds) * 4);
    Pointer control = Memory.allocateDirect(Native.RUNTIME, controlLen, true);
    Message msg = new Message(buffer, maxBytes, control, controlLen);
    int n;
    try {
      n =
          (int)
              check(
                  () -> Native.LIBC.recvmsg(fd, msg.header, Native.MSG_CMSG_CLOEXEC),
                  () -> "recvmsg(fd=" + fd + ")");
    } finally {
      Reference.reachabilityFence(msg);
    }
    int[] fds = descriptors(control, msg.header.getLong(MSG_CONTROLLEN));
    // CMSG alignment leaves room for one descriptor more than asked: refuse that one too.
    if ((msg.header.getInt(MSG_FLAGS) & MSG_CTRUNC) != 0 || fds.length > maxFds) {
      Arrays.stream(fds).forEach(Native.LIBC::close);
      throw new SyscallException(
          "recvmsg(fd=" + fd + ")", Errno.EMFILE, "more than " + maxFds + " descriptors were sent");
    }
    byte[] data = new byte[n];
    buffer.get(0, data, 0, n);
    return new Received(data, fds);
  }

  private static int[] descriptors(Pointer control, long controlLen) {
    int[] out = new int[0];
    long off = 0;
    while (off + CMSG_HEADER <= controlLen) {
      long len = control.getLong(off);
      if (len < CMSG_HEADER || off + len > controlLen) {
        break;
      }
      if (control.getInt(off + 8) == Native.SOL_SOCKET
          && control.getInt(off + 12) == Native.SCM_RIGHTS) {
        int count = (int) (len - CMSG_HEADER) / 4;
        int base = out.length;
        out = Arrays.copyOf(out, base + count);
        for (int i = 0; i < count; i++) {
          out[base + i] = control.getInt(off + CMSG_HEADER + i * 4L);
        }
      }
      off += cmsgSpace((int) len - CMSG_HEADER);
    }
    return out;
  }

  /** A struct msghdr with one iovec; it keeps every buffer it points to reachable. */
  private static final class Message {
    final Pointer header;
    final Pointer iov;
    final Pointer buffer;
    final Pointer control;

    Message(Pointer buffer, int length, Pointer control, int controlLen) {
      this.buffer = buffer;
      this.control = control;
      iov = Memory.allocateDirect(Native.RUNTIME, IOVEC_SIZE, true);
      iov.putAddress(0, buffer.address());
      iov.putLong(8, length);
      header = Memory.allocateDirect(Native.RUNTIME, MSGHDR_SIZE, true);
      header.putAddress(MSG_IOV, iov.address());
      header.putLong(MSG_IOVLEN, 1);
      if (control != null) {
        header.putAddress(MSG_CONTROL, control.address());
        header.putLong(MSG_CONTROLLEN, controlLen);
      }
    }
  }

  private static int cmsgSpace(int dataLen) {
    return CMSG_HEADER + ((dataLen + 7) & ~7);
  }

  @Override
  public void close() {
    Native.LIBC.close(fd);
  }
}
