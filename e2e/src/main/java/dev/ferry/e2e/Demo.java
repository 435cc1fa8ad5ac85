// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import java.util.List;
import java.util.Map;

/**
 * {@code make demo}: the one-machine cluster (an API server, the operator, a node-agent per node,
 * the demo token streamer in a pod on each node) and curl streaming from node A. Mid-stream the
 * MigrationRequest of e2e/examples is applied; the operator moves the connection, its state (the
 * stream's KV cache) and the address to node B, and curl's stream goes on. Prints the request's
 * status as {@code kubectl get mr} would, each phase's time, the longest pause curl saw, and
 * whether curl's output is byte for byte that of a run that never moved. Everything is torn down at
 * the end.
 */
public final class Demo {
  private static final int TOKENS = 3000;
  private static final int RATE = 500;
  private static final int MOVE_AFTER = 1000;
  private static final String STREAM = "/v1/stream?prompt=why%20ferry&tokens=" + TOKENS;
  private static final List<String> PHASES =
      List.of(
          "Preparing",
          "Moving",
          "agent.source.freeze",
          "agent.source.export",
          "agent.target.stage",
          "agent.target.commit",
          "agent.target.resume",
          "agent.source.release");
  private static final long START = System.nanoTime();

  private Demo() {}

  public static void main(String[] args) {
    Mains.exitWith("Demo", Demo::demo);
  }

  private static int demo() throws Exception {
    AgentCluster.echoLogs = false;
    int exit;
    try (ClosedOnExit<OperatorCluster> held = ClosedOnExit.of(OperatorCluster.start(), "demo")) {
      OperatorCluster cluster = held.get();
      say(
          "cluster up: API server at "
              + cluster.apiUrl
              + ", operator, node-a 198.18.0.2 and node-b 198.18.0.3 each with its agent"
              + " (mTLS API, eBPF hold, handoff socket); client 198.18.0.1");
      cluster.agents.a.streamer("--rate", Integer.toString(RATE));
      cluster.agents.b.streamer("--rate", Integer.toString(RATE));
      say(
          "token-streamer (Java, Ferry SDK) in pod-a (holds "
              + AgentCluster.VIP
              + ") and pod-b, port "
              + AgentCluster.PORT
              + " registered with each node's agent");
      warmUp(cluster);
      exit = run(cluster);
      say("tearing down: processes, namespaces, BPF programs and pins");
    }
    return exit;
  }

  /** One short stream moved and back: the JVMs and the operator's TLS channels warm up. */
  private static void warmUp(OperatorCluster cluster) throws Exception {
    String[][] legs = {{"pod-a", "pod-b"}, {"pod-b", "pod-a"}};
    for (String[] leg : legs) {
      try (CurlStream curl = cluster.agents.curl("/v1/stream?prompt=warm-up&tokens=1500")) {
        curl.awaitEvents(50, 10_000);
        String name = "warm-up-to-" + leg[1];
        cluster.request(name, leg[0], leg[1], AgentCluster.VIP);
        MigrationRequestStatus st = cluster.awaitEnd(name, 60);
        if (st.getPhase() != Phase.Completed) {
          throw new IllegalStateException("warm-up move " + name + ": " + st.getMessage());
        }
        curl.exitCode(30);
      }
    }
    say("warmed up: one stream moved to pod-b and back by MigrationRequests");
  }

