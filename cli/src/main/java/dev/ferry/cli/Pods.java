// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import dev.ferry.api.v1alpha1.PodRef;

/** How a pod is named on the command line: by its network namespace, or by its uid. */
final class Pods {
  static final String HELP =
      "a pod is NETNS-NAME (under /var/run/netns), a path such as /proc/PID/ns/net, or uid:POD-UID";

  private Pods() {}

  /**
   * @throws IllegalArgumentException a value that names no pod, with {@link #HELP}
   */
  static PodRef parse(String value) {
    if (value.startsWith("uid:")) {
      String uid = value.substring(4);
      if (!uid.matches("[0-9a-fA-F-]{8,64}")) {
        throw new IllegalArgumentException("'" + uid + "' is not a pod uid; " + HELP);
      }
      return PodRef.newBuilder().setUid(uid).build();
    }
    if (value.startsWith("/")) {
      return PodRef.newBuilder().setNetns(value).build();
    }
    if (!value.matches("[A-Za-z0-9._-]+")) {
      throw new IllegalArgumentException("'" + value + "' is not a namespace name; " + HELP);
    }
    return PodRef.newBuilder().setNetns("/var/run/netns/" + value).build();
  }
}
