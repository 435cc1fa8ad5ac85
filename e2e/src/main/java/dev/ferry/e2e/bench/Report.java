// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.testbed.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.Function;

/** The benchmark's results as Markdown: the machine, the tables, the goals, and the method. */
final class Report {
  /** How much later than the agent path's the operator path's stall may be (p50 and p99). */
  static final double OPERATOR_WITHIN_MS = 1.0;

  private Report() {}

  /** The Ferry figures of each path that N ran, the operator path's first. */
  static List<Figures.Ferry> paths(Figures f) {
    List<Figures.Ferry> all = new ArrayList<>();
    if (f.operator() != null) {
      all.add(f.operator().clients());
    }
    if (f.ferry() != null) {
      all.add(f.ferry());
    }
    return all;
  }

  static String markdown(
      MigrationBenchmark.Options o, List<Figures> results, String criuReason, long started) {
    StringBuilder md = new StringBuilder();
    md.append("# Migration benchmark\n\n");
    md.append(
        "Run %s, %.1f min: `make bench ARGS=\"--connections %s --kv-bytes %d --rate %d --event-budget %d --io %s --criu %s --path %s --commit-with-states %s --moves %d\"`.\n"
            .formatted(
                LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm")),
                (System.nanoTime() - started) / 60e9,
                String.join(",", o.connections().stream().map(String::valueOf).toList()),
                o.kvBytes(),
                o.maxRate(),
                o.eventBudget(),
                o.io(),
                o.criu() ? "auto" : "off",
                o.pathOption(),
                o.commitWithStates() ? "on" : "off",
                o.moves()));
    md.append("Machine: ").append(machine()).append(".\n");
    md.append(
        "Load average (1 min) when the run began: %s; when it ended: %s (the end includes this"
                .formatted(MigrationBenchmark.loadAtStart, loadAverage())
            + " benchmark's own processes; other work on the machine disturbs the figures: compare"
            + " with the noise column).\n");
    boolean withOperator = results.stream().anyMatch(f -> f.operator() != null);
    boolean withAgents = results.stream().anyMatch(f -> f.ferry() != null);
    md.append(
        "Everything runs on this one machine: the clients, both nodes' agents and servers, in network"
            + " namespaces joined by veth pairs and a bridge; the benchmark process is the client"
            + (withAgents ? " and, on the agent path, calls the agents as the operator would" : "")
            + (withOperator
                ? "; on the operator path it creates a MigrationRequest in the API server (Fabric8's"
                    + " mock, a process on the nodes' LAN), and the operator (a process) drives the"
                    + " agents"
                : "")
            + ".\n\n");
    md.append(
        ("Each N: N connections, half streaming SSE at the rate in the table (min(%d, %,d / streams)"
                + " tokens/s), half near-idle (1 token/s, the streamer's lowest rate); each stream's"
                + " KV cache is %,d bytes; servers: the demo token streamer, `--io %s`, started"
                + " afresh for each N. The agents%s run for the whole benchmark. %s\n\n")
            .formatted(
                o.maxRate(),
                o.eventBudget(),
                o.kvBytes(),
                o.io(),
                withOperator ? ", the API server and the operator" : "",
                order(o)));

    if (withOperator) {
      sideBySide(md, results);
    }
    if (withAgents) {
      md.append("## Ferry, L2 path (two node-agents driven through their gRPC API)\n\n");
      phaseTable(md, results, Figures::ferry, "agent path");
      md.append(
          "\nOne Move call per migration: the agents run it between themselves. Phase columns: each"
              + " phase as the agents timed it themselves, in ms (target-ready, the source's wait"
              + " for the target's answer to the header, before the freeze and holding no one;"
              + " freeze, export and release on the source; stage, commit and resume on the"
              + " target). Held: from the first freeze to"
              + " the last resume, on the agents' clock, the longest any client can be held (the"
              + " pre-copy before it holds no one). Whole: from the first freeze to Move's"
              + " answer. First move: the path's warm-up, a node's first move in that direction"
              + " (cold code in the agents and in the applications, a target application that has"
              + " served no one): held, and the streaming clients' stall at p99, which also waits"
              + " for the target application's first takeover after the resume.\n\n");
    }
    if (withOperator) {
      md.append("## Ferry, operator path: the agents' steps inside Moving\n\n");
      phaseTable(
          md, results, f -> f.operator() == null ? null : f.operator().clients(), "operator path");
      md.append(
          "\nThe operator's one Move call, as the source agent answered it (the same columns as the"
              + " agent path's). Whole: from the first freeze to the watch event that showed the"
              + " request Completed.\n\n");
    }

    md.append("## Without Ferry, on the same streams\n\n");
    md.append(
        "| N | (a) reconnect: time to next token p50 / p99 / max (ms) | (a) tokens generated again"
            + " p50 / max / total | (a) clients back | (b) CRIU stall p50 / p99 / max (ms) |\n");
    md.append("|---|---|---|---|---|\n");
    for (Figures f : results) {
      Figures.Reconnect r = f.reconnect();
      long[] lost = r.lostTokens();
      md.append(
          "| %,d | %s | %s / %s / %,d | %,d of %,d | %s |\n"
              .formatted(
                  f.connections(),
                  triple(r.nextTokenMs()),
                  lost.length == 0 ? "–" : "%,.0f".formatted(percentile(lost, 0.5)),
                  lost.length == 0 ? "–" : "%,d".formatted(Arrays.stream(lost).max().getAsLong()),
                  Arrays.stream(lost).sum(),
                  r.recovered(),
                  f.connections(),
                  criuCell(f.criu())));
    }
    md.append('\n');
    if (criuReason != null) {
      md.append("(b) CRIU did not run: ").append(criuReason).append("\n\n");
    }

    md.append("## Goals\n\n");
    md.append(goalStall(results, 1, 5)).append('\n');
    md.append(goalStall(results, 1000, 50)).append('\n');
    md.append(goalTenThousand(results)).append('\n');
    md.append(goalOperator(results)).append('\n');
    md.append(goalAhead(results)).append('\n');
    md.append(goalBytes(results)).append("\n\n");

    md.append("## How the figures are computed\n\n");
    md.append(
        "- **Stall** (per client): the longest gap between two consecutive tokens that spans any"
            + " part of the move (from the first freeze to the last resume), less the stream's nominal"
            + " interval (1 s / rate), floored at 0: how much later than due the first token after"
            + " the pause arrived. The server writes a token, then waits one interval; a pause"
            + " shorter than what was left of that wait does not reach the client and counts 0."
            + " Percentiles (nearest rank) are over the streaming clients; the near-idle ones are"
            + " summed up by their maximum.\n"
            + "- **Noise**: the same measure over the 2 s before the move, when nothing moves: the"
            + " scheduling jitter of servers, client and kernel on this machine. A stall below it"
            + " cannot be told from jitter.\n"
            + "- **Bytes verified**: every byte every client received (response head, each event,"
            + " in order) compared with what the stream must be, computed on the client from the"
            + " prompt and the KV cache formulas of examples/README.md. A byte lost, repeated,"
            + " reordered or generated from a wrong cache fails the client. Resets: a reset, or a"
            + " stream that ended before [DONE].\n"
            + "- **(a) Reconnect**: the servers on the source pod are killed (SIGKILL: the kernel"
            + " closes the sockets, so each client learns at once); the agents' L2 mover moves the"
            + " address to the other pod, where the same servers already run (a warm standby: a"
            + " best case for the baseline). Each client reconnects at once, then after 10 ms,"
            + " doubling to 500 ms, and asks for the same prompt. Time to next token: from its last"
            + " token before the kill to the first token of the new stream. Tokens generated again:"
            + " the tokens the client had received, which the new stream must generate again.\n"
            + "- **(b) CRIU**: fresh plain servers (no agent) on the source pod, fresh clients; "
            + "`criu dump --tcp-established` in the source pod's namespace, the address moved, "
            + "`criu restore --tcp-established` in the target pod's; stall as for Ferry over dump"
            + " start to restore end.\n");
    if (withOperator) {
      md.append(
          "- **Operator path**: a MigrationRequest (source and target pod, the service address, both"
              + " ports) created in the API server; the operator takes it through Pending and"
              + " Preparing (its plan, the target agent's check) to Moving, where it makes the"
              + " source agent's Move, then writes the end. The clients' stall is computed as for"
              + " the agent path, over the same window: the first freeze to the last resume as the"
              + " source agent timed them (its answer to the operator, which it gives again for the"
              + " migration's id once the request has ended). Pause: the request's"
              + " status.pauseMillis (the agents' measure, as the operator recorded it). Request:"
              + " from the create call to the watch event that showed it Completed;"
              + " Pending / Preparing / Moving: status.phaseMillis, the operator's clock. API calls"
              + " in the pause: calls the source agent received from anyone but the move while its"
              + " clients were held (the operator is meant to make none).\n"
              + "- **Bytes verified, resets / failed** (both paths): every client's, from its start to"
              + " the end of that row's last measured move. The paths share the clients: with both,"
              + " the operator row covers every move up to its own last measured one, the agent row"
              + " all %d moves.\n".formatted(2 + 2 * o.moves()));
    }
    return md.toString();
  }

