// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import jnr.ffi.byref.IntByReference;

/**
 * A BPF program attached at an interface's XDP hook, in the calling thread's network namespace. It
 * stays attached after this process exits, until {@link #detach()}.
 */
public final class XdpAttachment {
  /** XDP_FLAGS_* (linux/if_link.h). */
  public enum Mode {
    /** Generic XDP: works on any device; replies sent with XDP_TX go out as they should on veth. */
    GENERIC(1 << 1),
    NATIVE(1 << 2);

    final int flag;

    Mode(int flag) {
      this.flag = flag;
    }
  }

  private final String interfaceName;
  private final int ifindex;
  private final Mode mode;

  private XdpAttachment(String interfaceName, int ifindex, Mode mode) {
    this.interfaceName = interfaceName;
    this.ifindex = ifindex;
    this.mode = mode;
  }

  public static XdpAttachment attach(String interfaceName, int progFd, Mode mode)
      throws SyscallException {
    int ifindex = Bpf.interfaceIndex(interfaceName);
    Bpf.check(
        Native.Bpf.LIB.bpf_xdp_attach(ifindex, progFd, mode.flag, null),
        () -> "bpf_xdp_attach(" + interfaceName + ", " + mode + ")");
    return new XdpAttachment(interfaceName, ifindex, mode);
  }

  public static XdpAttachment existing(String interfaceName, Mode mode) throws SyscallException {
    return new XdpAttachment(interfaceName, Bpf.interfaceIndex(interfaceName), mode);
  }

  /** The id of the program attached in {@code mode}, or 0. */
  public static int attachedProgramId(String interfaceName, Mode mode) throws SyscallException {
    IntByReference id = new IntByReference();
    int ifindex = Bpf.interfaceIndex(interfaceName);
    Bpf.check(
        Native.Bpf.LIB.bpf_xdp_query_id(ifindex, mode.flag, id),
        () -> "bpf_xdp_query_id(" + interfaceName + ")");
    return id.intValue();
  }

  public void detach() throws SyscallException {
    Bpf.check(
        Native.Bpf.LIB.bpf_xdp_detach(ifindex, mode.flag, null),
        () -> "bpf_xdp_detach(" + interfaceName + ", " + mode + ")");
  }
}
