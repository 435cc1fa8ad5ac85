// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api.crd;

/**
 * Where a migration is. The client's pause runs from Freezing to the end of MovingAddress; the
 * sockets are rebuilt (Restoring) before the address moves, because a client segment that reaches
 * the target before its socket exists draws a reset.
 */
public enum Phase {
  /** Accepted, not yet looked at. */
  Pending,
  /** Checking the pods, nodes, agents, address and ports; choosing a target. */
  Preparing,
  /** The source application hands each connection over; the clients are held. */
  Freezing,
  /** The source agent saves each socket's state. */
  Exporting,
  /** The states go from the source agent straight to the target agent. */
  Transferring,
  /** The target agent rebuilds each socket in repair mode and hands it to its application. */
  Restoring,
  /** The address moves to the target node and the sockets go live: the commit point. */
  MovingAddress,
  /** The source agent lets go of what it held. */
  Releasing,
  /** Every connection that could move lives on the target. */
  Completed,
  /** Nothing was frozen, or the migration could not be rolled back: see the conditions. */
  Failed,
  /** Every connection is live where it was. */
  RolledBack;

  public boolean finished() {
    return this == Completed || this == Failed || this == RolledBack;
  }
}