  /** The order of the moves for each N, in a sentence. */
  private static String order(MigrationBenchmark.Options o) {
    return firstOrder(o) + (o.moves() == 1 ? "" : severalMoves(o.moves()));
  }

  private static String severalMoves(int k) {
    return " With `--moves "
        + k
        + "`, each path then moves "
        + k
        + " times measured, in turn and in alternate directions, each after its own 2 s of noise"
        + " window: the stall, noise and idle columns are over every streaming client in every"
        + " measured move; held is the median move's (the longest beside it), and the other"
        + " columns of a move are that median move's.";
  }

  private static String firstOrder(MigrationBenchmark.Options o) {
    if (o.paths().size() == 1) {
      return "For each N, the streams first make one warm-up move A to B, and the tables report the"
          + " move back, B to A.";
    }
    return "For each N, the moves alternate A to B and B to A: the operator path's warm-up (A to B),"
        + " the agent path's (B to A), then the operator path measured (A to B) and the agent path"
        + " measured (B to A). Each measured move is then its source agent's and its source"
        + " application's second freeze (a node's first pays for cold code), and the operator's"
        + " second request; the operator path moves first so that its requests leave pod-a, whose"
        + " own IP the service address is.";
  }

  /**
   * The headline table: for each N, the operator path's row, and the agent path's beside it when
   * both ran.
   */
  private static void sideBySide(StringBuilder md, List<Figures> results) {
    md.append("## Ferry: the operator path beside the agent path\n\n");
    md.append(
        "| N | path | measured move | moved | stall p50 / p99 / max (ms) | noise p99 (ms) |"
            + " operator − agents, stall p50 / p99 (ms) | pause (ms) | held (ms) |"
            + " request: created → Completed (ms) |"
            + " Pending / Preparing / Moving (ms) | API calls in the pause |"
            + " first move: held / stall p99 (ms) |"
            + " bytes verified | resets / failed |\n");
    md.append("|---".repeat(15)).append("|\n");
    for (Figures f : results) {
      Figures.Operator op = f.operator();
      if (op != null) {
        Figures.Ferry x = op.clients();
        OperatorMove.Result r = op.measured();
        md.append(
            "| %,d | operator | %s | %,d | %s | %s | %s | %.1f | %s | %.1f | %.1f / %.1f / %.1f | %d | %s | %,d | %d / %d |\n"
                .formatted(
                    f.connections(),
                    f.ferry() == null ? "B → A" : "A → B",
                    x.measured().moved(),
                    triple(x.stallMs()),
                    ms(Stalls.percentile(x.noiseMs(), 0.99)),
                    difference(f),
                    r.pauseMillis(),
                    held(x),
                    r.requestMillis(),
                    r.phaseMillis("Pending"),
                    r.phaseMillis("Preparing"),
                    r.phaseMillis("Moving"),
                    x.measured().callsDuringPause(),
                    firstMove(x),
                    x.bytesVerified(),
                    x.resets(),
                    x.failed() + x.unresumed()));
      }
      Figures.Ferry x = f.ferry();
      if (x != null) {
        md.append(
            "| %,d | agents | %s | %,d | %s | %s | – | %.1f | %s | – | – | %d | %s | %,d | %d / %d |\n"
                .formatted(
                    f.connections(),
                    "B → A",
                    x.measured().moved(),
                    triple(x.stallMs()),
                    ms(Stalls.percentile(x.noiseMs(), 0.99)),
                    x.measured().pauseMicros() / 1e3,
                    held(x),
                    x.measured().callsDuringPause(),
                    firstMove(x),
                    x.bytesVerified(),
                    x.resets(),
                    x.failed() + x.unresumed()));
      }
    }
    md.append(
        "\nStall, noise and bytes are the benchmark's own clients' (below). Pause: the source"
            + " agent's, from its first freeze to its hearing that the last connection resumed"
            + " (pause_micros of its answer to Move; on the operator path the request's"
            + " status.pauseMillis, which the operator copies from it). Held: from the first freeze"
            + " to the last resume on the target, as the agents' wall clocks say (the window of"
            + " the stall). Pending / Preparing / Moving: the"
            + " operator's time in each phase (status.phaseMillis). Operator − agents: the operator"
            + " path's stall less the agent path's, at p50 and p99.\n\n");
  }

