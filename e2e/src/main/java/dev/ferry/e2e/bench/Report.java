// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.testbed.Shell;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/** The benchmark's results as Markdown: the machine, two tables, the goals, and the method. */
final class Report {
  private Report() {}

  static String markdown(
      MigrationBenchmark.Options o, List<Figures> results, String criuReason, long started) {
    StringBuilder md = new StringBuilder();
    md.append("# Migration benchmark\n\n");
    md.append(
        "Run %s, %.1f min: `make bench ARGS=\"--connections %s --kv-bytes %d --rate %d --event-budget %d --io %s --criu %s\"`.\n"
            .formatted(
                LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm")),
                (System.nanoTime() - started) / 60e9,
                String.join(",", o.connections().stream().map(String::valueOf).toList()),
                o.kvBytes(),
                o.maxRate(),
                o.eventBudget(),
                o.io(),
                o.criu() ? "auto" : "off"));
    md.append("Machine: ").append(machine()).append(".\n");
    md.append(
        "Load average (1 min) when the run began: %s; when it ended: %s (the end includes this"
                .formatted(MigrationBenchmark.loadAtStart, loadAverage())
            + " benchmark's own processes; other work on the machine disturbs the figures: compare"
            + " with the noise column).\n");
    md.append(
        "Everything runs on this one machine: the clients, both nodes' agents and servers, in network"
            + " namespaces joined by veth pairs and a bridge; the benchmark process is the client and"
            + " calls the agents as the operator would.\n\n");
    md.append(
        ("Each N: N connections, half streaming SSE at the rate in the table (min(%d, %,d / streams)"
                + " tokens/s), half near-idle (1 token/s, the streamer's lowest rate); each stream's"
                + " KV cache is %,d bytes; servers: the demo token streamer, `--io %s`. The agents"
                + " run for the whole benchmark; for each N, the streams first make one warm-up move"
                + " A to B, and the table reports the move back, B to A.\n\n")
            .formatted(o.maxRate(), o.eventBudget(), o.kvBytes(), o.io()));

    md.append("## Ferry, L2 path (two node-agents driven through their gRPC API)\n\n");
    md.append(
        "| N | streams × rate | moved | stall p50 / p99 / max (ms) | noise p99 (ms) |"
            + " idle stall max (ms) | held (ms) | whole (ms) |");
    FerryMove.PHASES.forEach(p -> md.append(" ").append(p).append(" |"));
    md.append(" first move held (ms) | bytes verified | resets / failed |\n");
    md.append("|---".repeat(11 + FerryMove.PHASES.size())).append("|\n");
    for (Figures f : results) {
      Figures.Ferry x = f.ferry();
      md.append(
          "| %,d | %,d × %d/s | %,d | %s | %s | %s | %.1f | %.1f |"
              .formatted(
                  f.connections(),
                  f.streams(),
                  f.rate(),
                  x.measured().moved(),
                  triple(x.stallMs()),
                  ms(Stalls.percentile(x.noiseMs(), 0.99)),
                  ms(Stalls.max(x.idleStallMs())),
                  x.measured().heldMillis(),
                  x.measured().wholeMillis()));
      for (String p : FerryMove.PHASES) {
        long v = x.measured().agentMicros().get(p);
        md.append(v < 0 ? " – |" : " %.1f |".formatted(v / 1e3));
      }
      md.append(
          " %.1f | %,d | %d / %d |\n"
              .formatted(
                  x.cold().heldMillis(),
                  x.bytesVerified(),
                  x.resets(),
                  x.failed() + x.unresumed()));
    }
    for (Figures f : results) {
      Figures.Ferry x = f.ferry();
      for (FerryMove.Result m : List.of(x.cold(), x.measured())) {
        if (!m.stayed().isEmpty()) {
          md.append(
              "\nN=%,d, %s move: %,d connections stayed where they were (the agent's reason for the"
                      .formatted(
                          f.connections(), m == x.cold() ? "first" : "measured", m.stayed().size())
                  + " first: \"%s\").\n".formatted(m.stayed().get(0)));
        }
      }
      if (!x.errors().isEmpty()) {
        md.append(
                "\nN=%,d, failed clients (first %d): "
                    .formatted(f.connections(), x.errors().size()))
            .append(String.join("; ", x.errors()))
            .append(".\n");
      }
    }
    md.append(
        "\nOne Move call per migration: the agents run it between themselves. Phase columns: each"
            + " phase as the agents timed it themselves, in ms (freeze, export and release on the"
            + " source; stage, commit and resume on the target). Held: from the first freeze to"
            + " the last resume, on the agents' clock, the longest any client can be held (the"
            + " pre-copy before it holds no one). Whole: from the first freeze to Move's"
            + " answer.\n\n");

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
    return md.toString();
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
        "- p99 stall ≤ %.0f ms for %,d connection%s (L2 path): "
            .formatted(goalMs, n, n == 1 ? "" : "s");
    if (f.isEmpty()) {
      return what + "not run";
    }
    double p99 = Stalls.percentile(f.get().ferry().stallMs(), 0.99);
    return what + (p99 <= goalMs ? "**met**" : "**not met**") + " (%s ms)".formatted(ms(p99));
  }

  private static String goalTenThousand(List<Figures> results) {
    Optional<Figures> f = results.stream().filter(r -> r.connections() == 10_000).findFirst();
    String what = "- 10,000 connections moved in ≤ 1 s: ";
    if (f.isEmpty()) {
      return what + "not run";
    }
    FerryMove.Result m = f.get().ferry().measured();
    return what
        + (m.heldMillis() <= 1000 && m.moved() == 10_000 ? "**met**" : "**not met**")
        + " (%,d moved; %.0f ms from Freeze sent to Resume answered, %.0f ms to Release)"
            .formatted(m.moved(), m.heldMillis(), m.wholeMillis());
  }

  private static String goalBytes(List<Figures> results) {
    String what = "- zero bytes lost or duplicated: ";
    if (results.isEmpty()) {
      return what + "not run";
    }
    long bytes = results.stream().mapToLong(f -> f.ferry().bytesVerified()).sum();
    int bad =
        results.stream()
            .mapToInt(f -> f.ferry().failed() + f.ferry().unresumed() + f.ferry().resets())
            .sum();
    int clients = results.stream().mapToInt(Figures::connections).sum();
    return what
        + (bad == 0 ? "**met**" : "**not met**")
        + " (%,d clients, two moves each, %,d bytes verified; %d failed, reset or not resumed)"
            .formatted(clients, bytes, bad);
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
