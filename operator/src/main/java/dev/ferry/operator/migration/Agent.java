// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import java.time.Duration;

/**
 * The calls the migration steps make on one node-agent (agent.proto), blocking. Each throws {@link
 * AgentClient.Failed} when the agent refuses the call or cannot be reached; every one is
 * idempotent, so a repeated call answers as the first did.
 */
public interface Agent {
  /** Target node in Preparing (who registered which ports), source node in a dry run. */
  ListConnectionsResponse listConnections(ListConnectionsRequest request);

  /**
   * Source node: the whole move, run by the two agents; answers once it ended, or with
   * AWAITING_ADDRESS when the caller claims the address. May take as long as {@code timeout}.
   */
  MoveOutcome move(MoveRequest request, Duration timeout);

  /** Source node: the caller has claimed the address: commit and resume on the target. */
  MoveOutcome commit(String migrationId);

  /** Source node: every saved connection back to its application, unless past the commit point. */
  MigrationStatus rollback(String migrationId);

  /**
   * Starts connecting to the agent, if not connected yet, without waiting: Pending asks the source
   * node's agent of a request it admits, so that the Move does not make the TCP and TLS handshakes
   * (a node's first migration since the operator started, as in a spot reclaim).
   */
  default void connect() {}

  /**
   * {@code request} with its plan signed now, as {@link #move} would send it: for a Move signed
   * ahead of its call. The identity where nothing is signed (tests).
   */
  default MoveRequest signed(MoveRequest request) {
    return request;
  }
}