  /**
   * The path's warm-up move, a node's first: how long the agents held the clients, and the
   * streaming clients' stall at p99, which also waits for the target application's first takeover.
   */
  private static String firstMove(Figures.Ferry x) {
    return "%.1f / %s"
        .formatted(x.cold().heldMillis(), ms(Stalls.percentile(x.coldStallMs(), 0.99)));
  }

  /** The operator path's stall less the agent path's, at p50 and p99; – without both. */
  private static String difference(Figures f) {
    if (f.ferry() == null || f.operator() == null) {
      return "–";
    }
    return "%+.2f / %+.2f".formatted(excess(f, 0.5), excess(f, 0.99));
  }

  private static double excess(Figures f, double q) {
    return Stalls.percentile(f.operator().clients().stallMs(), q)
        - Stalls.percentile(f.ferry().stallMs(), q);
  }

  /**
   * The table of the agents' steps, one row per N of the path {@code pick} gives (null: not run),
   * then what did not go as it should on that path.
   */
  private static void phaseTable(
      StringBuilder md, List<Figures> results, Function<Figures, Figures.Ferry> pick, String path) {
    md.append(
        "| N | streams × rate | moved | stall p50 / p99 / max (ms) | noise p99 (ms) |"
            + " idle stall max (ms) | held (ms) | whole (ms) |");
    FerryMove.PHASES.forEach(p -> md.append(" ").append(p).append(" |"));
    md.append(" first move: held / stall p99 (ms) | bytes verified | resets / failed |\n");
    md.append("|---".repeat(11 + FerryMove.PHASES.size())).append("|\n");
    for (Figures f : results) {
      Figures.Ferry x = pick.apply(f);
      if (x == null) {
        continue;
      }
      md.append(
          "| %,d | %,d × %d/s | %,d | %s | %s | %s | %s | %.1f |"
              .formatted(
                  f.connections(),
                  f.streams(),
                  f.rate(),
                  x.measured().moved(),
                  triple(x.stallMs()),
                  ms(Stalls.percentile(x.noiseMs(), 0.99)),
                  ms(Stalls.max(x.idleStallMs())),
                  held(x),
                  x.measured().wholeMillis()));
      for (String p : FerryMove.PHASES) {
        long v = x.measured().agentMicros().get(p);
        md.append(v < 0 ? " – |" : " %.1f |".formatted(v / 1e3));
      }
      md.append(
          " %s | %,d | %d / %d |\n"
              .formatted(firstMove(x), x.bytesVerified(), x.resets(), x.failed() + x.unresumed()));
    }
    for (Figures f : results) {
      Figures.Ferry x = pick.apply(f);
      if (x != null) {
        notes(md, f, path, x);
      }
    }
  }

