// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

/** A call that does not fit where the migration is on this node; the message says where it is. */
final class WrongPhase extends RuntimeException {
  WrongPhase(String message) {
    super(message);
  }
}
