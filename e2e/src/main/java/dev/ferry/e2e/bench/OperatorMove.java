// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.e2e.OperatorCluster;
import dev.ferry.e2e.bench.BenchCluster.Node;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The operator path: one migration of every connection on the service's ports, asked for as a user
 * asks, with a MigrationRequest created in the API server. The operator (a process) takes it from
 * Pending through Preparing to Moving, where it makes the source agent's Move (the same call {@link
 * FerryMove} makes on the agent path), and writes how it ended. Nothing here drives the agents.
 */
final class OperatorMove {
  /**
   * What one request took.
   *
   * @param agents the move as the agents timed it, as for the agent path: their answer to the
   *     operator's Move, which the source agent gives again for the migration's id once the request
   *     has ended; {@code released} is when this process learnt that the request Completed
   * @param status the request's status at its end (pauseMillis, phaseMillis)
   * @param requestMillis from the create call to the watch event that showed it Completed
   */
  record Result(FerryMove.Result agents, MigrationRequestStatus status, double requestMillis) {
    /** The operator's time in {@code phase} (Pending, Preparing, Moving), as its status says. */
    double phaseMillis(String phase) {
      Map<String, Double> ms = status.getPhaseMillis();
      Double v = ms == null ? null : ms.get(phase);
      return v == null ? Double.NaN : v;
    }

    double pauseMillis() {
      return status.getPauseMillis() == null ? Double.NaN : status.getPauseMillis();
    }
  }

  private OperatorMove() {}

  /**
   * Creates the request {@code name} (from {@code from}'s pod to {@code to}'s, the service address,
   * both ports) and waits for its end; fails unless it Completed.
   *
   * @param seconds how long it may take to end: bounds a hang only
   */
  static Result move(BenchCluster cluster, String name, Node from, Node to, int seconds) {
    OperatorCluster operators = cluster.operators;
    long anchorWallMicros = FerryMove.wallMicros();
    long created = System.nanoTime();
    operators.request(
        name,
        spec -> {
          spec.setSource(new PodReference(operators.podOf(from.node)));
          spec.setTarget(new PodReference(operators.podOf(to.node)));
          spec.setAddress(BenchCluster.VIP);
          // The pods declare only 8080 (OperatorCluster's pods): the near-idle streams' port too.
          spec.setPorts(List.of(BenchCluster.STREAM_PORT, BenchCluster.IDLE_PORT));
        });
    MigrationRequestStatus st = operators.awaitEndWatching(name, seconds);
    long ended = System.nanoTime();
    if (st.getPhase() != Phase.Completed) {
      throw new IllegalStateException(
          "MigrationRequest " + name + " ended " + st.getPhase() + ": " + st.getMessage());
    }
    cluster.holder(to);
    MoveOutcome o = FerryMove.answered(st.getMigrationId(), from, to);
    if (o.getResult() != MoveOutcome.Result.COMPLETED || o.getFreezeStartedUnixMicros() == 0) {
      throw new IllegalStateException(
          "MigrationRequest "
              + name
              + " Completed, but its source agent answers migration "
              + st.getMigrationId()
              + " with "
              + o.getResult()
              + ": "
              + o.getMessage());
    }
    Map<String, Long> calls = new LinkedHashMap<>();
    calls.put("request", (ended - created) / 1000);
    FerryMove.Result agents =
        FerryMove.result(st.getMigrationId(), o, created, anchorWallMicros, ended, calls);
    return new Result(agents, st, (ended - created) / 1e6);
  }
}