  /**
   * What did not go as it should for one path at one N: connections that stayed, clients that
   * failed.
   */
  private static void notes(StringBuilder md, Figures f, String path, Figures.Ferry x) {
    List<FerryMove.Result> all = new ArrayList<>();
    all.add(x.cold());
    all.addAll(x.moves());
    for (FerryMove.Result m : all) {
      if (!m.stayed().isEmpty()) {
        md.append(
            "\nN=%,d, %s, %s move: %,d connections stayed where they were (the agent's reason for"
                    .formatted(
                        f.connections(),
                        path,
                        m == x.cold()
                            ? "first"
                            : x.moves().size() == 1
                                ? "measured"
                                : "measured " + (x.moves().indexOf(m) + 1),
                        m.stayed().size())
                + " the first: \"%s\").\n".formatted(m.stayed().get(0)));
      }
    }
    if (!x.errors().isEmpty()) {
      md.append(
              "\nN=%,d, %s, failed clients (first %d): "
                  .formatted(f.connections(), path, x.errors().size()))
          .append(String.join("; ", x.errors()))
          .append(".\n");
    }
  }

  private static String criuCell(Figures.Criu c) {
    if (c.reason() != null) {
      return c.reason().startsWith("criu ") || c.reason().startsWith("not run")
          ? "did not run (below)"
          : c.reason();
    }
    return "%s (dump %.0f, restore %.0f; %d resets)"
        .formatted(
            triple(c.stallMs()), c.move().dumpMillis(), c.move().restoreMillis(), c.resets());
  }

