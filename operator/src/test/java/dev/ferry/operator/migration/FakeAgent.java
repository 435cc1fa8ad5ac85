// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import com.google.protobuf.ByteString;
import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.ListedConnection;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.api.v1alpha1.SignedPlan;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * A node-agent that answers what a test tells it to, and keeps every call it received: a Move with
 * prepare_only is kept as "Move prepareOnly".
 */
final class FakeAgent implements Agent {
  final String node;
  final List<String> calls = new ArrayList<>();
  final List<MoveRequest> moves = new ArrayList<>();
  List<Integer> registeredPorts = List.of(8080);
  List<ListedConnection> connections = List.of();
  boolean unreachable;

  /** How often the operator asked to connect ahead of a call ({@link #connect}). */
  int connects;

  /** The requests signed ahead of their Move, each marked by its signature "signed ahead". */
  final List<MoveRequest> signedAhead = new ArrayList<>();

  Supplier<MoveOutcome> move = () -> MoveOutcome.getDefaultInstance();

  /** The answer to a Move with prepare_only: PREPARED unless a test says otherwise. */
  Supplier<MoveOutcome> prepare =
      () -> MoveOutcome.newBuilder().setResult(MoveOutcome.Result.PREPARED).build();

  Supplier<MoveOutcome> commit = () -> MoveOutcome.getDefaultInstance();
  Supplier<MigrationStatus> rollback = () -> MigrationStatus.getDefaultInstance();

  FakeAgent(String node) {
    this.node = node;
  }

  @Override
  public ListConnectionsResponse listConnections(ListConnectionsRequest request) {
    answer("ListConnections");
    return ListConnectionsResponse.newBuilder()
        .addAllRegisteredPorts(registeredPorts)
        .addAllConnections(connections)
        .build();
  }

  @Override
  public MoveOutcome move(MoveRequest request, Duration timeout) {
    moves.add(request);
    if (request.getPrepareOnly()) {
      answer("Move prepareOnly");
      return prepare.get();
    }
    answer("Move");
    return move.get();
  }

  @Override
  public MoveOutcome commit(String migrationId) {
    answer("Commit");
    return commit.get();
  }

  @Override
  public MigrationStatus rollback(String migrationId) {
    answer("Rollback");
    return rollback.get();
  }

  @Override
  public void connect() {
    connects++;
  }

  @Override
  public MoveRequest signed(MoveRequest request) {
    MoveRequest signed =
        request.toBuilder()
            .setPlan(SignedPlan.newBuilder().setSignature(ByteString.copyFromUtf8(SIGNED_AHEAD)))
            .build();
    signedAhead.add(signed);
    return signed;
  }

  static final String SIGNED_AHEAD = "signed ahead";

  private void answer(String call) {
    calls.add(call);
    if (unreachable) {
      throw failed(call, Status.UNAVAILABLE.withDescription("connection refused"));
    }
  }

  AgentClient.Failed failed(String call, Status status) {
    return new AgentClient.Failed(node + ":9443", call, status);
  }
}
