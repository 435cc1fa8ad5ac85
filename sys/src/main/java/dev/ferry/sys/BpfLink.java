// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

/**
 * A BPF link: what it attaches (a struct_ops registration, say) lasts until it is closed or its
 * process exits, whichever comes first.
 */
public final class BpfLink implements AutoCloseable {
  private final int fd;
  private final String name;

  BpfLink(int fd, String name) {
    this.fd = fd;
    this.name = name;
  }

  /** What the link attaches, for logs. */
  public String name() {
    return name;
  }

  @Override
  public void close() {
    Native.LIBC.close(fd);
  }
}
