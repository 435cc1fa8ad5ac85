// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The CPU a process has used, and how much of it its JIT compiler threads: read from /proc, so that
 * a benchmark can tell a process's own work apart from the time it waits for others (an API server
 * on the same cores, say).
 *
 * @param seconds user and system time of every thread, ended ones included
 * @param jitSeconds user and system time of the compiler threads alive now (HotSpot names them "C1
 *     CompilerThre…" and "C2 CompilerThre…"); a compiler thread that has ended is not in it, so it
 *     is a lower bound
 */
record ProcessCpu(double seconds, double jitSeconds) {
  /** Clock ticks per second of /proc's times: USER_HZ, 100 on every Linux this runs on. */
  private static final double TICKS = 100.0;

  static ProcessCpu of(long pid) throws IOException {
    Path proc = Path.of("/proc", String.valueOf(pid));
    double jit = 0;
    try (Stream<Path> tasks = Files.list(proc.resolve("task"))) {
      for (Path task : (Iterable<Path>) tasks::iterator) {
        try {
          String name = Files.readString(task.resolve("comm"));
          if (name.startsWith("C1 CompilerThre") || name.startsWith("C2 CompilerThre")) {
            jit += ticks(Files.readString(task.resolve("stat")));
          }
        } catch (IOException ended) {
          // The thread ended between the listing and the read: its time is in the process's.
        }
      }
    }
    return new ProcessCpu(ticks(Files.readString(proc.resolve("stat"))) / TICKS, jit / TICKS);
  }

  /** What was used since {@code before}. */
  ProcessCpu since(ProcessCpu before) {
    // A compiler thread alive then and ended since took its time out of the sum: never below 0.
    return new ProcessCpu(seconds - before.seconds, Math.max(0, jitSeconds - before.jitSeconds));
  }

  /**
   * utime + stime of a /proc stat line: fields 14 and 15, counted after the command name, which is
   * in parentheses and may itself hold spaces.
   */
  private static double ticks(String stat) {
    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
    // f[0] is field 3 (the state): utime is field 14, stime 15.
    return Long.parseLong(f[11]) + Long.parseLong(f[12]);
  }
}
