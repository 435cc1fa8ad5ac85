// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import dev.ferry.protocol.Connection;

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
   * As {@link #freeze}, for a server whose freeze finishes on a thread of its own (an event loop):
   * return at once with the answer to come, and the SDK lends no thread while it is made. Called on
   * the session's reader thread. A freeze of many connections at once otherwise takes a thread
   * each, waiting: 1,000 connections started 1,000 threads.
   *
   * <p>By default null: the SDK calls {@link #freeze} on a thread of its own.
   */
  default java.util.concurrent.CompletionStage<Handover> freezeLater(Connection connection)
      throws Exception {
    return null;
  }

  /**
   * The agent is about to move this connection and asks for its state ahead of the freeze (protocol
   * version 2): offer a snapshot now and an append whenever the state changes, from any thread.
   * When {@link #freeze} comes and {@code offer} is still {@link StateOffer#isOpen open}, hand over
   * only what was not offered yet (possibly nothing); when it is closed, hand over the whole state.
   *
   * <p>By default the server offers nothing and hands its whole state over at the freeze, as in
   * version 1.
   */
  default void precopy(Connection connection, StateOffer offer) throws Exception {
    offer.decline("this server hands its whole state over at the freeze");
  }

  /**
   * The agent begins to hand this connection's state ahead of its takeover (protocol version 2,
   * PRESTATE, a snapshot): return where to take it in as it arrives, or null to have the SDK keep
   * it and pass the whole state to {@link #takeover(Connection, byte[])} at the takeover. With an
   * {@link IncomingState}, the SDK keeps no copy and, when the connection arrives with the rest
   * (TAKEOVER_APPEND), calls {@link IncomingState#takeover} with only that tail; a plain TAKEOVER
   * still goes to {@link #takeover(Connection, byte[])}. Asked again at a snapshot only once the
   * last intake of the connection has ended; until then later snapshots go to that intake.
   *
   * <p>Called on the session's reader thread: return at once. An exception declines what is handed
   * ahead (the agent then sends the whole state with the takeover). By default null: the server
   * gets the whole state in one array, as before.
   */
  default IncomingState arriving(Connection connection) throws Exception {
    return null;
  }

  /**
   * A connection arrives with the state its old server handed over. Check the state; accept with
   * what to do once the socket is live, or decline (the agent then rolls the move back). The socket
   * is not live yet: nothing may be written before the callback runs.
   *
   * <p>{@code state} is always the whole state, in one array: when the agent handed most of it
   * ahead of the takeover (protocol version 2, PRESTATE), the SDK has put it back together, unless
   * {@link #arriving} took it in, in which case {@link IncomingState#takeover} is called instead.
   */
  Takeover takeover(Connection connection, byte[] state) throws Exception;
}
