// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.agent.address.Carrier;
import dev.ferry.agent.address.PodAddresses;
import dev.ferry.agent.address.ServiceAddress;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.sys.SyscallException;
import java.net.Inet4Address;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * The ends of a move's forwarding tunnel (docs/aws.md), as the source and the target agree on them
 * in the Arrive stream: the source offers its end in the header, the target answers with its own
 * when it stages. Only for an IPv4 address the caller claims from the network, on nodes that
 * forward, through an interface whose subnet covers the address.
 */
final class TunnelEnds {
  private static final Logger LOG = Logger.getLogger(TunnelEnds.class.getName());

  private TunnelEnds() {}

  /** This node's end for the move's address; empty, and why logged, when it is not forwarded. */
  static Optional<Carrier> local(NodeParts node, MoveAddressPlan plan, String migration) {
    if (!plan.getClaimedByCaller() || plan.getCidr().isEmpty() || !node.forwarding().on()) {
      return Optional.empty();
    }
    ServiceAddress a = PodAddresses.parse("address.cidr", plan.getCidr());
    if (!(a.ip() instanceof Inet4Address)) {
      return Optional.empty(); // the tunnel is IPv4; EC2 does not reassign IPv6 addresses anyway
    }
    try {
      Optional<Carrier> c = node.addresses().tunnelCarrier(a);
      if (c.isEmpty()) {
        LOG.warning(
            () ->
                "migration "
                    + migration
                    + ": no hold interface's subnet covers "
                    + a
                    + ", so it is not forwarded and the clients wait for the network; list the"
                    + " interface that carries it in ferry.agent.hold-interfaces");
      }
      return c;
    } catch (SyscallException e) {
      LOG.warning(
          () ->
              "migration "
                  + migration
                  + ": cannot read this node's interfaces ("
                  + e.getMessage()
                  + "): "
                  + a
                  + " is not forwarded");
      return Optional.empty();
    }
  }

  /** The move's address, IPv4 (as {@link #local} found it). */
  static Inet4Address address(MoveAddressPlan plan) {
    return (Inet4Address) PodAddresses.parse("address.cidr", plan.getCidr()).ip();
  }

  /** The other node's end, as its agent sent it: an IPv4 literal, or a BadRequest naming it. */
  static Inet4Address peer(String field, String endpoint) {
    ServiceAddress a;
    try {
      a = ServiceAddress.parse(endpoint + "/32");
    } catch (IllegalArgumentException e) {
      throw new BadRequest(field + ": '" + endpoint + "' is not an IPv4 address");
    }
    if (!(a.ip() instanceof Inet4Address v4)) {
      throw new BadRequest(field + ": '" + endpoint + "' is not an IPv4 address");
    }
    return v4;
  }
}
