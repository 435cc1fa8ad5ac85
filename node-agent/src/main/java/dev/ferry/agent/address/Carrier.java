// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.address;

import java.net.Inet4Address;

/**
 * The interface that carries a service address's traffic on this node, and the node's own IPv4
 * address on it (in the same subnet): where a forwarded address's tunnel ends here.
 */
public record Carrier(String ifname, Inet4Address local) {}
