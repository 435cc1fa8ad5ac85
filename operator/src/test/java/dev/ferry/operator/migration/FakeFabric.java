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
  String refuseFor;

  FakeFabric(boolean claims) {
    this.claims = claims;
  }

  @Override
  public void claim(String address, String node) {
    claimed.add(address + "->" + node);
    if (node.equals(refuseFor)) {
      throw new AddressClaimFailed(
          "AssignPrivateIpAddresses on eni-0b failed: UnauthorizedOperation; allow"
              + " ec2:AssignPrivateIpAddresses to the operator's role (docs/aws-iam-policy.json)");
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
