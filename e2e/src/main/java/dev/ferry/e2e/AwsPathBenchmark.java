// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.crd.PodReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The AWS path beside the L2 path, through the operator (part of {@code make bench}; alone: {@code
 * make bench-aws}). Each path gets a one-machine cluster of its own: the L2 one as {@code make
 * demo} builds it; the AWS one laid out and behaving as EC2 (AgentCluster.Layout.ec2,
 * OperatorCluster.behaveAsEc2: the {@code no_manage} ENI as eth1, the source/destination check,
 * jumbo frames), its operator on the AWS mover against the local EC2, its agents forwarding. For
 * each EC2 delay (how long after an accepted Assign the VPC delivers the address) a live curl
 * stream is moved by a MigrationRequest, back and forth, {@code runs} times; each run's output must
 * be byte for byte that of a run never moved. Prints, per path and delay, curl's longest gap
 * between two tokens (the client's stall) and the agents' pause, and writes them to {@code
 * OUT/aws-path.md}.
 */
public final class AwsPathBenchmark {
  static final String USAGE =
      "usage: AwsPathBenchmark [--delays 3,30] [--runs 3] [--rate 200] [--out target/bench]";

  // LANs of their own, apart from the tests' and the migration benchmark's.
  private static final AgentCluster.Layout L2 = new AgentCluster.Layout("198.19.20", null, null);
  private static final AgentCluster.Layout EC2 = AgentCluster.Layout.ec2("198.19.21", "198.19.121");

  // Longer than the longest delay measured by default: the source's entry ends on its own after
  // it, before the stream moves back through that node.
  private static final String FORWARDING_LIMIT = "PT45S";

  // How long each stream lasts beyond the EC2 delay: the request must end before the stream does
  // (a stream that ended has no connection to move), with room for a slow operator.
  private static final Duration STREAM_AFTER_DELAY = Duration.ofSeconds(30);

  /** The command line. */
  record Options(List<Duration> delays, int runs, int rate, Path out) {
    static Options parse(String[] argv) {
      String[] args = String.join(" ", argv).trim().split("\\s+");
      List<Duration> delays = List.of(Duration.ofSeconds(3), Duration.ofSeconds(30));
      int runs = 3;
      int rate = 200;
      Path out = Path.of("target/bench");
      for (int i = 0; i < args.length; i++) {
        if (args[i].isEmpty()) {
          continue;
        }
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException(args[i] + " needs a value\n" + USAGE);
        }
        String v = args[++i];
        switch (args[i - 1]) {
          case "--delays" ->
              delays =
                  Arrays.stream(v.split(","))
                      .map(s -> Duration.ofMillis(Math.round(Double.parseDouble(s) * 1000)))
                      .toList();
          case "--runs" -> runs = Integer.parseInt(v);
          case "--rate" -> rate = Integer.parseInt(v);
          case "--out" -> out = Path.of(v);
          default ->
              throw new IllegalArgumentException("unknown option " + args[i - 1] + "\n" + USAGE);
        }
      }
      if (runs < 1 || rate < 1) {
        throw new IllegalArgumentException("--runs and --rate must be at least 1\n" + USAGE);
      }
      Duration longest = delays.stream().max(Duration::compareTo).orElse(Duration.ZERO);
      if (longest.compareTo(Duration.parse(FORWARDING_LIMIT)) >= 0) {
        throw new IllegalArgumentException(
            "--delays: at most "
                + Duration.parse(FORWARDING_LIMIT).toSeconds()
                + " s, the agents' forwarding limit here; got "
                + longest.toSeconds()
                + " s");
      }
      return new Options(delays, runs, rate, out);
    }
  }

  /** One path and delay: each run's stall (curl's longest gap) and pause, in ms. */
  record Row(String path, Duration delay, List<Double> stalls, List<Double> pauses) {}

  private AwsPathBenchmark() {}

  public static void main(String[] args) {
    Mains.exitWith("AwsPathBenchmark", () -> run(Options.parse(args)));
  }

  private static int run(Options o) throws Exception {
    AgentCluster.echoLogs = false;
    List<Row> rows = new ArrayList<>();
    say("L2 path: a cluster as make demo builds it, the operator on the l2 mover");
    try (ClosedOnExit<OperatorCluster> held =
        ClosedOnExit.of(OperatorCluster.start(L2, Map.of("QUARKUS_HTTP_PORT", "0")), "l2-path")) {
      OperatorCluster c = held.get();
      Moves moves = new Moves(c, L2, o.rate, false);
      moves.warmUp();
      rows.add(moves.measure("l2", Duration.ZERO, o.runs, STREAM_AFTER_DELAY));
    }
    say("AWS path: nodes laid out as EC2 (eth1 the no_manage ENI), the operator on the aws mover");
    try (ClosedOnExit<OperatorCluster> held =
        ClosedOnExit.of(
            OperatorCluster.start(
                EC2,
                OperatorCluster::awsEnvBesideOthers,
                Map.of(
                    "FERRY_AGENT_FORWARDING_ENABLED",
                    "true",
                    "FERRY_AGENT_FORWARDING_LIMIT",
                    FORWARDING_LIMIT)),
            "aws-path")) {
      OperatorCluster c = held.get();
      c.behaveAsEc2();
      Moves moves = new Moves(c, EC2, o.rate, true);
      c.ec2.moveDelay(Duration.ofMillis(200));
      moves.warmUp();
      for (Duration delay : o.delays) {
        c.ec2.moveDelay(delay);
        rows.add(moves.measure("aws", delay, o.runs, delay.plus(STREAM_AFTER_DELAY)));
      }
    }
    String table = table(rows);
    System.out.println();
    System.out.println(table);
    Files.createDirectories(o.out);
    Files.writeString(o.out.resolve("aws-path.md"), table);
    say("written to " + o.out.resolve("aws-path.md"));
    return 0;
  }

  /** Moves of one stream at a time between the cluster's two pods, measured. */
  private static final class Moves {
    private final OperatorCluster cluster;
    private final AgentCluster.Layout layout;
    private final int rate;
    private final boolean forwarding;
    private boolean onA = true;
    private int made;

    Moves(OperatorCluster cluster, AgentCluster.Layout layout, int rate, boolean forwarding)
        throws Exception {
      this.cluster = cluster;
      this.layout = layout;
      this.rate = rate;
      this.forwarding = forwarding;
      cluster.agents.a.streamer("--rate", Integer.toString(rate));
      cluster.agents.b.streamer("--rate", Integer.toString(rate));
    }

    /** Two moves, there and back, unmeasured: the JVMs and the operator's channels warm up. */
    void warmUp() throws Exception {
      measure("warm-up", Duration.ZERO, 2, STREAM_AFTER_DELAY);
    }

    /**
     * {@code runs} moves of a stream lasting {@code lasts}, each checked against a run never moved.
     */
    Row measure(String path, Duration delay, int runs, Duration lasts) throws Exception {
      String stream =
          "/v1/stream?prompt=aws-path&tokens=" + Math.max(200, rate * lasts.toSeconds());
      String reference;
      try (CurlStream unmoved = cluster.agents.curl(stream, lasts.plusSeconds(60))) {
        int exit = unmoved.exitCode(lasts.toSeconds() + 60);
        if (exit != 0) {
          throw new IllegalStateException("the unmoved stream failed: curl exit " + exit);
        }
        reference = unmoved.output();
      }
      List<Double> stalls = new ArrayList<>();
      List<Double> pauses = new ArrayList<>();
      for (int i = 0; i < runs; i++) {
        String from = onA ? "pod-a" : "pod-b";
        String to = onA ? "pod-b" : "pod-a";
        AgentCluster.Node source = onA ? cluster.agents.a : cluster.agents.b;
        int mark = source.logMark();
        String name = path + "-" + delay.toMillis() + "ms-" + (made++);
        try (CurlStream curl = cluster.agents.curl(stream, lasts.plusSeconds(120))) {
          curl.awaitEvents(50, 30_000);
          cluster.request(
              name,
              s -> {
                s.setSource(new PodReference(from));
                s.setTarget(new PodReference(to));
                s.setAddress(layout.vip());
                s.setDeadline("5m");
              });
          MigrationRequestStatus st = cluster.awaitEnd(name, 330);
          if (st.getPhase() != Phase.Completed) {
            throw new IllegalStateException(
                name + " ended " + st.getPhase() + ": " + st.getMessage());
          }
          onA = !onA;
          int exit = curl.exitCode(lasts.toSeconds() + 120);
          if (exit != 0 || !curl.output().equals(reference)) {
            throw new IllegalStateException(
                name + ": curl exit " + exit + ", output differs from the unmoved run's");
          }
          stalls.add(curl.longestGapMillis());
          pauses.add(st.getPauseMillis() == null ? Double.NaN : st.getPauseMillis());
          say(
              String.format(
                  "%s: %s -> %s, curl's longest gap %.1f ms, pause %.1f ms, every byte as unmoved;"
                      + " agents' steps (ms): %s",
                  name,
                  from,
                  to,
                  stalls.get(stalls.size() - 1),
                  pauses.get(pauses.size() - 1),
                  agentSteps(st)));
        }
        if (forwarding) {
          // The next move leaves from the node this one moved to: the VPC must have switched
          // and the old source's forwarding ended (at its limit) before the address moves again.
          if (!cluster.ec2.awaitSettled(delay.multipliedBy(3).plusSeconds(10))) {
            throw new IllegalStateException(name + ": EC2's move never showed");
          }
          source.awaitLine(mark, "forwarding of " + layout.vip() + " ended");
        }
      }
      return new Row(path, delay, stalls, pauses);
    }
  }

  /** Where the pause went, as the agents timed it: their steps, source then target. */
  static String agentSteps(MigrationRequestStatus st) {
    if (st.getPhaseMillis() == null) {
      return "none reported";
    }
    StringBuilder b = new StringBuilder();
    st.getPhaseMillis().entrySet().stream()
        .filter(e -> e.getKey().startsWith("agent."))
        .sorted(Map.Entry.comparingByKey())
        .forEach(
            e ->
                b.append(b.length() == 0 ? "" : ", ")
                    .append(e.getKey().substring("agent.".length()))
                    .append(' ')
                    .append(String.format("%.1f", e.getValue())));
    return b.toString();
  }

  static String table(List<Row> rows) {
    StringBuilder t = new StringBuilder();
    t.append("| path | EC2 delivers after | runs | client's stall p50 (ms) | max (ms) |")
        .append(" agents' pause p50 (ms) |\n|---|---|---|---|---|---|\n");
    for (Row r : rows) {
      t.append(
          String.format(
              "| %s | %s | %d | %.1f | %.1f | %.1f |%n",
              r.path(),
              r.path().equals("l2") ? "n/a" : r.delay().toMillis() / 1000.0 + " s",
              r.stalls().size(),
              median(r.stalls()),
              r.stalls().stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN),
              median(r.pauses())));
    }
    return t.toString();
  }

  static double median(List<Double> values) {
    double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    if (v.length == 0) {
      return Double.NaN;
    }
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  }

  private static final long START = System.nanoTime();

  private static void say(String line) {
    System.out.printf("[%8.1f s] %s%n", (System.nanoTime() - START) / 1e9, line);
  }
}
