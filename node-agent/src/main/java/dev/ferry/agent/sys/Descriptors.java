// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.sys;

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
}