  private static String goalStall(List<Figures> results, int n, double goalMs) {
    Optional<Figures> f = results.stream().filter(r -> r.connections() == n).findFirst();
    String what =
        "- p99 stall ≤ %.0f ms for %,d connection%s: ".formatted(goalMs, n, n == 1 ? "" : "s");
    if (f.isEmpty()) {
      return what + "not run";
    }
    List<String> each = new ArrayList<>();
    if (f.get().operator() != null) {
      each.add("operator path " + stallAgainst(f.get().operator().clients().stallMs(), goalMs));
    }
    if (f.get().ferry() != null) {
      each.add("agent (L2) path " + stallAgainst(f.get().ferry().stallMs(), goalMs));
    }
    return what + String.join("; ", each);
  }

  /**
   * Whether the p99 of {@code stalls} meets {@code goalMs}, and over how many samples: with fewer
   * than 100 the nearest-rank p99 is their largest (one move of one stream: a single sample).
   */
  private static String stallAgainst(double[] stalls, double goalMs) {
    double p99 = Stalls.percentile(stalls, 0.99);
    return (p99 <= goalMs ? "**met**" : "**not met**")
        + (stalls.length < 100
                ? " (%s ms, the largest of %,d; more samples with --moves)"
                : " (%s ms over %,d samples)")
            .formatted(ms(p99), stalls.length);
  }

  private static String goalTenThousand(List<Figures> results) {
    Optional<Figures> f = results.stream().filter(r -> r.connections() == 10_000).findFirst();
    String what = "- 10,000 connections moved in ≤ 1 s: ";
    if (f.isEmpty()) {
      return what + "not run";
    }
    List<String> each = new ArrayList<>();
    for (Figures.Ferry x : paths(f.get())) {
      FerryMove.Result m = x.measured();
      each.add(
          (f.get().ferry() == x ? "agent (L2) path " : "operator path ")
              + (m.heldMillis() <= 1000 && m.moved() == 10_000 ? "**met**" : "**not met**")
              + " (%,d moved; %.0f ms from the first freeze to the last resume, %.0f ms to the end)"
                  .formatted(m.moved(), m.heldMillis(), m.wholeMillis()));
    }
    return what + String.join("; ", each);
  }

  /** The target: the operator adds at most 1 ms to the clients' stall, at p50 and p99. */
  private static String goalOperator(List<Figures> results) {
    String what =
        "- operator path within %.0f ms of the agent path (stall p50 and p99): "
            .formatted(OPERATOR_WITHIN_MS);
    List<Figures> both =
        results.stream().filter(f -> f.ferry() != null && f.operator() != null).toList();
    if (both.isEmpty()) {
      return what + "not run (it needs --path both)";
    }
    boolean met =
        both.stream()
            .allMatch(
                f -> excess(f, 0.5) <= OPERATOR_WITHIN_MS && excess(f, 0.99) <= OPERATOR_WITHIN_MS);
    return what
        + (met ? "**met**" : "**not met**")
        + " ("
        + String.join(
            "; ",
            both.stream()
                .map(
                    f ->
                        "N=%,d: operator − agents %+.2f ms at p50, %+.2f ms at p99 (%s against %s ms at p99)"
                            .formatted(
                                f.connections(),
                                excess(f, 0.5),
                                excess(f, 0.99),
                                ms(Stalls.percentile(f.operator().clients().stallMs(), 0.99)),
                                ms(Stalls.percentile(f.ferry().stallMs(), 0.99))))
                .toList())
        + ")";
  }

