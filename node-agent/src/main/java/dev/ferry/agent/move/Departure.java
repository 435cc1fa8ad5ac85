// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import dev.ferry.agent.repair.SocketState;
import dev.ferry.protocol.Connection;

/** How a connection's departure from its node went. */
public sealed interface Departure {
  Connection connection();

  /**
   * The socket is read and closed; the client is held. Everything needed to rebuild the connection,
   * kernel and application side, is here: losing this object loses the connection.
   */
  record Departed(Connection connection, SocketState socket, byte[] applicationState)
      implements Departure {}

  /** The connection stays where it is, live and untouched, for {@code reason}. */
  record Stayed(Connection connection, String reason) implements Departure {}
}
