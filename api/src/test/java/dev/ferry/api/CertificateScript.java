// SPDX-License-Identifier: Apache-2.0
package dev.ferry.api;

import java.nio.file.Files;
import java.nio.file.Path;

/** scripts/ferry-certs.sh, the repository's certificate maker, and other commands, for tests. */
public final class CertificateScript {
  private CertificateScript() {}

  /** Runs scripts/ferry-certs.sh with {@code args} ({@code [--rogue | --node NODE] DIR}). */
  public static void make(String... args) throws Exception {
    String[] command = new String[args.length + 1];
    command[0] = script().toString();
    System.arraycopy(args, 0, command, 1, args.length);
    run(command);
  }

  /** Runs {@code command}; fails with its output unless it exits 0. */
  public static void run(String... command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IllegalStateException(String.join(" ", command) + " failed: " + out);
    }
  }

  private static Path script() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      Path s = d.resolve("scripts/ferry-certs.sh");
      if (Files.isExecutable(s)) {
        return s;
      }
    }
    throw new IllegalStateException(
        "scripts/ferry-certs.sh is not above " + Path.of("").toAbsolutePath());
  }
}
