// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jnr.ffi.byref.IntByReference;

/** Checks on bare descriptors that arrive from other processes. */
public final class Descriptors {
  private static final int SO_PROTOCOL = 38;
  private static final int SO_DOMAIN = 39;
  private static final int IPPROTO_TCP = 6;

  private Descriptors() {}

  /** True if {@code fd} is an IPv4 or IPv6 TCP socket; false for anything else, or no fd. */
  public static boolean isTcpSocket(int fd) {
    int domain = intOption(fd, SO_DOMAIN);
    return (domain == Native.AF_INET || domain == Native.AF_INET6)
        && intOption(fd, SO_PROTOCOL) == IPPROTO_TCP;
  }

  /** SIOCGSKNS (linux/sockios.h): a new descriptor of the socket's network namespace. */
  private static final long SIOCGSKNS = 0x894C;

  /**
   * The network namespace the socket behind {@code fd} was created in, by its nsfs inode (as {@link
   * NetNamespace#inode()}): where its connection lives, whoever holds the descriptor now. Needs
   * CAP_NET_ADMIN over that namespace.
   */
  public static long socketNamespace(int fd) throws SyscallException {
    int ns =
        Calls.check(
            () -> Native.LIBC.ioctl(fd, SIOCGSKNS, new jnr.ffi.byref.IntByReference()),
            () -> "ioctl(fd=" + fd + ", SIOCGSKNS)");
    java.nio.file.Path link = java.nio.file.Path.of("/proc/self/fd", Integer.toString(ns));
    try {
      return (Long) java.nio.file.Files.getAttribute(link, "unix:ino");
    } catch (java.io.IOException e) {
      throw new SyscallException("stat(" + link + ")", 5 /* EIO */, e.getMessage());
    } finally {
      Native.LIBC.close(ns);
    }
  }

  /**
   * Drops this process's reference to the socket behind {@code fd} without closing it, shutting it
   * down or telling its peer anything: {@code fd} then names a fresh, unconnected TCP socket that
   * the owner closes as usual.
   *
   * <p>For a socket handed to another process: a runtime's own close of the original (the JDK's
   * sockets shut down output before closing, for one) would otherwise send a FIN for a connection
   * that now lives elsewhere.
   */
  public static void detach(int fd) throws SyscallException {
    int placeholder =
        Calls.check(
            () -> Native.LIBC.socket(Native.AF_INET, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0),
            () -> "socket(AF_INET, SOCK_STREAM) for a placeholder");
    try {
      // dup3 swaps the file behind fd in one step: no moment where fd is free for reuse.
      Calls.check(
          () -> Native.LIBC.dup3(placeholder, fd, Native.O_CLOEXEC),
          () -> "dup3(placeholder, fd " + fd + ")");
    } finally {
      Native.LIBC.close(placeholder);
    }
  }

  public static void close(int fd) {
    if (fd >= 0) {
      Native.LIBC.close(fd);
    }
  }

  private static int intOption(int fd, int option) {
    byte[] raw = new byte[4];
    IntByReference len = new IntByReference(4);
    if (Native.LIBC.getsockopt(fd, Native.SOL_SOCKET, option, raw, len) < 0) {
      return -1;
    }
    return ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder()).getInt();
  }

  /** Waits up to {@code timeoutMillis} for {@code events} (POLLIN, POLLOUT) on {@code fd}. */
  static boolean poll(int fd, short events, int timeoutMillis) throws SyscallException {
    // struct pollfd { int fd; short events; short revents; }
    byte[] pfd =
        java.nio.ByteBuffer.allocate(8)
            .order(java.nio.ByteOrder.nativeOrder())
            .putInt(fd)
            .putShort(events)
            .array();
    return Calls.check(() -> Native.LIBC.poll(pfd, 1, timeoutMillis), () -> "poll(fd=" + fd + ")")
        > 0;
  }
}
