// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.e2e.bench.BenchCluster.Node;
import dev.ferry.testbed.Shell;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * Baseline (b): the same servers moved whole by CRIU, {@code criu dump --tcp-established} in the
 * source pod's network namespace and {@code criu restore --tcp-established} in the target pod's,
 * with the service address moved between the two as Ferry's L2 path moves it.
 */
final class CriuMove {
  /**
   * What one CRIU move took.
   *
   * @param dumpStarted when the dumps began (System.nanoTime): the clients are paused from here
   * @param restored when both restores had returned: the servers run again
   */
  record Result(long dumpStarted, long dumped, long restored, List<Long> pids) {
    double dumpMillis() {
      return (dumped - dumpStarted) / 1e6;
    }

    double restoreMillis() {
      return (restored - dumped) / 1e6;
    }

    double totalMillis() {
      return (restored - dumpStarted) / 1e6;
    }
  }

  private CriuMove() {}

  /**
   * Why CRIU cannot be used on this machine, or null if {@code criu check} passes.
   *
   * @return a reason that names the command and quotes its errors
   */
  static String unavailable() {
    Shell.Result version;
    try {
      version = Shell.attempt(List.of("criu", "--version"));
    } catch (IllegalStateException e) {
      return "criu is not installed (Debian: apt-get install criu): " + e.getMessage();
    }
    String v = version.stdout().lines().findFirst().orElse("criu").trim();
    Shell.Result check = Shell.attempt(List.of("criu", "check"));
    if (check.exit() == 0) {
      return null;
    }
    String errors =
        (check.stdout() + check.stderr())
            .lines()
            .filter(l -> l.contains("Error"))
            .distinct()
            .collect(Collectors.joining("; "));
    return "criu "
        + v.replace("Version: ", "")
        + ": `criu check` fails on Linux "
        + Shell.run("uname", "-r").trim()
        + " (exit "
        + check.exit()
        + "): "
        + errors;
  }

  /**
   * Dumps {@code servers} (running in {@code from}'s pod), moves the address, and restores them in
   * {@code to}'s pod.
   */
  static Result move(BenchCluster cluster, List<Process> servers, Node from, Node to, Path images)
      throws Exception {
    List<Path> dirs = new ArrayList<>();
    for (Process p : servers) {
      dirs.add(Files.createDirectories(images.resolve("pid-" + p.pid())));
    }
    long started = System.nanoTime();
    List<CompletableFuture<Void>> dumps = new ArrayList<>();
    for (int i = 0; i < servers.size(); i++) {
      Process p = servers.get(i);
      Path dir = dirs.get(i);
      dumps.add(
          CompletableFuture.runAsync(
              () ->
                  criu(
                      dir,
                      "dump",
                      from,
                      "dump",
                      "-t",
                      String.valueOf(p.pid()),
                      "-D",
                      dir.toString(),
                      "--tcp-established",
                      "-o",
                      "dump.log",
                      "-v2")));
    }
    awaitAll(dumps);
    for (Process p : servers) {
      // Reaped, so that the restore finds each pid free again.
      p.waitFor(10, TimeUnit.SECONDS);
    }
    long dumped = System.nanoTime();
    cluster.address(from, AddressRequest.Op.REMOVE, true);
    cluster.address(to, AddressRequest.Op.ADD, true);
    cluster.holder(to);
    List<CompletableFuture<Void>> restores = new ArrayList<>();
    for (Path dir : dirs) {
      restores.add(
          CompletableFuture.runAsync(
              () ->
                  criu(
                      dir,
                      "restore",
                      to,
                      "restore",
                      "-D",
                      dir.toString(),
                      "--tcp-established",
                      "-d",
                      "--pidfile",
                      dir.resolve("restored.pid").toString(),
                      "-o",
                      "restore.log",
                      "-v2")));
    }
    awaitAll(restores);
    long restored = System.nanoTime();
    List<Long> pids = new ArrayList<>();
    for (Path dir : dirs) {
      long pid = Long.parseLong(Files.readString(dir.resolve("restored.pid")).trim());
      cluster.adopt(pid);
      pids.add(pid);
    }
    cluster.address(to, AddressRequest.Op.ANNOUNCE, false);
    return new Result(started, dumped, restored, pids);
  }

  /** Runs {@code criu ARGS} inside {@code node}'s pod's network namespace. */
  private static void criu(Path dir, String what, Node node, String... args) {
    List<String> cmd =
        new ArrayList<>(List.of("nsenter", "--net=/var/run/netns/" + node.pod.netns(), "criu"));
    cmd.addAll(List.of(args));
    Shell.Result r = Shell.attempt(cmd);
    if (r.exit() != 0) {
      throw new IllegalStateException(
          "criu "
              + what
              + " in "
              + node.name
              + "'s pod failed (exit "
              + r.exit()
              + "): "
              + lastErrors(dir.resolve(what + ".log"), r.stderr()));
    }
  }

  private static String lastErrors(Path log, String stderr) {
    try {
      if (Files.exists(log)) {
        List<String> errors =
            Files.readAllLines(log).stream().filter(l -> l.contains("Error")).toList();
        if (!errors.isEmpty()) {
          return String.join("; ", errors.subList(Math.max(0, errors.size() - 3), errors.size()));
        }
      }
    } catch (IOException e) {
      // fall back to stderr
    }
    return stderr.strip();
  }

  private static void awaitAll(List<CompletableFuture<Void>> futures) throws Exception {
    try {
      CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new)).get(5, TimeUnit.MINUTES);
    } catch (java.util.concurrent.ExecutionException e) {
      throw e.getCause() instanceof Exception x ? x : e;
    }
  }
}
