// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

/**
 * Every reason a MigrationRequest's conditions, Events and step outcomes give, CamelCase as
 * Kubernetes conventions ask: one place to read what an admin can see.
 */
public final class Reasons {
  private Reasons() {}

  /** Pending: the operator has seen the request; it starts when its turn comes. */
  public static final String CREATED = "Created";

  /** Pending to Preparing: the operator has taken the request on. */
  public static final String ACCEPTED = "Accepted";

  /**
   * Pending, waiting: as many migrations as ferry.operator.limits allow are under way (in the
   * cluster, or out of the source node).
   */
  public static final String WAITING_FOR_SLOT = "WaitingForSlot";

  /**
   * Preparing to Moving, or to Prepared (spec.prepareOnly): planned, validated, the target agent
   * ready.
   */
  public static final String PREPARED = "Prepared";

  /**
   * Prepared, waiting: the source agent pre-copies each application's state to the target (Move
   * with prepare_only); nothing is frozen.
   */
  public static final String PRE_COPYING = "PreCopying";

  /**
   * Prepared: the state is pre-copied to the target and kept up to date, nothing frozen; the
   * request waits for the annotation ferry.dev/proceed.
   */
  public static final String STATE_PRECOPIED = "StatePrecopied";

  /** Prepared to Moving: the request was annotated ferry.dev/proceed. */
  public static final String PROCEEDING = "Proceeding";

  /** Moving, waiting: the source agent runs the move. */
  public static final String MOVE_IN_FLIGHT = "MoveInFlight";

  /** Moving, waiting: everything is staged; the operator claims the address, then commits. */
  public static final String CLAIMING_ADDRESS = "ClaimingAddress";

  /** Moving, waiting: a Rollback on the source agent is under way. */
  public static final String ROLLING_BACK = "RollingBack";

  /** Moving, waiting: the source agent did not answer; Move is called again. */
  public static final String AGENT_UNREACHABLE = "AgentUnreachable";

  /** Every connection that could move lives on the target. */
  public static final String COMPLETED = "Completed";

  /** A dry run listed what would move and touched nothing. */
  public static final String DRY_RUN = "DryRun";

  /** The request cannot be carried out as written: the message names the field and the fix. */
  public static final String INVALID = "Invalid";

  /** The operator's own settings do not allow a migration (e.g. an unknown address mover). */
  public static final String MISCONFIGURED = "Misconfigured";

  /** spec.deadline passed. */
  public static final String DEADLINE_PASSED = "DeadlinePassed";

  /** The agents rolled the move back: every connection is live where it was. */
  public static final String ROLLED_BACK = "RolledBack";

  /** No connection was handed over, so the address stays where it is. */
  public static final String NOTHING_FROZEN = "NothingFrozen";

  /** The agents' move failed: the message and connectionDetails say where each connection is. */
  public static final String MOVE_FAILED = "MoveFailed";

  /** The source agent refused a call for good (not a timeout). */
  public static final String AGENT_REFUSED = "AgentRefused";

  /** The network could not be made to deliver the address to the target node (AWS). */
  public static final String ADDRESS_CLAIM_FAILED = "AddressClaimFailed";

  /** Rolling back was needed and failed: the source agent holds the clients until holdLimit. */
  public static final String ROLLBACK_FAILED = "RollbackFailed";

  /** Rolled back, but some connections could not be given back to their application. */
  public static final String ROLLBACK_INCOMPLETE = "RollbackIncomplete";

  /** An ended request was asked to roll back with the annotation ferry.dev/rollback. */
  public static final String ROLLBACK_REQUESTED = "RollbackRequested";

  /** An unfinished request was deleted. */
  public static final String DELETED = "Deleted";
}
