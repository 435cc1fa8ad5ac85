// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

/**
 * Where a migration is. The operator takes one short step per phase and returns; the node-agents
 * run the move itself between them (Moving), so the clients are held only inside that phase and no
 * status is written while they are.
 */
public enum Phase {
  /** Accepted, not yet looked at. */
  Pending,
  /**
   * Checking the pods, nodes, agents, address and ports, and choosing a target; nothing is touched.
   * A dry run ends here.
   */
  Preparing,
  /**
   * spec.prepareOnly: the target is chosen and each application's state is pre-copied to it, and
   * the agents keep it up to date; nothing is frozen. Moves on when the request is annotated {@code
   * ferry.dev/proceed}; rolled back at spec.deadline.
   */
  Prepared,
  /** The agents move the connections; the clients are held only inside this phase. */
  Moving,
  /** Every connection that could move lives on the target. */
  Completed,
  /**
   * Refused before anything was touched, nothing could be frozen, or the move could not be rolled
   * back: see the conditions.
   */
  Failed,
  /** Every connection is live where it was. */
  RolledBack;

  public boolean finished() {
    return this == Completed || this == Failed || this == RolledBack;
  }
}
