// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

/** Network interfaces by name, in the calling thread's network namespace. */
public final class Interfaces {
  private Interfaces() {}

  /** The interface's index (if_nametoindex); an error names the interface when there is none. */
  public static int index(String name) throws SyscallException {
    return Bpf.interfaceIndex(name);
  }
}
