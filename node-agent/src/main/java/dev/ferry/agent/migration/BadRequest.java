// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

/** A request that cannot be served as asked; the message names the field and the fix. */
public final class BadRequest extends RuntimeException {
  public BadRequest(String message) {
    super(message);
  }
}
