// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.util.function.IntSupplier;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/** Runs a system call, retries it on EINTR and turns any other failure into an exception. */
final class Calls {
  private Calls() {}

  static int check(IntSupplier call, Supplier<String> what) throws SyscallException {
    while (true) {
      int rc = call.getAsInt();
      if (rc >= 0) {
        return rc;
      }
      int errno = Native.errno();
      if (errno != Errno.EINTR) {
        throw new SyscallException(what.get(), errno);
      }
    }
  }

  static long check(LongSupplier call, Supplier<String> what) throws SyscallException {
    while (true) {
      long rc = call.getAsLong();
      if (rc >= 0) {
        return rc;
      }
      int errno = Native.errno();
      if (errno != Errno.EINTR) {
        throw new SyscallException(what.get(), errno);
      }
    }
  }
}
