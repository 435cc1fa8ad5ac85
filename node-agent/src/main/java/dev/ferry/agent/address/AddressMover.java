// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.address;

import dev.ferry.sys.Announcer;
import dev.ferry.sys.Errno;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.RtNetlink;
import dev.ferry.sys.SyscallException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Moves a service address between nodes on one LAN: {@link #remove} on the source, then {@link
 * #add} and {@link #announce} on the target, each through netlink and raw sockets, never `ip`.
 *
 * <p>Order matters: between remove and add nobody answers for the address, so clients' segments are
 * lost and retransmitted; between add and announce the target owns it but neighbours still send to
 * the source. Stage the moved connections on the target before {@link #add}, or the target kernel
 * resets any client segment that arrives before their sockets exist.
 *
 * <p>Where pods own the address (the AWS VPC CNI's wiring) the node also routes it to the pod's
 * veth: {@link #removeRoute} on the source node with {@link #remove} in its pod, {@link #add} in
 * the target pod with {@link #addRoute} on its node.
 *
 * <p>Every step is idempotent, so a retried migration step can repeat it: an address already gone
 * (EADDRNOTAVAIL) or already there (EEXIST), a route already gone (ESRCH) or already there (EEXIST)
 * is reported as unchanged, not as a failure.
 */
public final class AddressMover {
  /**
   * What an IPv4 interface keeps while its address is away: link-local, outside the range AWS uses
   * for its services (169.254.169.0/24 and 169.254.170.0/24) and the CNIs' gateway 169.254.1.1.
   */
  public static final InetAddress PLACEHOLDER = ipv4(169, 254, 255, 1);

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

  /**
   * Removes the address from {@code ifname} in {@code ns}. An IPv4 address leaves a host-scoped
   * {@link #PLACEHOLDER} behind: when an interface's last IPv4 address goes, the kernel drops its
   * routes and neighbours, permanent ones too (fib_disable_ip), and a pod whose only address moved
   * would lose its default route and gateway entry for good: the address could come back on a
   * rollback, but the pod could reach nobody. Never chosen as a source, the placeholder keeps them.
   */
  public Step remove(ServiceAddress address, NetNamespace ns, String ifname)
      throws SyscallException {
    long start = System.nanoTime();
    boolean changed =
        ns.call(
            () -> {
              try (RtNetlink rt = RtNetlink.open()) {
                if (address.ip() instanceof Inet4Address) {
                  ignoring(Errno.EEXIST, () -> rt.addHostScopedAddress(ifname, PLACEHOLDER));
                }
                return ignoring(
                    Errno.EADDRNOTAVAIL,
                    () -> rt.removeAddress(ifname, address.ip(), address.prefixLength()));
              }
            });
    return new Step("remove", address, since(start), changed);
  }

  /**
   * Adds the address to {@code ifname} in {@code ns} (IPv6 without duplicate detection), and takes
   * away the {@link #PLACEHOLDER} an earlier {@link #remove} may have left.
   */
  public Step add(ServiceAddress address, NetNamespace ns, String ifname) throws SyscallException {
    long start = System.nanoTime();
    boolean changed =
        ns.call(
            () -> {
              try (RtNetlink rt = RtNetlink.open()) {
                boolean added =
                    ignoring(
                        Errno.EEXIST,
                        () -> rt.addAddress(ifname, address.ip(), address.prefixLength()));
                if (address.ip() instanceof Inet4Address) {
                  ignoring(Errno.EADDRNOTAVAIL, () -> rt.removeAddress(ifname, PLACEHOLDER, 32));
                }
                return added;
              }
            });
    return new Step("add", address, since(start), changed);
  }

  /** Runs {@code call}; false if it failed with {@code expected} (the work was done already). */
  private static boolean ignoring(int expected, NetlinkCall call) throws SyscallException {
    try {
      call.run();
      return true;
    } catch (SyscallException e) {
      if (e.errno() == expected) {
        return false;
      }
      throw e;
    }
  }

  private interface NetlinkCall {
    void run() throws SyscallException;
  }

  /**
   * Routes the address, as a host route (/32 or /128, whatever the pod's prefix), through the pod's
   * veth {@code hostIfname} in the node's namespace {@code hostNs}: {@code ip route add
   * 198.18.0.100/32 dev vethXYZ scope link}. A route to the address already there counts as this
   * one, whatever interface it goes out of (the kernel refuses a second one with EEXIST either
   * way): remove a stale route through another veth first.
   */
  public Step addRoute(ServiceAddress address, NetNamespace hostNs, String hostIfname)
      throws SyscallException {
    long start = System.nanoTime();
    boolean changed =
        hostNs.call(
            () -> {
              try (RtNetlink rt = RtNetlink.open()) {
                rt.addRoute(hostIfname, address.ip(), hostPrefix(address));
                return true;
              } catch (SyscallException e) {
                if (e.errno() == Errno.EEXIST) {
                  return false;
                }
                throw e;
              }
            });
    return new Step("add route", address, since(start), changed);
  }

  /**
   * Removes the host route to the address through {@code hostIfname} in {@code hostNs}, whoever
   * added it; none there (ESRCH) is unchanged.
   */
  public Step removeRoute(ServiceAddress address, NetNamespace hostNs, String hostIfname)
      throws SyscallException {
    long start = System.nanoTime();
    boolean changed =
        hostNs.call(
            () -> {
              try (RtNetlink rt = RtNetlink.open()) {
                rt.removeRoute(hostIfname, address.ip(), hostPrefix(address));
                return true;
              } catch (SyscallException e) {
                if (e.errno() == Errno.ESRCH) {
                  return false;
                }
                throw e;
              }
            });
    return new Step("remove route", address, since(start), changed);
  }

  /**
   * Has the node answer the LAN's neighbour solicitations for an IPv6 address it routes to a pod
   * ({@code ip -6 neigh add proxy ADDRESS dev IFNAME}), what proxy ARP does for IPv4 without an
   * entry per address. Without it a neighbour's entry, repointed at the node by the announcement,
   * fails at its first reachability probe (about 8 s later) and the client can no longer reach the
   * address. The kernel answers only while the node forwards and has {@code
   * net.ipv6.conf.all.proxy_ndp} at 1: the interface's own proxy_ndp covers multicast
   * solicitations, but the neighbour's unicast probe, sent to the address itself, is forwarded
   * traffic to the node, and ip6_forward consults {@code all} alone (net/ipv6/ip6_output.c). Adding
   * it again is harmless: the kernel updates a proxy entry in place and never answers EEXIST for
   * one, so this step always reports a change. An IPv4 address needs none.
   */
  public Step addProxy(ServiceAddress address, NetNamespace hostNs, String ifname)
      throws SyscallException {
    long start = System.nanoTime();
    boolean changed =
        address.ip() instanceof Inet6Address
            && hostNs.call(
                () -> {
                  try (RtNetlink rt = RtNetlink.open()) {
                    return ignoring(Errno.EEXIST, () -> rt.addProxyNeighbour(ifname, address.ip()));
                  }
                });
    return new Step("add proxy", address, since(start), changed);
  }

  /** Undoes {@link #addProxy}; none there is unchanged. */
  public Step removeProxy(ServiceAddress address, NetNamespace hostNs, String ifname)
      throws SyscallException {
    long start = System.nanoTime();
    boolean changed =
        address.ip() instanceof Inet6Address
            && hostNs.call(
                () -> {
                  try (RtNetlink rt = RtNetlink.open()) {
                    return ignoring(
                        Errno.ENOENT, () -> rt.removeProxyNeighbour(ifname, address.ip()));
                  }
                });
    return new Step("remove proxy", address, since(start), changed);
  }

  /** The node routes the one address, whatever prefix it has on the pod's interface. */
  private static int hostPrefix(ServiceAddress address) {
    return address.ip().getAddress().length * 8;
  }

  /**
   * The interface of {@code candidates} in {@code ns} that carries the address: the first with an
   * address whose subnet covers it (10.0.1.5/24 on the service addresses' ENI covers 10.0.1.100),
   * else {@code fallback}. The address itself, where the node holds it, counts too. A candidate
   * that does not exist is skipped: it is not where the address is.
   */
  public String carrier(
      ServiceAddress address, NetNamespace ns, List<String> candidates, String fallback)
      throws SyscallException {
    return carrier(address, assigned(ns, candidates), fallback);
  }

  /**
   * As {@link #carrier}, with this node's own IPv4 address in the subnet that covers the service
   * address (not the service address itself): the tunnel's end here when the address is forwarded.
   * Empty when no candidate's subnet covers it.
   */
  public Optional<Carrier> tunnelCarrier(
      ServiceAddress address, NetNamespace ns, List<String> candidates) throws SyscallException {
    return tunnelCarrier(address, assigned(ns, candidates));
  }

  /** {@link #tunnelCarrier(ServiceAddress, NetNamespace, List)}, decided on what was read. */
  static Optional<Carrier> tunnelCarrier(
      ServiceAddress address, Map<String, List<RtNetlink.Assigned>> byInterface) {
    for (Map.Entry<String, List<RtNetlink.Assigned>> e : byInterface.entrySet()) {
      for (RtNetlink.Assigned a : e.getValue()) {
        if (a.address() instanceof Inet4Address own
            && !own.equals(address.ip())
            && !a.linkScoped()
            && a.covers(address.ip())) {
          return Optional.of(new Carrier(e.getKey(), own));
        }
      }
    }
    return Optional.empty();
  }

  /**
   * The addresses on each of {@code candidates} in {@code ns}; one that does not exist is left out.
   */
  private static Map<String, List<RtNetlink.Assigned>> assigned(
      NetNamespace ns, List<String> candidates) throws SyscallException {
    return ns.call(
        () -> {
          Map<String, List<RtNetlink.Assigned>> found = new LinkedHashMap<>();
          try (RtNetlink rt = RtNetlink.open()) {
            for (String name : candidates) {
              try {
                found.put(name, rt.addresses(name));
              } catch (SyscallException e) {
                if (e.errno() != Errno.ENODEV) {
                  throw e;
                }
              }
            }
          }
          return found;
        });
  }

  /** {@link #carrier(ServiceAddress, NetNamespace, List, String)}, decided on what was read. */
  static String carrier(
      ServiceAddress address, Map<String, List<RtNetlink.Assigned>> byInterface, String fallback) {
    for (Map.Entry<String, List<RtNetlink.Assigned>> e : byInterface.entrySet()) {
      for (RtNetlink.Assigned a : e.getValue()) {
        if (!a.linkScoped() && a.covers(address.ip())) {
          return e.getKey();
        }
      }
    }
    return fallback;
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

  private static InetAddress ipv4(int a, int b, int c, int d) {
    try {
      return InetAddress.getByAddress(new byte[] {(byte) a, (byte) b, (byte) c, (byte) d});
    } catch (java.net.UnknownHostException e) {
      throw new AssertionError("four bytes are an IPv4 address", e);
    }
  }

  private static Duration since(long start) {
    return Duration.ofNanos(System.nanoTime() - start);
  }
}
