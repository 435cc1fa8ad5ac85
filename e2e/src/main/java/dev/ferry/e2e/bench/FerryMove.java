// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.FreezeRequest;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.StageRequest;
import dev.ferry.api.v1alpha1.TransferRequest;
import dev.ferry.e2e.bench.BenchCluster.Node;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * One migration of every connection on the service's ports from one pod to the other, driven
 * through the two agents' API in the order of {@code ferry-agent migrate} (cli/MigrationDriver):
 * freeze, export, transfer, address onto the target pod, stage, address and route moved, resume,
 * announce, release. It records the phase times the agents report and the wall time of each call.
 */
final class FerryMove {
  /** The phases in the order the table shows them. */
  static final List<String> PHASES =
      List.of("freeze", "export", "transfer", "address", "stage", "resume", "release");

  /**
   * What one migration took.
   *
   * @param freezeSent when Freeze was sent (System.nanoTime): clients may be held from here
   * @param resumed when Resume returned: every client has been woken by then
   * @param released when Release returned: the migration is over
   * @param agentMicros each phase as the agents measured it (address: the four address calls)
   * @param callMicros each call's wall time as this process saw it
   * @param moved connections RESUMED on the target
   * @param stayed connections that did not move, with the agents' reasons
   */
  record Result(
      String id,
      long freezeSent,
      long resumed,
      long released,
      Map<String, Long> agentMicros,
      Map<String, Long> callMicros,
      int moved,
      List<String> stayed) {
    double heldMillis() {
      return (resumed - freezeSent) / 1e6;
    }

    double wholeMillis() {
      return (released - freezeSent) / 1e6;
    }
  }

  private FerryMove() {}

  static Result move(BenchCluster cluster, String id, Node from, Node to) {
    MigrationRef ref = MigrationRef.newBuilder().setMigrationId(id).build();
    Map<String, Long> calls = new LinkedHashMap<>();
    long freezeSent = System.nanoTime();
    MigrationStatus frozen =
        timed(
            calls,
            "freeze",
            () ->
                from.api.call(
                    "Freeze",
                    s ->
                        s.freeze(
                            FreezeRequest.newBuilder()
                                .setMigrationId(id)
                                .setPod(from.podRef())
                                .addPorts(BenchCluster.STREAM_PORT)
                                .addPorts(BenchCluster.IDLE_PORT)
                                .setTargetAgent(to.api())
                                .build())));
    expect("freeze", frozen, ConnectionPhase.FROZEN, ConnectionPhase.STAYED);
    expect(
        "export",
        timed(calls, "export", () -> from.api.call("Export", s -> s.export(ref))),
        ConnectionPhase.EXPORTED,
        ConnectionPhase.STAYED);
    MigrationStatus transferred =
        timed(
            calls,
            "transfer",
            () ->
                from.api.call(
                    "Transfer",
                    s ->
                        s.transfer(
                            TransferRequest.newBuilder()
                                .setMigrationId(id)
                                .setTargetAgent(to.api())
                                .build())));
    expect("transfer", transferred, ConnectionPhase.TRANSFERRED, ConnectionPhase.STAYED);
    long address = 0;
    long addressCalls = System.nanoTime();
    // On the target pod first, without the node's route: the restored sockets bind to it, and
    // no client segment reaches the target before they exist.
    address += cluster.address(to, AddressRequest.Op.ADD, false);
    addressCalls = System.nanoTime() - addressCalls;
    expect(
        "stage",
        timed(
            calls,
            "stage",
            () ->
                to.api.call(
                    "Stage",
                    s ->
                        s.stage(
                            StageRequest.newBuilder()
                                .setMigrationId(id)
                                .setPod(to.podRef())
                                .build()))),
        ConnectionPhase.STAGED);
    long t = System.nanoTime();
    address += cluster.address(from, AddressRequest.Op.REMOVE, true);
    address += cluster.address(to, AddressRequest.Op.ADD, true);
    addressCalls += System.nanoTime() - t;
    cluster.holder(to);
    MigrationStatus resumed =
        timed(calls, "resume", () -> to.api.call("Resume", s -> s.resume(ref)));
    long resumedAt = System.nanoTime();
    expect("resume", resumed, ConnectionPhase.RESUMED);
    t = System.nanoTime();
    address += cluster.address(to, AddressRequest.Op.ANNOUNCE, false);
    addressCalls += System.nanoTime() - t;
    calls.put("address", addressCalls / 1000);
    MigrationStatus released =
        timed(calls, "release", () -> from.api.call("Release", s -> s.release(ref)));
    long releasedAt = System.nanoTime();
    expect("release", released, ConnectionPhase.RELEASED, ConnectionPhase.STAYED);

    Map<String, Long> source = released.getPhaseMicrosMap();
    Map<String, Long> target = resumed.getPhaseMicrosMap();
    Map<String, Long> agent = new LinkedHashMap<>();
    for (String phase : PHASES) {
      Long v =
          phase.equals("address")
              ? Long.valueOf(address)
              : source.getOrDefault(phase, target.get(phase));
      agent.put(phase, v == null ? -1 : v);
    }
    Map<String, Long> orderedCalls = new LinkedHashMap<>();
    PHASES.forEach(p -> orderedCalls.put(p, calls.getOrDefault(p, -1L)));
    List<String> stayed =
        released.getConnectionsList().stream()
            .filter(c -> c.getPhase() == ConnectionPhase.STAYED)
            .map(c -> c.getReason())
            .toList();
    return new Result(
        id,
        freezeSent,
        resumedAt,
        releasedAt,
        agent,
        orderedCalls,
        count(resumed, ConnectionPhase.RESUMED),
        stayed);
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

  /** Fails the move, naming the first few connections, unless every one is in an expected phase. */
  private static void expect(String step, MigrationStatus s, ConnectionPhase... ok) {
    List<ConnectionPhase> allowed = List.of(ok);
    List<ConnectionStatus> wrong =
        s.getConnectionsList().stream().filter(c -> !allowed.contains(c.getPhase())).toList();
    if (!wrong.isEmpty()) {
      throw new IllegalStateException(
          step
              + " on "
              + s.getNode()
              + ": "
              + wrong.size()
              + " of "
              + s.getConnectionsCount()
              + " connections went wrong, e.g. "
              + wrong.stream()
                  .limit(3)
                  .map(c -> c.getPhase() + ": " + c.getReason())
                  .collect(Collectors.joining("; ")));
    }
    if (s.getConnectionsCount() == 0) {
      throw new IllegalStateException(step + " on " + s.getNode() + ": no connection to move");
    }
  }
}
