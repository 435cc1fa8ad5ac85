// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the things this repository builds are, for the processes the cluster starts. */
public final class Builds {
  private Builds() {}

  /** The java launcher running us: the processes we start use the same JDK. */
  public static String java() {
    return ProcessHandle.current().info().command().orElse("java");
  }

  /** {@code relative} in the repository, found from the working directory upwards. */
  public static Path repoFile(String relative) {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      if (Files.exists(d.resolve(relative))) {
        return d.resolve(relative);
      }
    }
    throw new IllegalStateException(
        relative
            + " not found above "
            + Path.of("").toAbsolutePath()
            + ": build it first (make build)");
  }
}
