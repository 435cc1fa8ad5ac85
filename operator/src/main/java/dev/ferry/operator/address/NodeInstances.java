// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

/** Which EC2 instance a Kubernetes node runs on. */
@FunctionalInterface
public interface NodeInstances {
  /**
   * The instance id ({@code i-...}) of the node, usually from its {@code spec.providerID} through
   * {@link ProviderId#instanceId}; throws, with a message naming the node, when it has none.
   */
  String instanceId(String node);
}
