// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.ListConnectionsRequest;
import dev.ferry.api.v1alpha1.ListConnectionsResponse;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.operator.migration.Agent;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * The migration steps' calls on one node-agent, over gRPC through the api's {@link AgentClient}.
 */
final class GrpcAgent implements Agent {
  private final AgentClient client;

  GrpcAgent(AgentClient client) {
    this.client = client;
  }

  @Override
  public ListConnectionsResponse listConnections(ListConnectionsRequest request) {
    return client.call("ListConnections", a -> a.listConnections(request));
  }

  @Override
  public MoveOutcome move(MoveRequest request, Duration timeout) {
    Supplier<MoveRequest> attempts = attempts(request);
    // The whole move, longer than one ordinary call (ferry.operator.call-timeout) may take.
    return client.call(
        "Move",
        a -> a.withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS).move(attempts.get()));
  }

  /**
   * What each attempt of one Move call sends: {@code request} first, then, on the client's retries,
   * the request without the plan signed ahead, which the client signs anew as it sends it. Each
   * attempt is then its own plan with its own nonce, as it was before anything was signed ahead: a
   * plan that reached a target and was rolled back there is refused if it comes again.
   */
  static Supplier<MoveRequest> attempts(MoveRequest request) {
    MoveRequest again = request.toBuilder().clearPlan().build();
    AtomicBoolean first = new AtomicBoolean(true);
    return () -> first.getAndSet(false) ? request : again;
  }

  @Override
  public MoveOutcome commit(String migrationId) {
    return client.call("Commit", a -> a.commit(ref(migrationId)));
  }

  @Override
  public MigrationStatus rollback(String migrationId) {
    return client.call("Rollback", a -> a.rollback(ref(migrationId)));
  }

  @Override
  public void connect() {
    client.connect();
  }

  @Override
  public MoveRequest signed(MoveRequest request) {
    return client.signed(request);
  }

  private static MigrationRef ref(String migrationId) {
    return MigrationRef.newBuilder().setMigrationId(migrationId).build();
  }
}
