// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

/** A call that does not fit where the migration is on this node; the message says where it is. */
public final class WrongPhase extends RuntimeException {
  public WrongPhase(String message) {
    super(message);
  }
}
