// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

/**
 * A process handle ({@code pidfd_open}) through which the agent copies another process's
 * descriptors ({@code pidfd_getfd}, needs PTRACE_MODE_ATTACH: CAP_SYS_PTRACE across users).
 */
public final class Pidfd implements AutoCloseable {
  private final int fd;
  private final long pid;

  private Pidfd(int fd, long pid) {
    this.fd = fd;
    this.pid = pid;
  }

  public static Pidfd open(long pid) throws SyscallException {
    int fd = check(() -> Native.LIBC.pidfd_open((int) pid, 0), () -> "pidfd_open(pid=" + pid + ")");
    return new Pidfd(fd, pid);
  }

  /** A new descriptor in this process for the target's {@code targetFd}, close-on-exec. */
  public int duplicate(int targetFd) throws SyscallException {
    return check(
        () -> Native.LIBC.pidfd_getfd(fd, targetFd, 0),
        () -> "pidfd_getfd(pid=" + pid + ", fd=" + targetFd + ")");
  }

  @Override
  public void close() {
    Native.LIBC.close(fd);
  }
}
