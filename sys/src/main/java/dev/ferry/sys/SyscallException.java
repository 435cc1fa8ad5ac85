// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.io.IOException;

/**
 * A system call failed; the message names the call, the object and the errno, as in {@code
 * setsockopt(fd=17, TCP_REPAIR_QUEUE) failed: EPERM (Operation not permitted)}.
 */
public class SyscallException extends IOException {
  private final String call;
  private final int errno;

  public SyscallException(String call, int errno) {
    this(call, errno, null);
  }

  public SyscallException(String call, int errno, String hint) {
    super(
        call
            + " failed: "
            + Errno.name(errno)
            + " ("
            + Errno.describe(errno)
            + ")"
            + (hint == null ? "" : ": " + hint));
    this.call = call;
    this.errno = errno;
  }

  /** The call with its arguments, e.g. {@code bind(fd=9, 198.18.0.100:8080)}. */
  public String call() {
    return call;
  }

  public int errno() {
    return errno;
  }
}
