// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import dev.ferry.agent.handoff.HandoffOutcome;
import dev.ferry.protocol.Connection;

/** How asking for a connection went: held and ready to export, or staying where it is. */
public sealed interface Freezing {
  Connection connection();

  /**
   * The application handed the socket over and the client is held until {@code deadlineNanos}
   * (System.nanoTime); the socket is still live and unread.
   */
  record Held(Connection connection, HandoffOutcome.Frozen frozen, long deadlineNanos)
      implements Freezing {}

  /** Nothing was touched: the connection stays with its application. */
  record Stays(Departure.Stayed stayed) implements Freezing {
    @Override
    public Connection connection() {
      return stayed.connection();
    }
  }
}
