// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;

/**
 * Turns a MigrationRequest into a {@link Plan} against the cluster as it is now ({@link
 * PlanMaker}).
 */
@FunctionalInterface
public interface Planner {
  /**
   * @param chosenTarget the target an earlier plan chose (status.targetPod), so that the plan keeps
   *     to it; null the first time
   */
  Plan plan(MigrationRequest mr, String chosenTarget) throws InvalidRequest;

  /**
   * The node the request's connections leave, which the migration limits count: a whole plan unless
   * an implementation knows a cheaper way.
   */
  default String sourceNode(MigrationRequest mr) throws InvalidRequest {
    return plan(mr, null).sourceNode();
  }
}
