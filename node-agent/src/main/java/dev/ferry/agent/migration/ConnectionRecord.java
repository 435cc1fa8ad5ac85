// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.agent.move.Arrival;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.move.Freezing;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.protocol.Connection;

/** Where one connection of a migration is on this node, and what the agent holds of it. */
public final class ConnectionRecord {
  final Connection connection;
  ConnectionPhase phase;
  String reason = "";
  Freezing.Held held; // source, FROZEN: the live socket, unread
  Departure.Departed departed; // source EXPORTED.., target TRANSFERRED..: the saved state
  Arrival.Staged staged; // target, STAGED
  // target, STAGED: what the client sent while held, past the exported rcv_nxt (the source's
  // hold kept it), appended to the receive queue at resume
  java.io.ByteArrayOutputStream keptClientBytes;

  /** The application state's size as this node got it, kept after the state itself is gone. */
  long stateBytes;

  public ConnectionRecord(Connection connection, ConnectionPhase phase) {
    this.connection = connection;
    this.phase = phase;
  }

  public void to(ConnectionPhase phase, String reason) {
    this.phase = phase;
    this.reason = reason;
  }

  public ConnectionStatus status() {
    return ConnectionStatus.newBuilder()
        .setId(Wire.id(connection))
        .setPhase(phase)
        .setReason(reason)
        .setAppStateBytes(departed == null ? stateBytes : departed.applicationState().length)
        .build();
  }
}