  private static int run(OperatorCluster cluster) throws Exception {
    String unmoved;
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      int exit = curl.exitCode(60);
      unmoved = curl.output();
      say(
          String.format(
              "unmoved run: curl exit %d, %d tokens, %d bytes; longest pause between tokens %.2f ms",
              exit, curl.events() - 1, unmoved.length(), curl.longestGapMillis()));
    }
    try (CurlStream curl = cluster.agents.curl(STREAM)) {
      say(
          "curl -N http://"
              + AgentCluster.VIP
              + ":"
              + AgentCluster.PORT
              + STREAM
              + " ("
              + RATE
              + " tokens/s)");
      curl.awaitEvents(MOVE_AFTER, 20_000);
      say(
          "kubectl apply -f e2e/examples/migrationrequest.yaml  (after "
              + curl.events()
              + " tokens)");
      cluster.apply(Builds.repoFile("e2e/examples/migrationrequest.yaml"));
      MigrationRequestStatus st = cluster.awaitEnd("move-pod-a", 60);
      say("curl has " + curl.events() + " tokens and goes on");
      MigrationRequest mr =
          cluster
              .kube
              .resources(MigrationRequest.class)
              .inNamespace(OperatorCluster.NAMESPACE)
              .withName("move-pod-a")
              .get();
      printGet(mr);
      printPhases(st);
      int exit = curl.exitCode(60);
      String moved = curl.output();
      boolean same = moved.equals(unmoved);
      say(
          String.format(
              "curl exit %d; %d tokens; output %s the unmoved run's (%d bytes)",
              exit, curl.events() - 1, same ? "identical to" : "DIFFERENT from", moved.length()));
      say(
          String.format(
              "longest pause seen by curl between two tokens: %.2f ms (one every %.2f ms"
                  + " without a move)",
              curl.longestGapMillis(), 1000.0 / RATE));
      boolean ok = st.getPhase() == Phase.Completed && exit == 0 && same;
      if (!ok) {
        say("operator log:");
        cluster.operatorLog.forEach(l -> System.out.println("    " + l));
      }
      say(ok ? "demo OK" : "demo FAILED");
      return ok ? 0 : 1;
    }
  }

  /** What {@code kubectl get mr -n shop} shows: the CRD's printer columns. */
  private static void printGet(MigrationRequest mr) {
    MigrationRequestStatus st = mr.getStatus();
    String created = mr.getMetadata().getCreationTimestamp();
    String age =
        created == null
            ? "<unknown>"
            : java.time.Duration.between(java.time.Instant.parse(created), java.time.Instant.now())
                    .toSeconds()
                + "s";
    System.out.println();
    System.out.println("$ kubectl get mr -n " + OperatorCluster.NAMESPACE);
    System.out.print(
        kubectlTable(
            List.of("NAME", "PHASE", "SOURCE", "TARGET", "MIGRATED", "TOTAL", "PAUSE", "AGE"),
            List.of(
                mr.getMetadata().getName(),
                String.valueOf(st.getPhase()),
                mr.getSpec().getSource().getName(),
                String.valueOf(st.getTargetPod()),
                String.valueOf(st.getConnections().getMigrated()),
                String.valueOf(st.getConnections().getTotal()),
                String.format("%.1f", st.getPauseMillis() == null ? 0.0 : st.getPauseMillis()),
                age)));
    System.out.println();
  }

  /**
   * Rows laid out as kubectl lays them out (its tab writer: each column but the last as wide as its
   * widest cell and 3 spaces, 6 at least).
   */
  static String kubectlTable(List<String> header, List<String> row) {
    StringBuilder out = new StringBuilder();
    for (List<String> line : List.of(header, row)) {
      for (int i = 0; i < line.size(); i++) {
        String cell = line.get(i);
        if (i == line.size() - 1) {
          out.append(cell).append('\n');
        } else {
          int width = Math.max(6, Math.max(header.get(i).length(), row.get(i).length()) + 3);
          out.append(cell).append(" ".repeat(width - cell.length()));
        }
      }
    }
    return out.toString();
  }

  private static void printPhases(MigrationRequestStatus st) {
    Map<String, Double> ms = st.getPhaseMillis();
    System.out.println("status.phaseMillis (the operator's clock, calls to the agents included):");
    for (String phase : PHASES) {
      if (ms.containsKey(phase)) {
        System.out.printf("  %-22s %8.1f ms%n", phase, ms.get(phase));
      }
    }
    System.out.printf(
        "  status.pauseMillis (the first freeze to the last resume, as the agents saw it): %.1f ms%n",
        st.getPauseMillis());
    System.out.println("status.message: " + st.getMessage());
    System.out.println();
  }

  private static void say(String line) {
    System.out.printf("[%8.1f s] %s%n", (System.nanoTime() - START) / 1e9, line);
  }
}
