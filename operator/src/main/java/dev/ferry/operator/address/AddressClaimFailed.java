// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.address;

/**
 * The network could not be made to deliver the address to the node. The message stands alone in a
 * MigrationRequest's status: what failed, on which resource, and what to do about it.
 */
public final class AddressClaimFailed extends RuntimeException {
  public AddressClaimFailed(String message) {
    super(message);
  }

  public AddressClaimFailed(String message, Throwable cause) {
    super(message, cause);
  }
}
