// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * The processes a cluster starts (agents, servers, the operator, the API server): each is started
 * with its output logged, returned once it prints the line that says it is up, and killed with
 * SIGKILL, and waited for, when the cluster closes. The threads that read their output are daemons:
 * none of them keeps the JVM alive.
 */
public final class Processes implements AutoCloseable {
  // Bounds a hang only: at load 10 on two cores a Quarkus process has taken more than 60 s to
  // print its first line (the operator, beside two agents starting, in AwsForwardingIT).
  private static final Duration UP_WITHIN = Duration.ofSeconds(180);
  private static final Duration GONE_WITHIN = Duration.ofSeconds(10);

  private final List<Process> started = new CopyOnWriteArrayList<>();
  private final Set<Long> adopted = ConcurrentHashMap.newKeySet();

  /** Where a process's output goes. */
  public sealed interface Log permits Lines, Appended {}

  /**
   * Read line by line: each line printed as {@code " [label] line"} when {@code echo} is set, and
   * added to {@code sink} when there is one.
   */
  public record Lines(boolean echo, List<String> sink) implements Log {}

  /**
   * Appended to {@code file} (a restarted process adds to its earlier log), which nothing reads but
   * the wait for the up-line: for processes that log too much for the console.
   */
  public record Appended(Path file) implements Log {}

  /**
   * As {@link #start(ProcessBuilder, String, String, Log, Consumer)}, without a look at the line.
   */
  public Process start(ProcessBuilder pb, String label, String upLine, Log log) throws Exception {
    return start(pb, label, upLine, log, null);
  }

  /**
   * Starts {@code pb} (standard error into its output; standard input a pipe this process holds, so
   * that a child that watches it, as ApiServer does, ends with us), logged under {@code label}, and
   * returns once it prints a line containing {@code upLine}, which is handed to {@code onUp} first.
   * If it ends first, or is not up within 180 s, it is killed and this fails naming it and where
   * its log is. Either way it is killed when this closes.
   */
  public Process start(
      ProcessBuilder pb, String label, String upLine, Log log, Consumer<String> onUp)
      throws Exception {
    pb.redirectErrorStream(true);
    String up;
    if (log instanceof Appended appended) {
      Path file = appended.file();
      long from = Files.exists(file) ? Files.size(file) : 0;
      Process p = track(pb.redirectOutput(ProcessBuilder.Redirect.appendTo(file.toFile())).start());
      up = awaitUp(p, label, "see " + file, () -> lineIn(file, from, upLine), null);
      if (onUp != null) {
        onUp.accept(up);
      }
      return p;
    }
    Process p = track(pb.start());
    AtomicReference<String> seen = new AtomicReference<>();
    CountDownLatch ended = new CountDownLatch(1);
    read(p, label, (Lines) log, upLine, seen, ended);
    up = awaitUp(p, label, "command " + pb.command(), seen::get, ended);
    if (onUp != null) {
      onUp.accept(up);
    }
    return p;
  }

  /** Kills {@code p} (and what it started) with the cluster, though this did not start it. */
  public Process track(Process p) {
    started.add(p);
    return p;
  }

  /** A process this did not start (CRIU restored it) but must kill when it closes. */
  public void adopt(long pid) {
    adopted.add(pid);
  }

  /** No longer to be killed at the end: already ended by whoever adopted it. */
  public void forget(long pid) {
    adopted.remove(pid);
  }

  /**
   * Kills every one of {@code processes} at once with SIGKILL, as a crash or an OOM kill would,
   * then waits for each to end.
   *
   * @param what names them in the error if one survives SIGKILL for 10 s
   */
  public static void kill(Collection<Process> processes, String what) throws InterruptedException {
    List<ProcessHandle> all = new ArrayList<>();
    processes.forEach(p -> all.addAll(family(p.toHandle())));
    all.forEach(ProcessHandle::destroyForcibly);
    for (ProcessHandle h : all) {
      if (!gone(h)) {
        throw new IllegalStateException(
            what + " (pid " + h.pid() + ") survived SIGKILL for " + GONE_WITHIN.toSeconds() + " s");
      }
    }
  }

