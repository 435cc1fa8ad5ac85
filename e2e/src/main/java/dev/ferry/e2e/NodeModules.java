// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The npm packages the end-to-end clients use, installed with the machine's npm (Debian's {@code
 * nodejs} and {@code npm}, which {@code make deps} installs) into e2e/target/node at first use.
 */
final class NodeModules {
  /** The WebSocket client, pinned: the tests show that this release's client moves intact. */
  static final String WS = "ws";

  static final String WS_VERSION = "8.18.3";

  private NodeModules() {}

  /** The node_modules directory holding {@code ws}, for NODE_PATH; installs it if it is not. */
  static synchronized Path ws() throws IOException, InterruptedException {
    Path prefix = Builds.repoFile("e2e/pom.xml").getParent().resolve("target/node");
    Path modules = prefix.resolve("node_modules");
    Path manifest = modules.resolve(WS).resolve("package.json");
    if (installed(manifest)) {
      return modules;
    }
    run(List.of("node", "--version"), "node (Debian's nodejs; make deps installs it)");
    Files.createDirectories(prefix);
    run(
        List.of(
            "npm",
            "install",
            "--prefix",
            prefix.toString(),
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            WS + "@" + WS_VERSION),
        "npm (Debian's npm; make deps installs it)");
    if (!installed(manifest)) {
      throw new IllegalStateException(
          "npm installed " + WS + "@" + WS_VERSION + " but " + manifest + " does not say so");
    }
    return modules;
  }

  private static boolean installed(Path manifest) throws IOException {
    return Files.exists(manifest)
        && Files.readString(manifest).contains("\"version\": \"" + WS_VERSION + "\"");
  }

  /** Runs {@code cmd}, failing with its output unless it exits 0 within five minutes. */
  private static void run(List<String> cmd, String what) throws IOException, InterruptedException {
    Process p;
    try {
      p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    } catch (IOException e) {
      throw new IllegalStateException(
          "the WebSocket test needs " + what + ", and this machine lacks it: " + e.getMessage(), e);
    }
    p.getOutputStream().close();
    byte[] output = p.getInputStream().readAllBytes();
    if (!p.waitFor(5, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new IllegalStateException(String.join(" ", cmd) + " did not end within 5 minutes");
    }
    if (p.exitValue() != 0) {
      throw new IllegalStateException(
          String.join(" ", cmd)
              + " exited "
              + p.exitValue()
              + ": "
              + new String(output, StandardCharsets.UTF_8));
    }
  }
}
