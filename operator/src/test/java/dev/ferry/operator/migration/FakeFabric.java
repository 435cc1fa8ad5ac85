// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.operator.address.AddressClaimFailed;
import dev.ferry.operator.address.Fabric;
import java.util.ArrayList;
import java.util.List;

/**
 * A network that records each claim, {@code address->node}, and each claim-back, {@code
 * address->node (back)}: a LAN, or one (like EC2) where the operator claims.
 */
final class FakeFabric implements Fabric {
  final boolean claims;
  final List<String> claimed = new ArrayList<>();

  /** EC2 turns the claim for this node down: nothing assigned. */
  String refuseFor;

  /** The claim for this node is accepted and does not show in time: it may still land. */
  String unsettledFor;

  /** A claim for this node cannot be made (no interface in the subnet): the check says so. */
  String checkRefusedFor;

  /** Each check, {@code address->node}. */
  final List<String> checked = new ArrayList<>();

  FakeFabric(boolean claims) {
    this.claims = claims;
  }

  @Override
  public void claim(String address, String node) {
    claimed.add(address + "->" + node);
    if (node.equals(refuseFor)) {
      throw new AddressClaimFailed(
              "AssignPrivateIpAddresses on eni-0b failed: UnauthorizedOperation; allow"
                  + " ec2:AssignPrivateIpAddresses to the operator's role"
                  + " (docs/aws-iam-policy.json)")
          .assignedNothing();
    }
    if (node.equals(unsettledFor)) {
      throw new AddressClaimFailed(
          "EC2 accepted moving "
              + address
              + " to eni-0b but DescribeNetworkInterfaces did not show it within 15s");
    }
  }

  @Override
  public void checkClaim(String address, String node) {
    checked.add(address + "->" + node);
    if (node.equals(checkRefusedFor)) {
      throw new AddressClaimFailed(
              "node-b (i-0b) has no network interface in subnet-1, where 10.0.0.100 is (on"
                  + " eni-0a)")
          .assignedNothing();
    }
  }

  @Override
  public void claimBack(String address, String node) {
    claimed.add(address + "->" + node + " (back)");
  }

  @Override
  public boolean announces() {
    return !claims;
  }

  @Override
  public boolean claimsBeforeCommit() {
    return claims;
  }
}
