// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.lang.ref.Reference;
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

  /**
   * One of Ferry's filters on a hook: its handle and priority, fixed so that a restarted agent
   * finds it. A lower priority runs first, and a filter that returns TC_ACT_UNSPEC lets the next
   * one run.
   */
  public record Slot(int handle, int priority) {}

  /** The hold's filter (egress). */
  public static final Slot HOLD = new Slot(0xf5, 0xf5);

  /** The forwarding tunnel's filters: after the hold's on egress, so that it sees its rewrites. */
  public static final Slot TUNNEL = new Slot(0xf6, 0xf6);

  private final String interfaceName;
  private final int ifindex;
  private final Direction direction;
  private final Slot slot;

  private TcAttachment(String interfaceName, int ifindex, Direction direction, Slot slot) {
    this.interfaceName = interfaceName;
    this.ifindex = ifindex;
    this.direction = direction;
    this.slot = slot;
  }

  /** Attaches (or replaces) the hold's filter on the interface; creates clsact if needed. */
  public static TcAttachment attach(String interfaceName, Direction direction, int progFd)
      throws SyscallException {
    return attach(interfaceName, direction, progFd, HOLD);
  }

  /** Attaches (or replaces) Ferry's filter in {@code slot}; creates clsact if needed. */
  public static TcAttachment attach(
      String interfaceName, Direction direction, int progFd, Slot slot) throws SyscallException {
    TcAttachment a =
        new TcAttachment(interfaceName, Bpf.interfaceIndex(interfaceName), direction, slot);
    Pointer hook = a.hook();
    Pointer opts = a.opts(progFd, 1); // BPF_TC_F_REPLACE
    try {
      int rc = Native.Bpf.LIB.bpf_tc_hook_create(hook);
      if (rc < 0 && rc != -Errno.EEXIST) {
        Bpf.check(rc, () -> "bpf_tc_hook_create(" + interfaceName + ", clsact)");
      }
      Bpf.check(
          Native.Bpf.LIB.bpf_tc_attach(hook, opts),
          () -> "bpf_tc_attach(" + interfaceName + ", " + direction + ")");
      return a;
    } finally {
      fence(hook, opts);
    }
  }

  /** Whether the hold's filter is on an interface (after an agent restart). */
  public static boolean isAttached(String interfaceName, Direction direction)
      throws SyscallException {
    return isAttached(interfaceName, direction, HOLD);
  }

  /** Whether Ferry's filter in {@code slot} is on an interface (after an agent restart). */
  public static boolean isAttached(String interfaceName, Direction direction, Slot slot)
      throws SyscallException {
    TcAttachment a =
        new TcAttachment(interfaceName, Bpf.interfaceIndex(interfaceName), direction, slot);
    Pointer hook = a.hook();
    Pointer opts = a.opts(0, 0);
    int rc;
    try {
      rc = Native.Bpf.LIB.bpf_tc_query(hook, opts);
    } finally {
      fence(hook, opts);
    }
    if (rc == -Errno.ENOENT || rc == -Errno.EINVAL) {
      return false;
    }
    Bpf.check(rc, () -> "bpf_tc_query(" + interfaceName + ", " + direction + ")");
    return true;
  }

  public static TcAttachment existing(String interfaceName, Direction direction)
      throws SyscallException {
    return existing(interfaceName, direction, HOLD);
  }

  public static TcAttachment existing(String interfaceName, Direction direction, Slot slot)
      throws SyscallException {
    return new TcAttachment(interfaceName, Bpf.interfaceIndex(interfaceName), direction, slot);
  }

  /** Removes Ferry's filter; leaves clsact and other filters alone. */
  public void detach() throws SyscallException {
    Pointer hook = hook();
    Pointer opts = opts(0, 0);
    int rc;
    try {
      rc = Native.Bpf.LIB.bpf_tc_detach(hook, opts);
    } finally {
      fence(hook, opts);
    }
    if (rc != -Errno.ENOENT) {
      Bpf.check(rc, () -> "bpf_tc_detach(" + interfaceName + ", " + direction + ")");
    }
  }

  /**
   * Keeps the structs libbpf reads alive until its call has returned: jnr frees allocated memory in
   * a finalizer once nothing refers to it, and a call holds only the raw address.
   */
  private static void fence(Pointer hook, Pointer opts) {
    Reference.reachabilityFence(hook);
    Reference.reachabilityFence(opts);
  }

  private Pointer hook() {
    Pointer hook = Memory.allocateDirect(Native.RUNTIME, HOOK_SIZE, true);
    hook.putLong(0, HOOK_SIZE);
    hook.putInt(8, ifindex);
    hook.putInt(12, direction.code);
    return hook;
  }

  private Pointer opts(int progFd, int flags) {
    Pointer opts = Memory.allocateDirect(Native.RUNTIME, OPTS_SIZE, true);
    opts.putLong(0, OPTS_SIZE);
    opts.putInt(8, progFd);
    opts.putInt(12, flags);
    opts.putInt(20, slot.handle());
    opts.putInt(24, slot.priority());
    return opts;
  }
}
