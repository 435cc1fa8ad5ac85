// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

/**
 * The network beyond the nodes: what must happen for clients' packets to the address to reach the
 * node that now has it.
 */
public interface Fabric {
  /** Makes the network deliver the address to {@code node}; returns once it does. */
  void claim(String address, String node) throws Exception;

  /** Whether neighbours must hear of the move from the node (gratuitous ARP / unsolicited NA). */
  boolean announces();

  /**
   * Whether the operator claims the address from the network itself, between staging and commit
   * (the agents' Move stops at AWAITING_ADDRESS for it): true where the network must be told, as
   * EC2 must.
   */
  boolean claimsBeforeCommit();
}
