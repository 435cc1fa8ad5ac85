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

  /**
   * Beside the Move, before it commits: the record naming the target pod as the address's holder,
   * created only where none exists (the source pod holds the address as its own), so that the end
   * of a committed move has nothing to write. Whether the record is now this request's; every end
   * that is not a commit takes it back ({@link #addressStayed}).
   */
  boolean addressMovingAhead(MigrationRequest mr, Plan plan);

  /**
   * The move did not commit: the record of {@code address}, if this request wrote it ahead, is
   * removed, and the address is the source pod's own again.
   */
  void addressStayed(MigrationRequest mr, String address);

  /** A Kubernetes Event on the request: type Normal or Warning. */
  void event(MigrationRequest mr, String type, String reason, String message);
}
