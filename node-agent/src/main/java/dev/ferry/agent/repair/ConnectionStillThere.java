// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

/**
 * A socket could not be rebuilt because the connection still exists in that namespace: a socket
 * with the same four addresses is open there (its application's descriptor of the original, say,
 * not closed yet). The kernel refuses the rebuilt socket's connect with EADDRNOTAVAIL until it
 * goes.
 */
public final class ConnectionStillThere extends RestoreException {
  public ConnectionStillThere(String message, Throwable cause) {
    super(message, cause);
  }
}
