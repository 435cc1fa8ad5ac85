// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;

/**
 * What a migration tells the cluster besides its status (which the reconciler writes): Events, and
 * where the address lives now.
 */
public interface StatusSink {
  /**
   * The address now lives in the target pod: recorded (a MovedAddress) before the request reads
   * Completed, so that a request made right after can move it on.
   */
  void addressMoved(MigrationRequest mr, Plan plan);

  /** A Kubernetes Event on the request: type Normal or Warning. */
  void event(MigrationRequest mr, String type, String reason, String message);
}
