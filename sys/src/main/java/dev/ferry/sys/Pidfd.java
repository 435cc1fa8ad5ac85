// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

/**
 * A process handle ({@code pidfd_open}, or a Unix socket peer's {@code SO_PEERPIDFD}) through which
 * the agent copies another process's descriptors ({@code pidfd_getfd}, needs PTRACE_MODE_ATTACH:
 * CAP_SYS_PTRACE across users), and tells whether that very process still lives: unlike its pid, a
 * pidfd is never reused.
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

  /** Takes ownership of {@code fd}, a pidfd of process {@code pid}. */
  static Pidfd adopt(int fd, long pid) {
    return new Pidfd(fd, pid);
  }

  /**
   * Whether the process has not exited (a zombie counts as alive: its pid is not free yet). While
   * it is alive, its pid names it and nothing else.
   */
  public boolean alive() throws SyscallException {
    if (Native.LIBC.pidfd_send_signal(fd, 0, null, 0) == 0) {
      return true;
    }
    int errno = Native.errno();
    if (errno == Errno.ESRCH) {
      return false;
    }
    throw new SyscallException("pidfd_send_signal(pid=" + pid + ", 0)", errno);
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
