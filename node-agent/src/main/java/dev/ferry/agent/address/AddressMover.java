// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.address;

import dev.ferry.sys.Announcer;
import dev.ferry.sys.Errno;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.RtNetlink;
import dev.ferry.sys.SyscallException;
import java.time.Duration;

/**
 * Moves a service address between nodes on one LAN: {@link #remove} on the source, then {@link
 * #add} and {@link #announce} on the target, each through netlink and raw sockets, never `ip`.
 *
 * <p>Order matters: between remove and add nobody answers for the address, so clients' segments are
 * lost and retransmitted; between add and announce the target owns it but neighbours still send to
 * the source. Stage the moved connections on the target before {@link #add}, or the target kernel
 * resets any client segment that arrives before their sockets exist.
 *
 * <p>Remove and add are idempotent, so a retried migration step can repeat them: an address already
 * gone (EADDRNOTAVAIL) or already there (EEXIST) is reported as unchanged, not as a failure.
 */
public final class AddressMover {

  /** One step and how long it took, setns included, for the caller to report. */
  public record Step(String name, ServiceAddress address, Duration took, boolean changed) {
    @Override
    public String toString() {
      return name
          + " "
          + address
          + " took "
          + took.toNanos() / 1000
          + " µs"
          + (changed ? "" : " (nothing to do)");
    }
  }

  /** Removes the address from {@code ifname} in {@code ns}. */
  public Step remove(ServiceAddress address, NetNamespace ns, String ifname)
      throws SyscallException {
    long start = System.nanoTime();
    boolean changed =
        ns.call(
            () -> {
              try (RtNetlink rt = RtNetlink.open()) {
                rt.removeAddress(ifname, address.ip(), address.prefixLength());
                return true;
              } catch (SyscallException e) {
                if (e.errno() == Errno.EADDRNOTAVAIL) {
                  return false;
                }
                throw e;
              }
            });
    return new Step("remove", address, since(start), changed);
  }

  /** Adds the address to {@code ifname} in {@code ns} (IPv6 without duplicate detection). */
  public Step add(ServiceAddress address, NetNamespace ns, String ifname) throws SyscallException {
    long start = System.nanoTime();
    boolean changed =
        ns.call(
            () -> {
              try (RtNetlink rt = RtNetlink.open()) {
                rt.addAddress(ifname, address.ip(), address.prefixLength());
                return true;
              } catch (SyscallException e) {
                if (e.errno() == Errno.EEXIST) {
                  return false;
                }
                throw e;
              }
            });
    return new Step("add", address, since(start), changed);
  }

  /**
   * Sends one gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) for the address
   * from {@code ifname} in {@code ns}, which must already hold it.
   */
  public Step announce(ServiceAddress address, NetNamespace ns, String ifname)
      throws SyscallException {
    long start = System.nanoTime();
    ns.call(
        () -> {
          Announcer.announce(ifname, address.ip());
          return null;
        });
    return new Step("announce", address, since(start), true);
  }

  private static Duration since(long start) {
    return Duration.ofNanos(System.nanoTime() - start);
  }
}
