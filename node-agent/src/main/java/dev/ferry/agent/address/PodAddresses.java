// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.address;

import dev.ferry.agent.migration.BadRequest;
import dev.ferry.agent.migration.PodNamespaces;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.RtNetlink;
import dev.ferry.sys.SyscallException;
import java.io.IOException;
import java.net.Inet6Address;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * A service address on this node: on a pod's interface, routed to the pod through its veth, and
 * announced to the LAN. Used by the MoveAddress call and by the agents' own moves alike.
 */
public final class PodAddresses {
  private static final Logger LOG = Logger.getLogger(PodAddresses.class.getName());

  private final PodNamespaces pods;
  private final String uplink;
  private final List<String> carriers;
  private final AddressMover mover = new AddressMover();
  private final AddressClaims claims = new AddressClaims();

  /** What a claim is on: one address on one pod. */
  private record Claimed(ServiceAddress address, PodRef pod) {}

  /**
   * Announcements of an address leave from the first of {@code carriers} (the hold's interfaces)
   * whose subnet covers it, else from the {@code uplink}.
   */
  public PodAddresses(PodNamespaces pods, String uplink, List<String> carriers) {
    this.pods = pods;
    this.uplink = uplink;
    this.carriers = List.copyOf(carriers);
  }

  public static ServiceAddress parse(String field, String cidr) {
    try {
      return ServiceAddress.parse(cidr);
    } catch (IllegalArgumentException e) {
      throw new BadRequest(field + ": " + e.getMessage() + " (want ADDRESS/PREFIX)");
    }
  }

  /**
   * The address on the pod's {@code ifname}, and (with {@code hostInterface} or {@code hostRoute})
   * the node's route to it and, for IPv6, the node's proxy entry for it on the interface that
   * carries it ({@link AddressMover#addProxy}), so that the node answers the LAN for it.
   */
  public List<AddressMover.Step> add(
      ServiceAddress a, PodRef pod, String ifname, String hostInterface, boolean hostRoute)
      throws SyscallException {
    List<AddressMover.Step> steps = new ArrayList<>();
    try (NetNamespace ns = pods.open(pod, "pod")) {
      steps.add(mover.add(a, ns, ifname));
      addNodeRoute(a, ns, ifname, hostInterface, hostRoute, steps);
    }
    return logged(steps);
  }

  /**
   * The node's half of {@link #add} alone, for an address an arrival's {@link #claim} has put on
   * the pod already: its commit routes the address while the clients are held, and adding it to the
   * pod again would only find it there (an EEXIST, a few milliseconds the first time).
   */
  public List<AddressMover.Step> route(
      ServiceAddress a, PodRef pod, String ifname, String hostInterface, boolean hostRoute)
      throws SyscallException {
    List<AddressMover.Step> steps = new ArrayList<>();
    try (NetNamespace ns = pods.open(pod, "pod")) {
      addNodeRoute(a, ns, ifname, hostInterface, hostRoute, steps);
    }
    return logged(steps);
  }

  private void addNodeRoute(
      ServiceAddress a,
      NetNamespace pod,
      String ifname,
      String hostInterface,
      boolean hostRoute,
      List<AddressMover.Step> steps)
      throws SyscallException {
    String hostIf = hostInterface(pod, ifname, hostInterface, hostRoute);
    if (hostIf.isEmpty()) {
      return;
    }
    try (NetNamespace host = NetNamespace.current()) {
      steps.add(mover.addRoute(a, host, hostIf));
      if (a.ip() instanceof Inet6Address) {
        steps.add(mover.addProxy(a, host, mover.carrier(a, host, carriers, uplink)));
        warnUnlessProxyNdp();
      }
    }
  }

  /**
   * An arrival's {@link #add} of the address to its target pod (without the node's route, which
   * comes at {@link #add} later), remembered until {@link #release}: see {@link AddressClaims}.
   */
  public void claim(ServiceAddress a, PodRef pod, String ifname, Object arrival)
      throws SyscallException {
    claims.claim(
        new Claimed(a, pod),
        arrival,
        () -> add(a, pod, ifname, "", false).stream().anyMatch(AddressMover.Step::changed));
  }

