// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

/**
 * The network could not be made to deliver the address to the node. The message stands alone in a
 * MigrationRequest's status: what failed, on which resource, and what to do about it.
 */
public final class AddressClaimFailed extends RuntimeException {
  private final boolean nothingAssigned;

  public AddressClaimFailed(String message) {
    this(message, null, false);
  }

  public AddressClaimFailed(String message, Throwable cause) {
    this(message, cause, false);
  }

  private AddressClaimFailed(String message, Throwable cause, boolean nothingAssigned) {
    super(message, cause);
    this.nothingAssigned = nothingAssigned;
  }

  /**
   * Whether the claim failed before the network accepted any move of the address (a lookup failed,
   * or EC2 refused the assignment itself): then nothing of it can still land, and a rollback has no
   * address to give back. False when that is not known (a timeout, a server error, an assignment
   * accepted and not shown in time).
   */
  public boolean nothingAssigned() {
    return nothingAssigned;
  }

  /** The same failure, known to have assigned nothing. */
  public AddressClaimFailed assignedNothing() {
    return nothingAssigned ? this : new AddressClaimFailed(getMessage(), getCause(), true);
  }
}
