// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.e2e.bench.BenchCluster.Node;
import dev.ferry.testbed.Shell;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Baseline (b): the same servers moved whole by CRIU, {@code criu dump --tcp-established} in the
 * source pod's network namespace and {@code criu restore --tcp-established} in the target pod's,
 * with the service address moved between the two as Ferry's L2 path moves it.
 *
 * <p>To keep a dumped connection's peer from seeing a reset, the dump locks each connection with
 * two iptables rules in the namespace it runs in (CRIU's criu/netfilter.c, the default {@code
 * --network-lock iptables}): {@code INPUT -s PEER --sport PP -d LOCAL --dport LP} and {@code OUTPUT
 * -s LOCAL --sport LP -d PEER --dport PP}, each {@code -p tcp -m mark ! --mark 0xc114 -j DROP}. The
 * restore unlocks connections in the namespace it runs in, the target pod's, so the source pod
 * keeps them: 2 per connection, piling up from one count to the next and dropping a later client
 * that happens to reuse an address and port pair. {@link #move} removes exactly the rules each
 * dump's log says it added.
 */
final class CriuMove {
  /** CRIU's log line for each rule it adds (pr_info, so the logs are written at -v3). */
  private static final Pattern LOCKED =
      Pattern.compile("(Locked|Unlocked) (\\S+):(\\d+) - (\\S+):(\\d+) connection");

  /** One of CRIU's lock rules as iptables-save prints it. */
  private static final Pattern RULE =
      Pattern.compile(
          "-A (INPUT|OUTPUT) (-s (\\S+)/32 -d (\\S+)/32 -p tcp -m mark ! --mark 0xc114"
              + " -m tcp --sport (\\d+) --dport (\\d+) -j DROP)");

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
    try {
      Shell.attempt(List.of("iptables-save", "--version"));
    } catch (IllegalStateException e) {
      return "iptables is not installed (criu dump --tcp-established locks connections with it;"
          + " Debian: apt-get install iptables): "
          + e.getMessage();
    }
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
   * {@code to}'s pod; then removes the lock rules the dumps left in {@code from}'s pod, whatever
   * became of the restore. Each server's images and logs are in {@code images/pid-PID/}.
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
                      "-v3")));
    }
    Exception failed = null;
    try {
      awaitAll(dumps);
      return restore(cluster, servers, from, to, dirs, started);
    } catch (Exception e) {
      failed = e;
      throw e;
    } finally {
      // Whatever became of the dumps and the restore: a dump that failed unlocked its own.
      try {
        int removed = unlock(from, dirs);
        MigrationBenchmark.say(
            "CRIU: removed the %d lock rules the dumps left in %s's pod".formatted(removed, from));
      } catch (Exception e) {
        if (failed == null) {
          throw e;
        }
        failed.addSuppressed(e);
      }
    }
  }

  private static Result restore(
      BenchCluster cluster,
      List<Process> servers,
      Node from,
      Node to,
      List<Path> dirs,
      long started)
      throws Exception {
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
                      "-v3")));
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

  /**
   * Deletes from {@code node}'s pod exactly the iptables rules that the dumps logged in {@code
   * dirs} locked and did not unlock: the rules of CRIU's shape whose addresses and ports a dump log
   * names. Fails if one of them is not found, or if any is left afterwards.
   *
   * @return how many rules it deleted
   */
  static int unlock(Node node, List<Path> dirs) throws IOException {
    // Each logged line "A:ap - B:bp" stands for one rule -s B --sport bp -d A --dport ap, in INPUT
    // (A is the server's end) or OUTPUT (A is the client's): both chains are looked for.
    Set<String> locked = new LinkedHashSet<>();
    for (Path dir : dirs) {
      Path log = dir.resolve("dump.log");
      if (!Files.exists(log)) {
        continue;
      }
      try (var lines = Files.lines(log)) {
        for (String line : (Iterable<String>) lines::iterator) {
          Matcher m = LOCKED.matcher(line);
          if (m.find()) {
            String flow = flow(m.group(4), m.group(5), m.group(2), m.group(3));
            if (m.group(1).equals("Locked")) {
              locked.add(flow);
            } else {
              locked.remove(flow);
            }
          }
        }
      }
    }
    if (locked.isEmpty()) {
      return 0;
    }
    List<String> deletions = new ArrayList<>();
    Set<String> found = new HashSet<>();
    for (String line : node.pod.run("iptables-save", "-t", "filter").split("\n")) {
      Matcher m = RULE.matcher(line.strip());
      if (m.matches()) {
        String flow = flow(m.group(3), m.group(5), m.group(4), m.group(6));
        if (locked.contains(flow)) {
          deletions.add("-D " + m.group(1) + " " + m.group(2));
          found.add(flow);
        }
      }
    }
    if (!deletions.isEmpty()) {
      Path script = Files.createTempFile("ferry-bench-criu-unlock-", ".rules");
      try {
        Files.writeString(script, "*filter\n" + String.join("\n", deletions) + "\nCOMMIT\n");
        // No -w: iptables-restore takes the next argument for its seconds and reads stdin.
        node.pod.run("iptables-restore", "--noflush", script.toString());
      } finally {
        Files.deleteIfExists(script);
      }
    }
    Set<String> missing = new LinkedHashSet<>(locked);
    missing.removeAll(found);
    long left =
        node.pod
            .run("iptables-save", "-t", "filter")
            .lines()
            .filter(l -> RULE.matcher(l.strip()).matches())
            .count();
    if (!missing.isEmpty() || left > 0) {
      throw new IllegalStateException(
          "CRIU's lock rules in "
              + node
              + "'s pod: "
              + missing.size()
              + " of "
              + locked.size()
              + " logged not found (e.g. "
              + missing.stream().limit(3).toList()
              + "), "
              + left
              + " of CRIU's shape left after deleting "
              + deletions.size());
    }
    return deletions.size();
  }

  private static String flow(String source, String sport, String destination, String dport) {
    return source + ":" + sport + " > " + destination + ":" + dport;
  }

  /** Runs {@code criu ARGS} inside {@code node}'s pod's network namespace. */
  private static void criu(Path dir, String what, Node node, String... args) {
    criu(node.pod.netns(), node.name + "'s pod", dir.resolve(what + ".log"), args);
  }

  /**
   * Runs {@code criu args} in the network namespace {@code netns} (the machine's mount namespace);
   * a failure names {@code where} and quotes the last errors of {@code log}.
   */
  static void criu(String netns, String where, Path log, String... args) {
    List<String> cmd = new ArrayList<>(List.of("nsenter", "--net=/var/run/netns/" + netns, "criu"));
    cmd.addAll(List.of(args));
    Shell.Result r = Shell.attempt(cmd);
    if (r.exit() != 0) {
      throw new IllegalStateException(
          "criu "
              + args[0]
              + " in "
              + where
              + " failed (exit "
              + r.exit()
              + "): "
              + lastErrors(log, r.stderr()));
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
