// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

import java.util.Collection;
import java.util.Comparator;
import java.util.Optional;
import software.amazon.awssdk.services.ec2.model.NetworkInterface;
import software.amazon.awssdk.services.ec2.model.NetworkInterfaceAttachment;

/** Which of the target instance's network interfaces in the address's subnet gets the address. */
final class TargetInterface {
  /**
   * The tag by which the VPC CNI leaves an interface alone. On an interface it manages, its ipamd
   * may take an address it did not allocate for a pod of its own, or release it.
   */
  static final String NO_MANAGE_TAG = "node.k8s.amazonaws.com/no_manage";

  private static final Comparator<NetworkInterface> PREFERENCE =
      Comparator.comparing((NetworkInterface ni) -> !unmanaged(ni))
          .thenComparingInt(TargetInterface::deviceIndex)
          .thenComparingInt(TargetInterface::networkCard)
          .thenComparing(NetworkInterface::networkInterfaceId);

  private TargetInterface() {}

  /**
   * One tagged {@code no_manage=true} if there is one, else the lowest device index (the primary
   * interface is 0); ties, across network cards, go to the lower card, then the lower id.
   */
  static Optional<NetworkInterface> choose(Collection<NetworkInterface> candidates) {
    return candidates.stream().min(PREFERENCE);
  }

  static boolean unmanaged(NetworkInterface ni) {
    return ni.tagSet().stream()
        .anyMatch(t -> NO_MANAGE_TAG.equals(t.key()) && "true".equalsIgnoreCase(t.value()));
  }

  private static int deviceIndex(NetworkInterface ni) {
    NetworkInterfaceAttachment a = ni.attachment();
    return a == null || a.deviceIndex() == null ? Integer.MAX_VALUE : a.deviceIndex();
  }

  /** Absent on instances with one network card: that card is 0. */
  private static int networkCard(NetworkInterface ni) {
    NetworkInterfaceAttachment a = ni.attachment();
    return a == null || a.networkCardIndex() == null ? 0 : a.networkCardIndex();
  }
}
