// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

/** A request that cannot be served as asked; the message names the field and the fix. */
final class BadRequest extends RuntimeException {
  BadRequest(String message) {
    super(message);
  }
}
