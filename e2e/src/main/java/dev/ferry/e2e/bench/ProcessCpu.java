// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The CPU a process has used, and how much of it its JIT compiler threads: read from /proc, so that
 * a benchmark can tell a process's own work apart from the time it waits for others (an API server
 * on the same cores, say).
 *
 * @param seconds user and system time of every thread, ended ones included
 * @param jitSeconds user and system time of the compiler threads (HotSpot names them "C1
 *     CompilerThre…" and "C2 CompilerThre…"), as {@link Meter} saw them: a lower bound
 */
record ProcessCpu(double seconds, double jitSeconds) {
  /** Clock ticks per second of /proc's times: USER_HZ, 100 on every Linux this runs on. */
  private static final double TICKS = 100.0;

  /** How often {@link Meter} looks at the compiler threads. */
  private static final long LOOK_MILLIS = 100;

  /** Starts measuring {@code pid} from now. */
  static Meter meter(long pid) throws IOException {
    return new Meter(pid);
  }

  /**
   * Measures a process from its start to {@link #stop}. The compiler threads are looked at every
   * {@value #LOOK_MILLIS} ms, each by its thread id: HotSpot starts more of them when work queues
   * and ends them when idle (UseDynamicNumberOfCompilerThreads, on by default), and an ended
   * thread's time leaves the process's per-thread listing with it. A single reading at each end
   * missed such threads and, when those alive at the start ended meanwhile, read 0 (before
   * 2026-12-07). What a compiler thread did after its last look and before it ended is still
   * missed.
   */
  static final class Meter {
    private final long pid;
    private final double startSeconds;

    /** Per compiler thread: its ticks when first seen (0 if it started after us), and last seen. */
    private final Map<String, long[]> compilers = new HashMap<>();

    private final Thread looker;
    private volatile boolean stopped;

    private Meter(long pid) throws IOException {
      this.pid = pid;
      this.startSeconds = ticks(Files.readString(proc().resolve("stat"))) / TICKS;
      look(true);
      looker = new Thread(this::lookUntilStopped, "process-cpu-" + pid);
      looker.setDaemon(true);
      looker.start();
    }

    /** What the process used since the meter started. */
    ProcessCpu stop() throws IOException {
      stopped = true;
      looker.interrupt();
      try {
        looker.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      look(false);
      double seconds = ticks(Files.readString(proc().resolve("stat"))) / TICKS - startSeconds;
      long jit;
      synchronized (compilers) {
        jit = compilers.values().stream().mapToLong(t -> t[1] - t[0]).sum();
      }
      return new ProcessCpu(seconds, jit / TICKS);
    }

    private void lookUntilStopped() {
      while (!stopped) {
        try {
          Thread.sleep(LOOK_MILLIS);
          look(false);
        } catch (InterruptedException e) {
          return;
        } catch (IOException ended) {
          return; // the process ended: what was seen stands
        }
      }
    }

    private void look(boolean atStart) throws IOException {
      try (Stream<Path> tasks = Files.list(proc().resolve("task"))) {
        for (Path task : (Iterable<Path>) tasks::iterator) {
          try {
            String name = Files.readString(task.resolve("comm"));
            if (name.startsWith("C1 CompilerThre") || name.startsWith("C2 CompilerThre")) {
              long now = ticks(Files.readString(task.resolve("stat")));
              synchronized (compilers) {
                long[] seen =
                    compilers.computeIfAbsent(
                        task.getFileName().toString(), id -> new long[] {atStart ? now : 0, 0});
                seen[1] = now;
              }
            }
          } catch (IOException ended) {
            // The thread ended between the listing and the read: its last look stands.
          }
        }
      }
    }

    private Path proc() {
      return Path.of("/proc", String.valueOf(pid));
    }
  }

  /**
   * utime + stime of a /proc stat line: fields 14 and 15, counted after the command name, which is
   * in parentheses and may itself hold spaces.
   */
  private static long ticks(String stat) {
    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    // f[0] is field 3 (the state): utime is field 14, stime 15.
    return Long.parseLong(f[11]) + Long.parseLong(f[12]);
  }
}
