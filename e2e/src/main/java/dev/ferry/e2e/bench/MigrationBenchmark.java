// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.e2e.Mains;
import dev.ferry.e2e.bench.BenchCluster.Node;
import dev.ferry.e2e.bench.StreamClients.Outcome;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code make bench}: the migration benchmark of issue 8. For each connection count, N clients
 * (half streaming SSE, half near-idle) stream from a pod on node A; the benchmark then
 *
 * <ol>
 *   <li>moves every connection with Ferry through the operator (the operator path: a
 *       MigrationRequest created in the API server, the operator and the two agents as processes)
 *       and through the two node-agents' API alone (the agent path, the source agent's Move as the
 *       operator calls it), each once to warm up and once measured, and reports each client's
 *       stall, the agents' phase times, and whether every byte arrived exactly once;
 *   <li>on the same streams, kills the server and moves the address to a standby server: the
 *       clients reconnect and ask again, as they must without Ferry (baseline a);
 *   <li>if CRIU runs on this machine, moves the same servers with {@code criu dump/restore
 *       --tcp-established} (baseline b); otherwise says why not.
 * </ol>
 *
 * It prints a Markdown table, writes it to {@code OUT/results.md}, and plots the stall
 * distributions to {@code OUT/stalls.png}.
 */
public final class MigrationBenchmark {
  static final String USAGE =
      "usage: MigrationBenchmark [--connections 1,100,1000,10000] [--out target/bench]"
          + " [--kv-bytes 4096] [--criu auto|off] [--rate 1000] [--event-budget 20000]"
          + " [--io netty|blocking] [--state-dir DIR] [--prepare on|off]"
          + " [--path agents|operator|both] [--commit-with-states on|off] [--moves 1]";

  /** A way of moving the streams. */
  enum MovePath {
    /** A MigrationRequest, which the operator turns into the source agent's Move. */
    OPERATOR,
    /** The source agent's Move, called by the benchmark as the operator calls it. */
    AGENTS;

    String label() {
      return this == OPERATOR ? "operator" : "agents";
    }
  }

  /**
   * The command line.
   *
   * @param paths the paths each N moves its streams on, in the order their moves alternate (the
   *     operator's first: its requests then always leave pod-a, whose own address the service
   *     address is, see {@link MigrationBenchmark#runOne})
   */
  record Options(
      List<Integer> connections,
      Path out,
      int kvBytes,
      boolean criu,
      int maxRate,
      int eventBudget,
      String io,
      Path stateDir,
      boolean prepare,
      List<MovePath> paths,
      boolean commitWithStates,
      int moves) {

    /** The most measured moves per path and N: each takes about 3.5 s with its noise window. */
    static final int MOST_MOVES = 100;

    static Options parse(String[] argv) {
      String[] args = String.join(" ", argv).trim().split("\\s+");
      List<Integer> connections = List.of(1, 100, 1000, 10000);
      Path out = Path.of("target/bench");
      int kvBytes = 4096;
      boolean criu = true;
      int maxRate = 1000;
      int budget = 20_000;
      String io = "netty";
      Path stateDir = null;
      boolean prepare = false;
      List<MovePath> paths = List.of(MovePath.OPERATOR, MovePath.AGENTS);
      boolean commitWithStates = false;
      int moves = 1;
      for (int i = 0; i < args.length; i++) {
        if (args[i].isEmpty()) {
          continue;
        }
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException(args[i] + " needs a value");
        }
        String v = args[++i];
        switch (args[i - 1]) {
          case "--connections" ->
              connections = Arrays.stream(v.split(",")).map(Integer::parseInt).toList();
          case "--out" -> out = Path.of(v);
          case "--kv-bytes" -> kvBytes = Integer.parseInt(v);
          case "--criu" -> {
            if (!v.equals("auto") && !v.equals("off")) {
              throw new IllegalArgumentException("--criu must be auto or off, got " + v);
            }
            criu = v.equals("auto");
          }
          case "--rate" -> maxRate = Integer.parseInt(v);
          case "--event-budget" -> budget = Integer.parseInt(v);
          case "--io" -> io = v;
          case "--state-dir" -> stateDir = Path.of(v);
          case "--prepare" -> {
            if (!v.equals("on") && !v.equals("off")) {
              throw new IllegalArgumentException("--prepare must be on or off, got " + v);
            }
            prepare = v.equals("on");
          }
          case "--commit-with-states" -> {
            // The agents' ferry.agent.commit-with-states: off is their default.
            if (!v.equals("on") && !v.equals("off")) {
              throw new IllegalArgumentException(
                  "--commit-with-states must be on or off, got " + v);
            }
            commitWithStates = v.equals("on");
          }
          case "--moves" -> {
            moves = v.matches("\\d{1,3}") ? Integer.parseInt(v) : 0;
            if (moves < 1 || moves > MOST_MOVES) {
              throw new IllegalArgumentException(
                  "--moves must be 1.." + MOST_MOVES + " (measured moves per path), got " + v);
            }
          }
          case "--path" ->
              paths =
                  switch (v) {
                    case "agents" -> List.of(MovePath.AGENTS);
                    case "operator" -> List.of(MovePath.OPERATOR);
                    case "both" -> List.of(MovePath.OPERATOR, MovePath.AGENTS);
                    default ->
                        throw new IllegalArgumentException(
                            "--path must be agents, operator or both, got " + v);
                  };
          default -> throw new IllegalArgumentException("unknown option " + args[i - 1]);
        }
      }
      if (connections.stream().anyMatch(n -> n < 1 || n > 15_000)) {
        throw new IllegalArgumentException("connections must be 1..15000 each: " + connections);
      }
      if (prepare && paths.contains(MovePath.OPERATOR)) {
        // A prepared request (spec.prepareOnly, then ferry.dev/proceed) is not measured here: the
        // operator path would move unprepared beside a prepared agent path.
        throw new IllegalArgumentException(
            "--prepare on prepares the agent path's moves only: add --path agents");
      }
      return new Options(
          connections,
          out,
          kvBytes,
          criu,
          maxRate,
          budget,
          io,
          stateDir,
          prepare,
          paths,
          commitWithStates,
          moves);
    }

