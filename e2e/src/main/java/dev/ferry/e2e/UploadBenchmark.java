// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.api.v1alpha1.MoveOutcome;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code make bench-upload}: a client uploading at a paced rate is moved between the two agents'
 * pods, round after round, first with the agents putting what the held client sent into the
 * restored socket (as they do by default), then with that turned off (the client sends it again
 * when its own timer fires); it prints, per round and in sum, how long the client's
 * acknowledgements stopped and when the stall ended against the target's resume. The client's
 * retransmission timer is the kernel's default (rto_min 200 ms).
 */
public final class UploadBenchmark {
  private static final AgentCluster.Layout LAN = new AgentCluster.Layout("198.19.9", null, null);
  private static final long MOVE_AFTER = 16L << 20;

  private UploadBenchmark() {}

  public static void main(String[] args) {
    Mains.exitWith("UploadBenchmark", () -> benchmark(args));
  }

  private static int benchmark(String[] argv) throws Exception {
    String[] args = String.join(" ", argv).trim().split("\\s+");
    int rounds = 5;
    long pacing = 32L << 20;
    long seconds = 8;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--rounds" -> rounds = Integer.parseInt(args[i + 1]);
        case "--pacing" -> pacing = Long.parseLong(args[i + 1]);
        case "--seconds" -> seconds = Long.parseLong(args[i + 1]);
        default -> {
          System.err.println(
              "usage: UploadBenchmark [--rounds N] [--pacing BYTES_PER_SECOND] [--seconds S]");
          return 2;
        }
      }
    }
    System.out.printf(
        "upload at %d MiB/s for %d s a round, moved once %d MiB are acknowledged; %d rounds each%n",
        pacing >> 20, seconds, MOVE_AFTER >> 20, rounds);
    System.out.printf(
        "%-8s %5s %10s %10s %18s %14s%n",
        "mode", "round", "pause ms", "stall ms", "stall end - resume", "acked at once");
    Map<String, List<UploadMove.Result>> byMode = new java.util.LinkedHashMap<>();
    for (String mode : List.of("kept", "dropped")) {
      // A cluster of its own for each mode: the setting is read when the agents start.
      List<UploadMove.Result> results = new ArrayList<>();
      try (ClosedOnExit<AgentCluster> held = ClosedOnExit.of(AgentCluster.create(LAN), mode)) {
        AgentCluster cluster = held.get();
        for (AgentCluster.Node n : List.of(cluster.a, cluster.b)) {
          n.baseEnv = Map.of("FERRY_AGENT_KEEP_CLIENT_BYTES", String.valueOf(mode.equals("kept")));
          n.startAgent();
          n.pythonStreamer();
        }
        AgentCluster.Node at = cluster.a;
        for (int round = 1; round <= rounds; round++) {
          AgentCluster.Node to = at == cluster.a ? cluster.b : cluster.a;
          UploadMove.Result r =
              UploadMove.run(
                  cluster, at, to, mode + "-" + round, pacing * seconds, pacing, MOVE_AFTER);
          if (r.moved().getResult() != MoveOutcome.Result.COMPLETED || r.exitCode() != 0) {
            System.out.println(
                "round " + round + " failed: " + r.moved().getMessage() + " " + r.lines());
            return 1;
          }
          at = to;
          results.add(r);
          System.out.printf(
              "%-8s %5d %10.1f %10.1f %15.1f ms %14d %s%n",
              mode,
              round,
              r.moved().getPauseMicros() / 1000.0,
              r.stall().micros() / 1000.0,
              r.stallEndAfterResumeMicros() / 1000.0,
              r.stall().endBytes(),
              r.keptBytesSent() ? "sent kept bytes" : "");
        }
      }
      byMode.put(mode, results);
    }
    System.out.println();
    for (var e : byMode.entrySet()) {
      List<Long> ends =
          e.getValue().stream().map(UploadMove.Result::stallEndAfterResumeMicros).sorted().toList();
      System.out.printf(
          "%-8s stall ended after the resume: median %.1f ms, worst %.1f ms%n",
          e.getKey(), ends.get(ends.size() / 2) / 1000.0, ends.get(ends.size() - 1) / 1000.0);
    }
    return 0;
  }
}
