// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a setup command (ip, tc, sysctl) and fails with its stderr when it fails. */
public final class Shell {
  private Shell() {}

  /** Runs the command to completion and returns its stdout. */
  public static String run(String... command) {
    return run(List.of(command));
  }

  public static String run(List<String> command) {
    Result r = attempt(command);
    if (r.exit != 0) {
      throw new IllegalStateException(
          "`" + String.join(" ", command) + "` failed (exit " + r.exit + "): " + r.stderr.strip());
    }
    return r.stdout;
  }

  /** The outcome of a command that is allowed to fail. */
  public record Result(int exit, String stdout, String stderr) {}

  public static Result attempt(List<String> command) {
    try {
      Process p =
          new ProcessBuilder(command)
              .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
              .start();
      byte[] err;
      byte[] out = p.getInputStream().readAllBytes();
      err = p.getErrorStream().readAllBytes();
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IllegalStateException(
            "`" + String.join(" ", command) + "` did not finish in 60 s");
      }
      return new Result(
          p.exitValue(),
          new String(out, StandardCharsets.UTF_8),
          new String(err, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new IllegalStateException(
          "cannot run `" + String.join(" ", command) + "`: " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted running " + command, e);
    }
  }
}
