// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.util.function.Supplier;

/** libbpf's convention: a negative return value is the negated errno. */
final class Bpf {
  private Bpf() {}

  static int check(int rc, Supplier<String> what) throws SyscallException {
    if (rc < 0) {
      throw new SyscallException(what.get(), -rc);
    }
    return rc;
  }

  /** The interface index of {@code name} in the calling thread's network namespace. */
  static int interfaceIndex(String name) throws SyscallException {
    int index = Native.LIBC.if_nametoindex(name);
    if (index == 0) {
      throw new SyscallException("if_nametoindex(" + name + ")", Native.errno());
    }
    return index;
  }
}
