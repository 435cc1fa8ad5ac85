// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import java.nio.file.Files;
import java.nio.file.Path;

/** Paths in the repository, found from wherever Maven runs the tests. */
final class Repo {
  private Repo() {}

  /** The repository's root: the directory above the working one holding crds/ and pom.xml. */
  static Path root() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      if (Files.isDirectory(d.resolve("crds"))
          && Files.isDirectory(d.resolve("helm/ferry"))
          && Files.exists(d.resolve("pom.xml"))) {
        return d;
      }
    }
    throw new IllegalStateException(
        "the repository root (with crds/ and helm/ferry/) is not above "
            + Path.of("").toAbsolutePath());
  }

  static Path path(String relative) {
    return root().resolve(relative);
  }

  /** helm/ferry, the chart. */
  static Path chart() {
    return path("helm/ferry");
  }
}
