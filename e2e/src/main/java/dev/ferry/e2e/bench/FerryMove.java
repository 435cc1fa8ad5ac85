// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MoveAddressPlan;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.api.v1alpha1.MoveRequest;
import dev.ferry.e2e.bench.BenchCluster.Node;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One migration of every connection on the service's ports from one pod to the other, with the one
 * call the operator and {@code ferry-agent migrate} make: the source agent's Move, which runs the
 * whole move with the target agent (address included). It records the phase times the agents report
 * and the wall time of the call.
 */
final class FerryMove {
  /**
   * The agents' phases in the order the table shows them; target-ready (the source's wait for the
   * target's answer to the header) is before the freeze, and holds no one.
   */
  static final List<String> PHASES =
      List.of(
          "target-ready",
          "freeze",
          "export",
          "send-and-stage",
          "stage",
          "address-leaves",
          "client-acks",
          "commit-round-trip",
          "commit",
          "route",
          "resume",
          "announce",
          "release");

  /**
   * What one migration took.
   *
   * @param freezeSent when the first freeze began (System.nanoTime): clients may be held from here
   * @param resumed when the last socket resumed on the target, on this clock
   * @param released when Move returned: the migration is over
   * @param agentMicros each phase as the agents measured it
   * @param callMicros the Move call's wall time as this process saw it
   * @param moved connections RESUMED on the target
   * @param stayed connections that did not move, with the agents' reasons
   * @param pauseMicros the clients' pause as the source agent measured it: from its first freeze to
   *     its hearing that the last connection resumed (what the operator records as
   *     status.pauseMillis)
   * @param callsDuringPause calls the source agent's API received from anyone (the move's own
   *     excepted) while its clients were held
   */
  record Result(
      String id,
      long freezeSent,
      long resumed,
      long released,
      Map<String, Long> agentMicros,
      Map<String, Long> callMicros,
      int moved,
      List<String> stayed,
      long pauseMicros,
      int callsDuringPause) {
    double heldMillis() {
      return (resumed - freezeSent) / 1e6;
    }

    double wholeMillis() {
      return (released - freezeSent) / 1e6;
    }
  }

  private FerryMove() {}

  /**
   * Move with prepare_only: the states pre-copied to the target and the stream to it open, nothing
   * frozen (as for a rebalance recommendation); {@link #move} with the same id then moves.
   */
  static void prepare(String id, Node from, Node to) {
    MoveRequest request = request(id, from, to).toBuilder().setPrepareOnly(true).build();
    MoveOutcome o = from.api.call("Move", s -> s.move(request));
    if (o.getResult() != MoveOutcome.Result.PREPARED) {
      throw new IllegalStateException(
          "preparing move " + id + " ended " + o.getResult() + ": " + o.getMessage());
    }
  }

  private static MoveRequest request(String id, Node from, Node to) {
    return MoveRequest.newBuilder()
        .setMigrationId(id)
        .setSourcePod(from.podRef())
        .setTargetPod(to.podRef())
        .addPorts(BenchCluster.STREAM_PORT)
        .addPorts(BenchCluster.IDLE_PORT)
        .setTargetAgent(to.api())
        .setSourceNode(from.name)
        .setTargetNode(to.name)
        .setAddress(
            MoveAddressPlan.newBuilder()
                .setCidr(BenchCluster.VIP_CIDR)
                .setHostRoute(true)
                .setAnnounce(true)
                .setSourceHostInterface(from.pod.podPort())
                .setTargetHostInterface(to.pod.podPort()))
        .build();
  }

  static Result move(BenchCluster cluster, String id, Node from, Node to) {
    MoveRequest request = request(id, from, to);
    Map<String, Long> calls = new LinkedHashMap<>();
    long sentWallMicros = wallMicros();
    long sent = System.nanoTime();
    MoveOutcome o = timed(calls, "move", () -> from.api.call("Move", s -> s.move(request)));
    long releasedAt = System.nanoTime();
    if (o.getResult() != MoveOutcome.Result.COMPLETED) {
      throw new IllegalStateException(
          "move " + id + " ended " + o.getResult() + ": " + o.getMessage());
    }
    cluster.holder(to);
    return result(id, o, sent, sentWallMicros, releasedAt, calls);
  }

  /**
   * How the source agent says migration {@code id} (from {@code from} to {@code to}) went: Move
   * again with that id joins the move, or answers its outcome once it has ended, as an operator
   * restarted in Moving asks. This Move carries no address, so that even an agent that knew no such
   * move could move no address; the connections themselves have left the source pod.
   */
  static MoveOutcome answered(String id, Node from, Node to) {
    MoveRequest again = request(id, from, to).toBuilder().clearAddress().build();
    return from.api.call("Move", s -> s.move(again));
  }

  /**
   * The figures of a move whose source agent answered {@code o}.
   *
   * @param anchorNanos this process's clock ({@link System#nanoTime}) when the wall clock read
   *     {@code anchorWallMicros}: the agents' times are wall-clock times, placed on this clock
   * @param releasedAt when the caller learnt that the move had ended, on this process's clock
   */
  static Result result(
      String id,
      MoveOutcome o,
      long anchorNanos,
      long anchorWallMicros,
      long releasedAt,
      Map<String, Long> calls) {
    // The agents' own clock says when the freeze began (after the pre-copy, which holds no one)
    // and when the last socket resumed; both are placed on this process's clock.
    long frozenAt = anchorNanos + (o.getFreezeStartedUnixMicros() - anchorWallMicros) * 1000;
    long resumedAt = anchorNanos + (o.getResumedUnixMicros() - anchorWallMicros) * 1000;
    Map<String, Long> agent = new LinkedHashMap<>();
    for (String phase : PHASES) {
      Long v =
          o.getSource()
              .getPhaseMicrosMap()
              .getOrDefault(phase, o.getTarget().getPhaseMicrosMap().get(phase));
      agent.put(phase, v == null ? -1 : v);
    }
    List<String> stayed =
        o.getSource().getConnectionsList().stream()
            .filter(c -> c.getPhase() == ConnectionPhase.STAYED)
            .map(c -> c.getReason())
            .toList();
    return new Result(
        id,
        frozenAt,
        resumedAt,
        releasedAt,
        agent,
        calls,
        count(o.getTarget(), ConnectionPhase.RESUMED),
        stayed,
        o.getPauseMicros(),
        o.getApiCallsDuringPause());
  }

  static long wallMicros() {
    java.time.Instant t = java.time.Instant.now();
    return t.getEpochSecond() * 1_000_000 + t.getNano() / 1000;
  }

  private static <T> T timed(
      Map<String, Long> calls, String name, java.util.function.Supplier<T> f) {
    long t = System.nanoTime();
    try {
      return f.get();
    } finally {
      calls.put(name, (System.nanoTime() - t) / 1000);
    }
  }

  private static int count(MigrationStatus s, ConnectionPhase phase) {
    return (int) s.getConnectionsList().stream().filter(c -> c.getPhase() == phase).count();
  }
}