  /**
   * The arrival is over: committed, or rolled back, and then the address and the node's route to it
   * go, unless another arrival relies on them or the pod had the address before.
   *
   * @return whether the address was removed
   */
  public boolean release(
      ServiceAddress a,
      PodRef pod,
      String ifname,
      String hostInterface,
      boolean hostRoute,
      Object arrival,
      boolean committed)
      throws SyscallException {
    return claims.release(
        new Claimed(a, pod),
        arrival,
        committed,
        () -> {
          remove(a, pod, ifname, hostInterface, hostRoute);
          return true;
        });
  }

  /** Undoes {@link #add}: the route first, so that nothing is delivered to an address going. */
  public List<AddressMover.Step> remove(
      ServiceAddress a, PodRef pod, String ifname, String hostInterface, boolean hostRoute)
      throws SyscallException {
    List<AddressMover.Step> steps = new ArrayList<>();
    try (NetNamespace ns = pods.open(pod, "pod")) {
      String hostIf = hostInterface(ns, ifname, hostInterface, hostRoute);
      if (!hostIf.isEmpty()) {
        try (NetNamespace host = NetNamespace.current()) {
          if (a.ip() instanceof Inet6Address) {
            steps.add(mover.removeProxy(a, host, mover.carrier(a, host, carriers, uplink)));
          }
          steps.add(mover.removeRoute(a, host, hostIf));
        }
      }
      steps.add(mover.remove(a, ns, ifname));
    }
    return logged(steps);
  }

  /**
   * A gratuitous ARP (IPv4) or unsolicited neighbour advertisement from the node's interface that
   * carries the address ({@link AddressMover#carrier}).
   */
  public List<AddressMover.Step> announce(ServiceAddress a) throws SyscallException {
    try (NetNamespace host = NetNamespace.current()) {
      String ifname = mover.carrier(a, host, carriers, uplink);
      return logged(List.of(mover.announce(a, host, ifname)));
    }
  }

  /**
   * Where {@code a}'s traffic arrives on this node, and the node's own IPv4 address there: the
   * hold's interface whose subnet covers it. Empty when none does (then it is not forwarded).
   */
  public Optional<Carrier> tunnelCarrier(ServiceAddress a) throws SyscallException {
    try (NetNamespace host = NetNamespace.current()) {
      return mover.tunnelCarrier(a, host, carriers);
    }
  }

  /**
   * The proxy entry answers nobody unless the node forwards IPv6 and has proxy_ndp on for {@code
   * all}: say so, naming the setting, rather than let clients lose the address seconds after a
   * move.
   */
  private static void warnUnlessProxyNdp() {
    for (String setting : List.of("forwarding", "proxy_ndp")) {
      Path file = Path.of("/proc/sys/net/ipv6/conf/all", setting);
      try {
        if (!Files.readString(file).trim().equals("1")) {
          LOG.warning(
              () ->
                  "net.ipv6.conf.all."
                      + setting
                      + " is not 1 on this node: it will not answer the LAN's neighbour"
                      + " solicitations for the IPv6 addresses it routes to pods, and clients lose"
                      + " them at their next reachability probe (set it with sysctl)");
        }
      } catch (IOException e) {
        LOG.warning(() -> "cannot read " + file + ": " + e.getMessage());
      }
    }
  }

  /** The node's end of the veth whose other end is the pod's {@code ifname}, when asked for. */
  private static String hostInterface(NetNamespace pod, String ifname, String given, boolean findIt)
      throws SyscallException {
    if (!given.isEmpty() || !findIt) {
      return given;
    }
    int index =
        pod.call(
            () -> {
              try (RtNetlink rt = RtNetlink.open()) {
                return rt.peerIndex(ifname);
              }
            });
    return RtNetlink.interfaceName(index);
  }

  private static List<AddressMover.Step> logged(List<AddressMover.Step> steps) {
    steps.forEach(s -> LOG.info(s::toString));
    return steps;
  }
}
