// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import jnr.ffi.Memory;
import jnr.ffi.Pointer;

/**
 * A BPF program attached to an interface's clsact hook (tc), in the calling thread's network
 * namespace. It stays attached after this process exits, until {@link #detach()}.
 */
public final class TcAttachment {
  /** enum bpf_tc_attach_point. */
  public enum Direction {
    INGRESS(1),
    EGRESS(2);

    final int code;

    Direction(int code) {
      this.code = code;
    }
  }

  // struct bpf_tc_hook {size_t sz; int ifindex; enum attach_point; __u32 parent;} (libbpf.h)
  private static final int HOOK_SIZE = 24;
  // struct bpf_tc_opts {size_t sz; int prog_fd; __u32 flags, prog_id, handle, priority;}
  private static final int OPTS_SIZE = 32;

  /** Our filter's handle and priority: fixed, so that a restarted agent finds it. */
  private static final int HANDLE = 0xf5;

  private static final int PRIORITY = 0xf5;

  private final String interfaceName;
  private final int ifindex;
  private final Direction direction;

  private TcAttachment(String interfaceName, int ifindex, Direction direction) {
    this.interfaceName = interfaceName;
    this.ifindex = ifindex;
    this.direction = direction;
  }

  /** Attaches (or replaces) Ferry's filter on the interface; creates clsact if needed. */
  public static TcAttachment attach(String interfaceName, Direction direction, int progFd)
      throws SyscallException {
    TcAttachment a = new TcAttachment(interfaceName, Bpf.interfaceIndex(interfaceName), direction);
    Pointer hook = a.hook();
    int rc = Native.Bpf.LIB.bpf_tc_hook_create(hook);
    if (rc < 0 && rc != -Errno.EEXIST) {
      Bpf.check(rc, () -> "bpf_tc_hook_create(" + interfaceName + ", clsact)");
    }
    Pointer opts = opts(progFd, 1); // BPF_TC_F_REPLACE
    Bpf.check(
        Native.Bpf.LIB.bpf_tc_attach(hook, opts),
        () -> "bpf_tc_attach(" + interfaceName + ", " + direction + ")");
    return a;
  }

  /** The attachment already on an interface (after an agent restart), if any. */
  public static boolean isAttached(String interfaceName, Direction direction)
      throws SyscallException {
    TcAttachment a = new TcAttachment(interfaceName, Bpf.interfaceIndex(interfaceName), direction);
    int rc = Native.Bpf.LIB.bpf_tc_query(a.hook(), opts(0, 0));
    if (rc == -Errno.ENOENT || rc == -Errno.EINVAL) {
      return false;
    }
    Bpf.check(rc, () -> "bpf_tc_query(" + interfaceName + ", " + direction + ")");
    return true;
  }

  public static TcAttachment existing(String interfaceName, Direction direction)
      throws SyscallException {
    return new TcAttachment(interfaceName, Bpf.interfaceIndex(interfaceName), direction);
  }

  /** Removes Ferry's filter; leaves clsact and other filters alone. */
  public void detach() throws SyscallException {
    int rc = Native.Bpf.LIB.bpf_tc_detach(hook(), opts(0, 0));
    if (rc != -Errno.ENOENT) {
      Bpf.check(rc, () -> "bpf_tc_detach(" + interfaceName + ", " + direction + ")");
    }
  }

  private Pointer hook() {
    Pointer hook = Memory.allocateDirect(Native.RUNTIME, HOOK_SIZE, true);
    hook.putLong(0, HOOK_SIZE);
    hook.putInt(8, ifindex);
    hook.putInt(12, direction.code);
    return hook;
  }

  private static Pointer opts(int progFd, int flags) {
    Pointer opts = Memory.allocateDirect(Native.RUNTIME, OPTS_SIZE, true);
    opts.putLong(0, OPTS_SIZE);
    opts.putInt(8, progFd);
    opts.putInt(12, flags);
    opts.putInt(20, HANDLE);
    opts.putInt(24, PRIORITY);
    return opts;
  }
}
