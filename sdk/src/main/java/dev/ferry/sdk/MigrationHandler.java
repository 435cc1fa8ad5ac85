// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import dev.ferry.sdk.wire.Connection;

/**
 * What a server does when one of its connections moves. The SDK calls it on a thread of its own,
 * one call per connection; calls for different connections may run at once.
 */
public interface MigrationHandler {
  /**
   * The agent wants this connection: finish the write in progress, stop writing to and reading from
   * it, and hand it over with its state, or decline to keep it. An exception declines too.
   *
   * <p>The agent waits only so long (2 s by default); a server that answers later keeps the
   * connection and hears so through {@link Handover.AfterHandover#kept}.
   */
  Handover freeze(Connection connection) throws Exception;

  /**
   * A connection arrives with the state its old server handed over. Check the state; accept with
   * what to do once the socket is live, or decline (the agent then rolls the move back). The socket
   * is not live yet: nothing may be written before the callback runs.
   */
  Takeover takeover(Connection connection, byte[] state) throws Exception;
}