  /** {@link #kill(Collection, String)} of one process. */
  public static void kill(Process p, String what) throws InterruptedException {
    kill(List.of(p), what);
  }

  /**
   * Kills every process it started, tracked or adopted, and what they started, and waits for each;
   * one that survives SIGKILL is named on standard error.
   */
  @Override
  public void close() {
    List<ProcessHandle> all = new ArrayList<>();
    for (long pid : adopted) {
      ProcessHandle.of(pid).ifPresent(h -> all.addAll(family(h)));
    }
    started.forEach(p -> all.addAll(family(p.toHandle())));
    all.forEach(ProcessHandle::destroyForcibly);
    boolean interrupted = false;
    for (ProcessHandle h : all) {
      try {
        if (!gone(h)) {
          System.err.println(
              "pid " + h.pid() + " survived SIGKILL for " + GONE_WITHIN.toSeconds() + " s");
        }
      } catch (InterruptedException e) {
        interrupted = true;
      }
    }
    started.clear();
    adopted.clear();
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }

  /** The process and its descendants, taken before any is killed (orphans are hard to find). */
  private static List<ProcessHandle> family(ProcessHandle h) {
    List<ProcessHandle> all = new ArrayList<>();
    all.add(h);
    h.descendants().forEach(all::add);
    return all;
  }

  private static boolean gone(ProcessHandle h) throws InterruptedException {
    try {
      h.onExit().get(GONE_WITHIN.toMillis(), TimeUnit.MILLISECONDS);
      return true;
    } catch (TimeoutException | ExecutionException e) {
      return !h.isAlive();
    }
  }

  private static void read(
      Process p,
      String label,
      Lines lines,
      String upLine,
      AtomicReference<String> up,
      CountDownLatch done) {
    Thread t =
        new Thread(
            () -> {
              try (BufferedReader in =
                  new BufferedReader(
                      new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                  if (lines.echo()) {
                    System.out.println("    [" + label + "] " + line);
                  }
                  if (lines.sink() != null) {
                    lines.sink().add(line);
                  }
                  if (up.get() == null && line.contains(upLine)) {
                    up.set(line);
                  }
                }
              } catch (IOException ended) {
                // the process ended
              } finally {
                done.countDown();
              }
            },
            label + "-log");
    t.setDaemon(true);
    t.start();
  }

  /**
   * The first line containing {@code text} that {@code file} has past byte {@code from}, or null.
   */
  private static String lineIn(Path file, long from, String text) {
    try {
      if (!Files.exists(file) || Files.size(file) <= from) {
        return null;
      }
      byte[] all = Files.readAllBytes(file);
      String added = new String(all, (int) from, all.length - (int) from, StandardCharsets.UTF_8);
      return added.lines().filter(l -> l.contains(text)).findFirst().orElse(null);
    } catch (IOException e) {
      throw new IllegalStateException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * Waits for the up-line that {@code upLine} finds; kills the process and fails if its output ends
   * first ({@code outputEnded}, or the process's end when null) or after 180 s.
   */
  private static String awaitUp(
      Process p,
      String label,
      String where,
      java.util.function.Supplier<String> upLine,
      CountDownLatch outputEnded)
      throws InterruptedException {
    long deadline = System.nanoTime() + UP_WITHIN.toNanos();
    while (true) {
      String line = upLine.get();
      if (line != null) {
        return line;
      }
      boolean ended = outputEnded == null ? !p.isAlive() : outputEnded.getCount() == 0;
      if (ended && (line = upLine.get()) != null) {
        return line;
      }
      if (ended) {
        p.waitFor(1, TimeUnit.SECONDS);
        String how = p.isAlive() ? "closed its output" : "exited " + p.exitValue();
        kill(p, label);
        throw new IllegalStateException(label + " " + how + " before it was up; " + where);
      }
      if (System.nanoTime() > deadline) {
        kill(p, label);
        throw new IllegalStateException(
            label + " was not up within " + UP_WITHIN.toSeconds() + " s; " + where);
      }
      Thread.sleep(outputEnded == null ? 50 : 10);
    }
  }
}