  /**
   * The target: Ferry's stall at p99 below reconnecting's and CRIU's at every count, on
   * every path that ran. Reconnecting is compared by its stall (the time to the next token less the
   * stream's interval), as Ferry's is measured; a count whose CRIU did not run is judged on
   * reconnecting alone, and says so.
   */
  private static String goalAhead(List<Figures> results) {
    String what = "- ahead of reconnecting and of CRIU at every count (stall p99, each path): ";
    if (results.isEmpty()) {
      return what + "not run";
    }
    boolean met = true;
    List<String> each = new ArrayList<>();
    for (Figures f : results) {
      double reconnect = Stalls.percentile(f.reconnect().streamStallMs(), 0.99);
      boolean criuRan = f.criu().reason() == null && f.criu().stallMs().length > 0;
      double criu = criuRan ? Stalls.percentile(f.criu().stallMs(), 0.99) : Double.NaN;
      List<String> ours = new ArrayList<>();
      for (Figures.Ferry x : paths(f)) {
        double p99 = Stalls.percentile(x.stallMs(), 0.99);
        met &= p99 < reconnect && (!criuRan || p99 < criu);
        ours.add((f.ferry() == x ? "agents " : "operator ") + ms(p99));
      }
      each.add(
          "N=%,d: %s against reconnecting %s and %s"
              .formatted(
                  f.connections(),
                  String.join(", ", ours),
                  ms(reconnect),
                  criuRan ? "CRIU " + ms(criu) + " ms" : "CRIU not run"));
    }
    return what + (met ? "**met**" : "**not met**") + " (" + String.join("; ", each) + ")";
  }

  private static String goalBytes(List<Figures> results) {
    String what = "- zero bytes lost or duplicated: ";
    if (results.isEmpty()) {
      return what + "not run";
    }
    // The clients as the last measured move left them hold every byte and every failure of the
    // Ferry part; clients not resumed are counted per measured move.
    long bytes = results.stream().mapToLong(f -> f.lastMeasured().bytesVerified()).sum();
    int bad =
        results.stream()
            .mapToInt(
                f ->
                    f.lastMeasured().failed()
                        + f.lastMeasured().resets()
                        + paths(f).stream().mapToInt(Figures.Ferry::unresumed).sum())
            .sum();
    int clients = results.stream().mapToInt(Figures::connections).sum();
    int moves = paths(results.get(0)).stream().mapToInt(x -> 1 + x.moves().size()).sum();
    return what
        + (bad == 0 ? "**met**" : "**not met**")
        + " (%,d clients, %d moves each, %,d bytes verified; %d failed, reset or not resumed)"
            .formatted(clients, moves, bytes, bad);
  }

  /** The measured move's time held: of several (--moves), the median move's and the longest's. */
  private static String held(Figures.Ferry x) {
    if (x.moves().size() == 1) {
      return "%.1f".formatted(x.measured().heldMillis());
    }
    double longest = x.moves().stream().mapToDouble(FerryMove.Result::heldMillis).max().orElse(0);
    return "%.1f (longest %.1f of %d)"
        .formatted(x.measured().heldMillis(), longest, x.moves().size());
  }

  private static String triple(double[] v) {
    if (v.length == 0) {
      return "–";
    }
    return ms(Stalls.percentile(v, 0.5))
        + " / "
        + ms(Stalls.percentile(v, 0.99))
        + " / "
        + ms(Stalls.max(v));
  }

  private static String ms(double v) {
    if (Double.isNaN(v)) {
      return "–";
    }
    return v >= 100 ? "%,.0f".formatted(v) : "%.2f".formatted(v);
  }

  private static double percentile(long[] v, double q) {
    return Stalls.percentile(Arrays.stream(v).asDoubleStream().toArray(), q);
  }

  /** The 1-minute load average, from /proc/loadavg. */
  static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
    } catch (Exception e) {
      return "unknown";
    }
  }

  private static String machine() {
    String cpu = "unknown CPU";
    String mem = "";
    try {
      cpu =
          Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
              .filter(l -> l.startsWith("model name"))
              .map(l -> l.substring(l.indexOf(':') + 1).trim())
              .findFirst()
              .orElse(cpu);
      mem =
          Files.readAllLines(Path.of("/proc/meminfo")).stream()
              .filter(l -> l.startsWith("MemTotal"))
              .map(l -> Long.parseLong(l.replaceAll("\\D", "")) / (1024 * 1024) + " GiB")
              .findFirst()
              .orElse("");
    } catch (Exception e) {
      // the machine line says less
    }
    return String.format(
        Locale.ROOT,
        "%d cores (%s), %s, Linux %s, Java %s",
        Runtime.getRuntime().availableProcessors(),
        cpu,
        mem,
        Shell.run("uname", "-r").trim(),
        System.getProperty("java.version"));
  }
}
