// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import dev.ferry.agent.repair.SocketState;
import dev.ferry.protocol.Connection;

/** How a connection's departure from its node went. */
public sealed interface Departure {
  Connection connection();

  /**
   * The socket is read and closed; the client is held. Everything needed to rebuild the connection,
   * kernel and application side, is here (with {@code appendsToPrecopy}, the application state is
   * what changed since its pre-copy, which was kept apart): losing it loses the connection.
   */
  record Departed(
      Connection connection, SocketState socket, byte[] applicationState, boolean appendsToPrecopy)
      implements Departure {
    /** A state that is whole: nothing of it was pre-copied. */
    public Departed(Connection connection, SocketState socket, byte[] applicationState) {
      this(connection, socket, applicationState, false);
    }
  }

  /**
   * The connection stays where it is, live and untouched, for {@code reason}; or, when {@code
   * reset}, it could neither move nor stay, because its application is gone: the client was sent a
   * reset, so that it does not take the end for a normal one.
   */
  record Stayed(Connection connection, String reason, boolean reset) implements Departure {
    public Stayed(Connection connection, String reason) {
      this(connection, reason, false);
    }
  }
}
