// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

/**
 * A LAN: the nodes answer for the address themselves (proxy ARP through the host route), and the
 * neighbours learn the new node from its announcement.
 */
public final class LanFabric implements Fabric {
  @Override
  public void claim(String address, String node) {
    // Nothing outside the nodes: the host routes the agents set are the claim.
  }

  @Override
  public void claimBack(String address, String node) {
    // Nothing outside the nodes either: the source agent's rollback routes the address back.
  }

  @Override
  public boolean announces() {
    return true;
  }

  /** The agents' host routes move the address on a LAN: nothing to claim between. */
  @Override
  public boolean claimsBeforeCommit() {
    return false;
  }
}
