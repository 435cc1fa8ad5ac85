// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

/**
 * Where a server offers a connection's state ahead of its freeze (protocol version 2), so that
 * little is left to send while the client waits. The state so far is the last snapshot followed by
 * every append after it; the freeze then hands over only what changed since the last part offered.
 * The server on the target gets the whole state, snapshot, appends and freeze's part, in that
 * order.
 *
 * <p>Call it from any thread, as often as the state changes; each call sends one part before it
 * returns, and parts from several threads never interleave. The offer closes when the agent stops
 * it, when the server declines it, or when the server's {@link MigrationHandler#freeze} for the
 * connection has returned; a closed offer sends nothing and says so.
 */
public interface StateOffer {
  /**
   * Offers the whole state as it is now, replacing everything offered before.
   *
   * @return false if the offer is closed: nothing was sent
   */
  boolean snapshot(byte[] state);

  /**
   * Offers what changed since the last part: it follows everything offered so far.
   *
   * @return false if the offer is closed: nothing was sent
   */
  boolean append(byte[] change);

  /**
   * True while what was offered counts: a freeze for the connection then hands over only the change
   * since the last part; once false (stopped, declined, or the agent's session ended), the freeze
   * hands over the whole state. Read it in {@link MigrationHandler#freeze}, after the writer has
   * stopped.
   */
  boolean isOpen();

  /** Offers nothing (more): the freeze will hand over the whole state. */
  void decline(String reason);
}
