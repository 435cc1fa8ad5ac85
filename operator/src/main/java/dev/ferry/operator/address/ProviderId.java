// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A Node's {@code spec.providerID} on AWS: {@code aws:///<availability-zone>/<instance-id>}. */
public final class ProviderId {
  // The zone may be empty (aws:////i-...), as some installers write it; instance ids have 8 hex
  // digits (before 2016) or 17.
  private static final Pattern AWS =
      Pattern.compile("aws:///[a-z0-9-]*/(i-(?:[0-9a-f]{17}|[0-9a-f]{8}))");

  private ProviderId() {}

  /**
   * The EC2 instance id in a provider id.
   *
   * @throws IllegalArgumentException naming {@code spec.providerID} when it is missing or does not
   *     name an EC2 instance (a Fargate node, another cloud)
   */
  public static String instanceId(String providerId) {
    if (providerId == null || providerId.isBlank()) {
      throw new IllegalArgumentException(
          "the node has no spec.providerID; the AWS address mover needs it to find the node's EC2"
              + " instance (the AWS cloud provider sets aws:///<availability-zone>/<instance-id>)");
    }
    Matcher m = AWS.matcher(providerId);
    if (!m.matches()) {
      throw new IllegalArgumentException(
          "spec.providerID '"
              + providerId
              + "' does not name an EC2 instance: expected aws:///<availability-zone>/i-<hex>; the"
              + " AWS address mover works only with nodes that are EC2 instances");
    }
    return m.group(1);
  }
}