    /** The --path value these paths come from. */
    String pathOption() {
      return paths.size() == 2 ? "both" : paths.get(0).label();
    }

    /** Tokens per second of each streaming client at N connections: the budget shared out. */
    int rate(int n) {
      int streams = (n + 1) / 2;
      return Math.max(1, Math.min(maxRate, eventBudget / streams));
    }
  }

  static String loadAtStart = "unknown";

  private MigrationBenchmark() {}

  public static void main(String[] argv) {
    Mains.exitWith("MigrationBenchmark", () -> benchmark(argv));
  }

  /** The whole run; returns the exit code (2: bad options, 1: a client lost or broke). */
  private static int benchmark(String[] argv) throws Exception {
    Options o;
    try {
      o = Options.parse(argv);
    } catch (IllegalArgumentException e) {
      System.err.println("MigrationBenchmark: " + e.getMessage());
      System.err.println(USAGE);
      return 2;
    }
    System.setProperty("java.awt.headless", "true");
    // The agents' libraries on the classpath bring JBoss LogManager, which wants to be JUL's.
    System.setProperty("java.util.logging.manager", "org.jboss.logmanager.LogManager");
    loadAtStart = Report.loadAverage();
    Path out = Files.createDirectories(o.out().toAbsolutePath());
    // The processes append to their logs: a previous run's would mix with this one's.
    dev.ferry.testbed.Shell.run("rm", "-rf", out.resolve("logs").toString());
    String criuReason = o.criu() ? CriuMove.unavailable() : "not run (--criu off)";
    say("CRIU: " + (criuReason == null ? "criu check passes; baseline (b) runs" : criuReason));
    List<Figures> results = new ArrayList<>();
    long started = System.nanoTime();
    try (BenchCluster cluster =
        BenchCluster.start(
            out.resolve("logs"),
            o.stateDir(),
            o.kvBytes(),
            o.paths().contains(MovePath.OPERATOR),
            o.commitWithStates())) {
      say(
          "cluster up: client, node-a and node-b with their agents"
              + (cluster.operators == null
                  ? ""
                  : "; API server at "
                      + cluster.operators.apiUrl
                      + " and the operator (HTTP port "
                      + BenchCluster.OPERATOR_HTTP_PORT
                      + ")")
              + "; logs in "
              + out.resolve("logs"));
      for (int i = 0; i < o.connections().size(); i++) {
        Figures f = runOne(cluster, o, o.connections().get(i), i + 1, criuReason);
        results.add(f);
        String md = Report.markdown(o, results, criuReason, started);
        Files.writeString(out.resolve("results.md"), md);
      }
    }
    String md = Report.markdown(o, results, criuReason, started);
    Files.writeString(out.resolve("results.md"), md);
    String plot = StallPlot.write(results, out.resolve("stalls.png"));
    System.out.println();
    System.out.println(md);
    System.out.println(plot);
    boolean ok =
        results.stream()
            .flatMap(f -> Report.paths(f).stream())
            .allMatch(x -> x.failed() == 0 && x.resets() == 0 && x.unresumed() == 0);
    return ok ? 0 : 1;
  }

  /**
   * Measures N connections: Ferry, then baseline (a) on the same streams, then CRIU.
   *
   * @param round which N of the run this is: migration ids are unique within an agent's life
   */
  private static Figures runOne(
      BenchCluster cluster, Options o, int n, int round, String criuReason) throws Exception {
    int streams = (n + 1) / 2;
    int rate = o.rate(n);
    say(
        "== %d connections: %d streaming at %d tokens/s, %d near-idle at 1 token/s"
            .formatted(n, streams, rate, n - streams));
    reset(cluster);
    for (Node node : List.of(cluster.a, cluster.b)) {
      node.streamer(BenchCluster.STREAM_PORT, rate, o.kvBytes(), o.io(), true);
      node.streamer(BenchCluster.IDLE_PORT, 1, o.kvBytes(), o.io(), true);
    }
    StreamClients.Spec spec = spec(o, n, rate, "bench" + n);
    Map<MovePath, Moved> cold = new EnumMap<>(MovePath.class);
    Map<MovePath, double[]> coldStalls = new EnumMap<>(MovePath.class);
    Map<MovePath, List<Moved>> measured = new EnumMap<>(MovePath.class);
    Map<MovePath, List<Figures.Ferry>> seen = new EnumMap<>(MovePath.class);
    Figures.Reconnect reconnect;
    long t0 = System.nanoTime();
    try (StreamClients clients = StreamClients.open(spec, cluster.client.netns(), 120 + n / 20)) {
      say("%d clients streaming from node-a after %.0f ms".formatted(n, millis(t0)));
      Thread.sleep(2_000); // every stream past its first events, the servers' JIT past its first
      // Each path moves once to warm up, then --moves times measured, the moves alternating A -> B,
      // B -> A. One path: A -> B warm-up, B -> A measured (then A -> B, ...). Both: the operator's
      // warm-up A -> B, the agents' B -> A, then the operator measured A -> B and the agents B -> A
      // (and again), so that each measured move is at least its source agent's and its source
      // application's second freeze (a node's first pays for cold code), and the operator's
      // requests all leave pod-a.
      Node on = cluster.a;
      for (MovePath p : o.paths()) {
        Node to = other(cluster, on);
        String id = id(p, round, n, 0);
        if (o.prepare()) {
          prepareAhead(id, on, to);
        }
        // Recorded too: a node's first move is the one a spot reclaim makes, and its client waits
        // past the agents' resume for the target application's first takeover.
        clients.startRecording();
        long recordFrom = System.nanoTime();
        Thread.sleep(1_000); // the token before the freeze recorded too, at every stream's rate
        Moved m = move(cluster, p, id, on, to, n);
        cold.put(p, m);
        say("warm-up move (%s path) %s -> %s: %s".formatted(p.label(), on, to, describe(m)));
        on = to;
        awaitPast(clients, m.agents().resumed(), n);
        Thread.sleep(200);
        clients.stopRecording();
        // The same count as a measured move's: streaming clients that neither failed nor went
        // unresumed. The rest of the figures are the measured moves'.
        coldStalls.put(
            p,
            ferryFigures(clients.outcomes(), m.agents(), null, m.agents(), recordFrom).stallMs());
        say(
            "warm-up move (%s path): stall p50 %.2f / p99 %.2f / max %.2f ms"
                .formatted(
                    p.label(),
                    Stalls.percentile(coldStalls.get(p), 0.5),
                    Stalls.percentile(coldStalls.get(p), 0.99),
                    Stalls.max(coldStalls.get(p))));
        Thread.sleep(800);
      }
      for (int k = 1; k <= o.moves(); k++) {
        for (MovePath p : o.paths()) {
          Node to = other(cluster, on);
          String id = id(p, round, n, k);
          if (p != o.paths().get(0)) {
            Thread.sleep(1_000); // 1 s after the move before, as after a warm-up
          }
          if (o.prepare()) {
            prepareAhead(id, on, to);
          }
          clients.startRecording();
          long recordFrom = System.nanoTime();
          Thread.sleep(2_000);
          Moved m = move(cluster, p, id, on, to, n);
          measured.computeIfAbsent(p, x -> new ArrayList<>()).add(m);
          say(
              "measured move %s(%s path) %s -> %s: %s"
                  .formatted(
                      o.moves() == 1 ? "" : k + " of " + o.moves() + " ",
                      p.label(),
                      on,
                      to,
                      describe(m)));
          on = to;
          awaitPast(clients, m.agents().resumed(), n);
          Thread.sleep(200);
          clients.stopRecording();
          Figures.Ferry x =
              ferryFigures(
                  clients.outcomes(),
                  cold.get(p).agents(),
                  coldStalls.get(p),
                  m.agents(),
                  recordFrom);
          seen.computeIfAbsent(p, y -> new ArrayList<>()).add(x);
          say(
              "Ferry, %s path: stall p50 %.2f / p99 %.2f / max %.2f ms over %d streams (noise p99 %.2f ms);"
                      .formatted(
                          p.label(),
                          Stalls.percentile(x.stallMs(), 0.5),
                          Stalls.percentile(x.stallMs(), 0.99),
                          Stalls.max(x.stallMs()),
                          x.stallMs().length,
                          Stalls.percentile(x.noiseMs(), 0.99))
                  + " %,d bytes verified, %d resets, %d failed, %d not resumed"
                      .formatted(x.bytesVerified(), x.resets(), x.failed(), x.unresumed()));
          x.errors().forEach(e -> say("  " + e));
        }
      }
      reconnect = reconnect(cluster, clients, n, on);
    }
    Figures.Criu criu =
        criuReason != null ? Figures.Criu.not(criuReason) : criu(cluster, o, n, rate);
    reset(cluster);
    Map<MovePath, Figures.Ferry> ferry = new EnumMap<>(MovePath.class);
    seen.forEach((p, each) -> ferry.put(p, Figures.Ferry.across(each)));
    Figures.Operator operator = null;
    if (ferry.containsKey(MovePath.OPERATOR)) {
      Figures.Ferry x = ferry.get(MovePath.OPERATOR);
      operator =
          new Figures.Operator(
              x,
              cold.get(MovePath.OPERATOR).request(),
              measured.get(MovePath.OPERATOR).get(x.moves().indexOf(x.measured())).request());
    }
    return new Figures(n, streams, rate, ferry.get(MovePath.AGENTS), operator, reconnect, criu);
  }

  private static Node other(BenchCluster cluster, Node node) {
    return node == cluster.a ? cluster.b : cluster.a;
  }

  /**
   * One move of every stream on one path: the agents' figures, and on the operator path the
   * request's.
   *
   * @param request null on the agent path
   */
  private record Moved(FerryMove.Result agents, OperatorMove.Result request) {}

  /**
   * A move's id: the agents' migration id on the agent path, the MigrationRequest's name on the
   * operator path (whose migration id the operator makes from it).
   *
   * @param round which N of the run this is: migration ids are unique within an agent's life
   * @param measured which measured move of the path this is, from 1; 0 for the warm-up
   */
  private static String id(MovePath p, int round, int n, int measured) {
    return "%s-%d-n%d%s"
        .formatted(
            p == MovePath.AGENTS ? "bench" : "mr",
            round,
            n,
            measured == 0 ? "-warmup" : measured == 1 ? "" : "-" + measured);
  }

  private static Moved move(BenchCluster cluster, MovePath p, String id, Node from, Node to, int n)
      throws Exception {
    if (p == MovePath.AGENTS) {
      return new Moved(FerryMove.move(cluster, id, from, to), null);
    }
    // Bounds a hang only: the first request also waits for the operator to take its Lease.
    OperatorMove.Result r = OperatorMove.move(cluster, id, from, to, 120 + n / 20);
    return new Moved(r.agents(), r);
  }

  private static StreamClients.Spec spec(Options o, int n, int rate, String prompt)
      throws Exception {
    InetAddress vip = InetAddress.getByName(BenchCluster.VIP);
    return new StreamClients.Spec(
        new InetSocketAddress(vip, BenchCluster.STREAM_PORT),
        new InetSocketAddress(vip, BenchCluster.IDLE_PORT),
        n,
        Math.min(1_000_000, rate * 1800),
        1800,
        o.kvBytes(),
        TimeUnit.SECONDS.toNanos(1) / rate,
        TimeUnit.SECONDS.toNanos(1),
        prompt);
  }

  /**
   * --prepare on: the move is prepared a second ahead (states pre-copied, nothing frozen), as a
   * rebalance recommendation does before the interruption; the Move that follows joins it.
   */
  private static void prepareAhead(String id, BenchCluster.Node from, BenchCluster.Node to)
      throws InterruptedException {
    long t = System.nanoTime();
    FerryMove.prepare(id, from, to);
    say("prepared %s %s -> %s in %.0f ms".formatted(id, from.name, to.name, millis(t)));
    Thread.sleep(1_000);
  }

  /** No streamer anywhere, the address on pod A. */
  private static void reset(BenchCluster cluster) throws Exception {
    cluster.a.killStreamers();
    cluster.b.killStreamers();
    // The killed servers' sockets linger as orphans (FIN_WAIT1, their FINs unanswered once the
    // address had moved away in the reconnect baseline): the next count's move of every
    // connection on the ports would find them, and, all or none, roll back. They belong to no one.
    for (BenchCluster.Node n : List.of(cluster.a, cluster.b)) {
      n.pod.run(
          "ss",
          "-K",
          "-t",
          "-a",
          "( sport = :"
              + BenchCluster.STREAM_PORT
              + " or sport = :"
              + BenchCluster.IDLE_PORT
              + " )");
    }
    cluster.moveAddress(cluster.a);
  }

  /** Waits until every client has received a token after {@code t} (or has failed). */
  private static void awaitPast(StreamClients clients, long t, int n) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (System.nanoTime() < deadline) {
      if (clients.countPast(t) == n) {
        return;
      }
      Thread.sleep(20);
    }
  }

  private static Figures.Ferry ferryFigures(
      List<Outcome> all,
      FerryMove.Result cold,
      double[] coldStallMs,
      FerryMove.Result m,
      long recordFrom) {
    List<Double> stalls = new ArrayList<>();
    List<Double> idle = new ArrayList<>();
    List<Double> noise = new ArrayList<>();
    int unresumed = 0;
    long bytes = 0;
    long tokens = 0;
    int resets = 0;
    int failed = 0;
    List<String> errors = new ArrayList<>();
    for (Outcome c : all) {
      bytes += c.bytesVerified();
      tokens += c.tokens();
      resets += c.resets();
      if (c.failure() != null) {
        failed++;
        if (errors.size() < 5) {
          errors.add("client " + c.id() + ": " + c.failure());
        }
        continue;
      }
      long s = Stalls.spanning(c.arrivals(), c.intervalNanos(), m.freezeSent(), m.resumed());
      if (s < 0) {
        unresumed++;
        if (errors.size() < 5) {
          errors.add("client " + c.id() + ": no token after the resume");
        }
        continue;
      }
      (c.idle() ? idle : stalls).add(s / 1e6);
      if (!c.idle()) {
        noise.add(Stalls.within(c.arrivals(), c.intervalNanos(), recordFrom, m.freezeSent()) / 1e6);
      }
    }
    return new Figures.Ferry(
        cold,
        coldStallMs,
        List.of(m),
        m,
        doubles(stalls),
        doubles(idle),
        doubles(noise),
        unresumed,
        bytes,
        tokens,
        resets,
        failed,
        errors);
  }

  /**
   * Baseline (a) on the same clients: the servers on the node the streams are {@code on} are
   * killed, the address moves to the other node's standby server (warm, already running: a best
   * case for the baseline), and each client reconnects and asks for its prompt again.
   */
  private static Figures.Reconnect reconnect(
      BenchCluster cluster, StreamClients clients, int n, Node on) throws Exception {
    clients.reconnectOnBreak();
    on.killStreamers();
    long t = System.nanoTime();
    cluster.moveAddress(other(cluster, on));
    double addressMs = millis(t);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60 + n / 20);
    while (System.nanoTime() < deadline && clients.settled() < n) {
      Thread.sleep(50);
    }
    if (clients.settled() < n) {
      // Kept for whoever looks into it: who still holds the clients' connections, and in what
      // state, when the server was killed long ago.
      Path file = cluster.logs.resolve("reconnect-stuck-n" + n + ".txt");
      Files.writeString(
          file,
          "client:\n"
              + cluster.client.run("ss", "-tanpio")
              + "\npod-a:\n"
              + cluster.a.pod.run("ss", "-tanpio")
              + "\npod-b:\n"
              + cluster.b.pod.run("ss", "-tanpio"));
      say("some clients are not streaming again; sockets as they are now: " + file);
    }
    int recovered = clients.recovered();
    Thread.sleep(1_000); // the new streams are checked byte for byte too
    List<Double> next = new ArrayList<>();
    List<Double> streamStall = new ArrayList<>();
    List<Long> lost = new ArrayList<>();
    List<String> errors = new ArrayList<>();
    for (Outcome c : clients.outcomes()) {
      if (c.failure() != null && errors.size() < 5) {
        errors.add("client " + c.id() + ": " + c.failure());
      }
      if (c.firstTokenAfterBreak() == 0) {
        if (c.failure() == null && errors.size() < 5) {
          errors.add(
              "client %d: not streaming again (%s, %d connection attempts)"
                  .formatted(
                      c.id(),
                      c.broken() ? "its stream broke" : "its stream never broke",
                      c.connectAttempts()));
        }
        continue;
      }
      double gap = (c.firstTokenAfterBreak() - c.lastTokenBeforeBreak()) / 1e6;
      next.add(gap);
      if (!c.idle()) {
        streamStall.add(Math.max(0, gap - c.intervalNanos() / 1e6));
      }
      lost.add((long) c.indexBeforeBreak() + 1);
    }
    Figures.Reconnect r =
        new Figures.Reconnect(
            doubles(next),
            doubles(streamStall),
            lost.stream().mapToLong(Long::longValue).toArray(),
            recovered,
            addressMs,
            errors);
    say(
        "baseline (a), reconnect: %d of %d clients streaming again; time to next token p50 %.1f / p99 %.1f / max %.1f ms; %,d tokens to generate again"
            .formatted(
                recovered,
                n,
                Stalls.percentile(r.nextTokenMs(), 0.5),
                Stalls.percentile(r.nextTokenMs(), 0.99),
                Stalls.max(r.nextTokenMs()),
                Arrays.stream(r.lostTokens()).sum()));
    errors.forEach(e -> say("  " + e));
    return r;
  }

  /** Baseline (b): fresh plain servers on pod A and fresh clients, moved by CRIU to pod B. */
  private static Figures.Criu criu(BenchCluster cluster, Options o, int n, int rate) {
    try {
      reset(cluster);
      List<Process> servers =
          List.of(
              cluster.a.detachedStreamer(BenchCluster.STREAM_PORT, rate, o.kvBytes(), o.io()),
              cluster.a.detachedStreamer(BenchCluster.IDLE_PORT, 1, o.kvBytes(), o.io()));
      try (StreamClients clients =
          StreamClients.open(spec(o, n, rate, "criu" + n), cluster.client.netns(), 120 + n / 20)) {
        Thread.sleep(2_000);
        clients.startRecording();
        Thread.sleep(2_000);
        Path images = Files.createTempDirectory("ferry-bench-criu-");
        CriuMove.Result m;
        try {
          m = CriuMove.move(cluster, servers, cluster.a, cluster.b, images);
        } finally {
          keepCriuLogs(images, cluster.logs.resolve("criu-n" + n));
          dev.ferry.testbed.Shell.attempt(List.of("rm", "-rf", images.toString()));
        }
        awaitPast(clients, m.restored(), n);
        Thread.sleep(200);
        clients.stopRecording();
        List<Double> stalls = new ArrayList<>();
        List<String> errors = new ArrayList<>();
        long bytes = 0;
        int resets = 0;
        for (Outcome c : clients.outcomes()) {
          bytes += c.bytesVerified();
          resets += c.resets();
          if (c.failure() != null) {
            if (errors.size() < 5) {
              errors.add("client " + c.id() + ": " + c.failure());
            }
            continue;
          }
          long s = Stalls.spanning(c.arrivals(), c.intervalNanos(), m.dumpStarted(), m.restored());
          if (!c.idle() && s >= 0) {
            stalls.add(s / 1e6);
          }
        }
        for (long pid : m.pids()) {
          ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
          cluster.forget(pid);
        }
        say(
            "baseline (b), CRIU: dump %.0f ms, restore %.0f ms; stall p50 %.1f / p99 %.1f / max %.1f ms; %d resets"
                .formatted(
                    m.dumpMillis(),
                    m.restoreMillis(),
                    Stalls.percentile(doubles(stalls), 0.5),
                    Stalls.percentile(doubles(stalls), 0.99),
                    Stalls.max(doubles(stalls)),
                    resets));
        return new Figures.Criu(null, m, doubles(stalls), bytes, resets, errors);
      }
    } catch (Exception e) {
      say("baseline (b), CRIU failed: " + e.getMessage());
      return Figures.Criu.not("CRIU failed: " + e.getMessage());
    }
  }

  /**
   * Copies CRIU's dump and restore logs of each server ({@code images/pid-PID/*.log}) to {@code
   * to/pid-PID/}, before the images (hundreds of MB of JVM memory) are deleted.
   */
  private static void keepCriuLogs(Path images, Path to) {
    try (var dirs = Files.list(images)) {
      for (Path dir : (Iterable<Path>) dirs::iterator) {
        for (String log : List.of("dump.log", "restore.log")) {
          if (Files.exists(dir.resolve(log))) {
            Path kept = Files.createDirectories(to.resolve(dir.getFileName().toString()));
            Files.copy(
                dir.resolve(log),
                kept.resolve(log),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
          }
        }
      }
    } catch (java.io.IOException e) {
      say("could not keep CRIU's logs from " + images + ": " + e.getMessage());
    }
  }

  private static String describe(Moved m) {
    if (m.request() == null) {
      return describe(m.agents());
    }
    OperatorMove.Result r = m.request();
    return "request %s Completed %.1f ms after its creation (Pending %.1f, Preparing %.1f, Moving %.1f ms; status.pauseMillis %.1f); "
            .formatted(
                r.status().getMigrationId(),
                r.requestMillis(),
                r.phaseMillis("Pending"),
                r.phaseMillis("Preparing"),
                r.phaseMillis("Moving"),
                r.pauseMillis())
        + describe(m.agents());
  }

  private static String describe(FerryMove.Result r) {
    StringBuilder b =
        new StringBuilder(
            "%d moved, held %.1f ms (freeze sent to resume returned), whole %.1f ms; agents (ms):"
                .formatted(r.moved(), r.heldMillis(), r.wholeMillis()));
    r.agentMicros().forEach((k, v) -> b.append(" %s %.1f".formatted(k, v / 1e3)));
    b.append("; calls (ms):");
    r.callMicros().forEach((k, v) -> b.append(" %s %.1f".formatted(k, v / 1e3)));
    if (!r.stayed().isEmpty()) {
      b.append("; ").append(r.stayed().size()).append(" stayed, e.g. ").append(r.stayed().get(0));
    }
    return b.toString();
  }

  private static double[] doubles(List<Double> values) {
    return values.stream().mapToDouble(Double::doubleValue).toArray();
  }

  private static double millis(long since) {
    return (System.nanoTime() - since) / 1e6;
  }

  static void say(String line) {
    System.out.println(
        "[bench "
            + java.time.LocalTime.now().truncatedTo(java.time.temporal.ChronoUnit.MILLIS)
            + "] "
            + line);
    System.out.flush();
  }
}
