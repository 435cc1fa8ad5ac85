// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One network interface of {@link FakeEc2} as DescribeNetworkInterfaces shows it: the secondary
 * addresses here are the visible ones, which lag behind the assignments (see {@link
 * FakeEc2#moveDelay}).
 */
final class FakeEc2Interface {
  final String id;
  final String instanceId;
  final String subnetId;
  final int deviceIndex;
  final String primaryIp;
  final Map<String, String> tags;
  final Set<String> secondaries = new LinkedHashSet<>();

  FakeEc2Interface(
      String id,
      String instanceId,
      String subnetId,
      int deviceIndex,
      String primaryIp,
      Map<String, String> tags) {
    this.id = id;
    this.instanceId = instanceId;
    this.subnetId = subnetId;
    this.deviceIndex = deviceIndex;
    this.primaryIp = primaryIp;
    this.tags = Map.copyOf(tags);
  }

  /** Primary first, then the secondaries in the order they arrived. */
  List<String> addresses() {
    List<String> all = new ArrayList<>();
    all.add(primaryIp);
    all.addAll(secondaries);
    return all;
  }

  boolean attached() {
    return instanceId != null;
  }

  /** Whether a DescribeNetworkInterfaces filter selects this interface; null for an unknown one. */
  Boolean matches(String filter, List<String> values) {
    if (filter.startsWith("tag:")) {
      return values.contains(tags.get(filter.substring(4)));
    }
    return switch (filter) {
      case "addresses.private-ip-address", "private-ip-address" ->
          addresses().stream().anyMatch(values::contains);
      case "attachment.instance-id" -> attached() && values.contains(instanceId);
      case "attachment.device-index" -> attached() && values.contains(String.valueOf(deviceIndex));
      case "network-interface-id" -> values.contains(id);
      case "subnet-id" -> values.contains(subnetId);
      case "tag-key" -> tags.keySet().stream().anyMatch(values::contains);
      default -> null;
    };
  }
}
